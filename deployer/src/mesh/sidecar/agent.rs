//! What istio-agent does with a WasmPlugin before Envoy sees it: fetch the module by Istio's
//! rules (pkg/wasm: oci images through `deployer::oci`, http(s) and file urls as plain bytes),
//! check the sha256 (the manifest digest for oci, the module bytes otherwise) and the wasm
//! magic, and keep the module in a local file named by its checksum. Failures come back as
//! the agent's own reason texts, so the log line reads like a real sidecar's.
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use sha2::{Digest, Sha256};

use crate::cluster::pull_secret::SECRET_TYPE;
use crate::mesh::Plugin;
use crate::oci::auth::Resolved;
use crate::oci::istio::MAX_MODULE_BYTES;
use crate::oci::{self, ImageRef, Options, RetryPolicy, Transport, Verdict};

/// How the agent reaches a registry for one plugin.
#[derive(Debug, Clone, Default)]
pub struct Pull {
    /// A CA to trust for loopback registries that speak TLS: what a real agent's image would
    /// carry in its trust store.
    pub ca_file: Option<PathBuf>,
    /// From the plugin's imagePullSecret; `None` leaves the stand-in's own docker config.
    pub credentials: Option<Resolved>,
}

/// The credentials istio-agent would pull `plugin` with: its imagePullSecret, read from the
/// plugin's namespace, must be a `kubernetes.io/dockerconfigjson` Secret with an entry for the
/// image's registry. `Ok(None)`: no imagePullSecret (or not an oci url). `Err` is the fetch
/// error's reason; it names the Secret and never quotes its data.
pub async fn pull_secret_credentials(
    client: &kube::Client,
    plugin: &Plugin,
) -> Result<Option<Resolved>, String> {
    let Some(name) = plugin.image_pull_secret.as_deref() else {
        return Ok(None);
    };
    let url = plugin.fetch_url();
    if !url.starts_with("oci://") {
        return Ok(None);
    }
    let reference =
        ImageRef::parse(&url).map_err(|err| format!("could not fetch Wasm OCI image: {err}"))?;
    let registry = reference.registry();
    let namespace = &plugin.namespace;
    let what = format!("imagePullSecret {namespace}/{name}");
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|err| format!("cannot read {what}: {err}"))?
        .ok_or_else(|| {
            format!(
                "{what} not found: create a {SECRET_TYPE} Secret named {name} in namespace {namespace} (`deployer apply --pull-secret-from-docker-config` writes one)"
            )
        })?;
    let secret_type = secret.type_.as_deref().unwrap_or("Opaque");
    if secret_type != SECRET_TYPE {
        return Err(format!(
            "{what} is of type {secret_type}, not {SECRET_TYPE}"
        ));
    }
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(".dockerconfigjson"))
        .ok_or_else(|| format!("{what} has no .dockerconfigjson key"))?;
    oci::auth::from_docker_config_json(&bytes.0, registry)
        .map_err(|reason| format!("{what}: {reason}"))?
        .map(|credentials| {
            Some(Resolved {
                credentials,
                source: what.clone(),
            })
        })
        .ok_or_else(|| format!("{what} has no credentials for registry {registry}"))
}

/// The resourceVersions of the plugins' pull Secrets (`-` when missing or unreadable): the
/// agent pulls again when one changes, as when istiod pushes a Secret update.
pub async fn pull_secret_versions(client: &kube::Client, plugins: &[Plugin]) -> String {
    let mut versions = Vec::new();
    for plugin in plugins {
        let Some(name) = plugin.image_pull_secret.as_deref() else {
            continue;
        };
        let api: Api<Secret> = Api::namespaced(client.clone(), &plugin.namespace);
        let version = match api.get_opt(name).await {
            Ok(Some(secret)) => secret.metadata.resource_version.unwrap_or_default(),
            _ => "-".into(),
        };
        versions.push(format!("{}/{name}@{version}", plugin.namespace));
    }
    versions.join("\n")
}

/// Fetches the plugin's module into `cache`; `Err` is the reason istio-agent would give.
pub async fn fetch(plugin: &Plugin, cache: &Path, pull: &Pull) -> Result<PathBuf, String> {
    let url = plugin.fetch_url();
    let expected = plugin.expected_sha256();
    let (module, checksum) = download_with(&url, pull).await?;
    if let Some(expected) = expected
        && expected != checksum
    {
        return Err(format!(
            "module downloaded from {url} has checksum {checksum}, which does not match: {expected}"
        ));
    }
    if module.len() < 8 || !module.starts_with(b"\0asm") {
        return Err(format!("fetched Wasm binary from {url} is invalid"));
    }
    let module_checksum = hex::encode(Sha256::digest(&module));
    std::fs::create_dir_all(cache)
        .map_err(|err| format!("cannot create {}: {err}", cache.display()))?;
    let path = cache.join(format!("{module_checksum}.wasm"));
    if !path.exists() {
        let tmp = cache.join(format!("{module_checksum}.wasm.tmp"));
        std::fs::write(&tmp, &module)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(path)
}

/// The module at an http(s) `url` and the checksum Istio compares with `sha256` (the sha256 of
/// the module after unboxing), fetched with the registry flags' TLS settings (`--ca-file`,
/// `--insecure`) and Istio's 256 MiB cap.
pub async fn download_http(url: &str, transport: &Transport) -> Result<(Vec<u8>, String), String> {
    let bytes = unbox_if_possible(http_get(url, transport).await?);
    let checksum = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, checksum))
}

/// [`download`] with the registry access of one plugin.
pub async fn download_with(url: &str, pull: &Pull) -> Result<(Vec<u8>, String), String> {
    if let Some(path) = url.strip_prefix("file://") {
        let bytes = std::fs::read(path).map_err(|err| format!("cannot read {path}: {err}"))?;
        let checksum = hex::encode(Sha256::digest(&bytes));
        Ok((bytes, checksum))
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let transport = Transport {
            ca_file: pull.ca_file.clone(),
            ..Transport::default()
        };
        download_http(url, &transport).await
    } else if url.starts_with("oci://") {
        fetch_oci(url, pull).await
    } else {
        let scheme = url.split("://").next().unwrap_or_default();
        Err(format!(
            "unsupported Wasm module downloading URL scheme: {scheme}"
        ))
    }
}

/// The module and the checksum Istio compares for oci urls: the image manifest's digest.
async fn fetch_oci(url: &str, pull: &Pull) -> Result<(Vec<u8>, String), String> {
    let reference =
        ImageRef::parse(url).map_err(|err| format!("could not fetch Wasm OCI image: {err}"))?;
    let options = |plain_http: bool| Options {
        // Like an agent started with WASM_INSECURE_REGISTRIES covering localhost: a registry
        // on this machine may speak plain HTTP, every other one verified TLS.
        transport: Transport {
            plain_http,
            ca_file: pull.ca_file.clone(),
            ..Transport::default()
        },
        credentials: pull.credentials.clone(),
        retry: RetryPolicy {
            attempts: 2,
            initial_backoff: Duration::from_millis(200),
            ..RetryPolicy::default()
        },
    };
    let loopback = reference.is_loopback();
    // Given a CA, a loopback registry is tried over TLS first and in plain HTTP only when no
    // TLS is spoken there (go-containerregistry's rule for insecure registries).
    let mut fetched = oci::fetch(&reference, &options(loopback && pull.ca_file.is_none())).await;
    if loopback
        && pull.ca_file.is_some()
        && matches!(
            fetched,
            Err(oci::Error::Tls { .. }
                | oci::Error::Unreachable { .. }
                | oci::Error::Protocol { .. })
        )
    {
        fetched = oci::fetch(&reference, &options(true)).await;
    }
    let fetched = fetched.map_err(|err| format!("could not fetch Wasm OCI image: {err}"))?;
    let checksum = fetched
        .manifest_digest
        .strip_prefix("sha256:")
        .unwrap_or(&fetched.manifest_digest)
        .to_string();
    match (fetched.verdict, fetched.module) {
        (Verdict::Compatible(_), Some(module)) => Ok((module, checksum)),
        (Verdict::Rejected(reason), _) => Err(format!("could not fetch Wasm binary: {reason}")),
        (Verdict::Compatible(_), None) => {
            Err("could not fetch Wasm binary: the image holds no module".into())
        }
    }
}

async fn http_get(url: &str, transport: &Transport) -> Result<Vec<u8>, String> {
    crate::tls::install_crypto_provider();
    // The registry's TLS settings: an https module server behind a private CA is as common
    // as such a registry. plain_http means nothing for a url that names its scheme.
    let transport = Transport {
        plain_http: false,
        ..transport.clone()
    };
    let client = oci::transport::http_client(&transport).map_err(|err| err.to_string())?;
    let mut response = client
        .get(url)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|err| {
            format!(
                "wasm module download failed: {}",
                oci::transport::chain(&err)
            )
        })?;
    if !response.status().is_success() {
        return Err(format!(
            "wasm module download request failed: status code {}",
            response.status().as_u16()
        ));
    }
    let too_big = || {
        format!(
            "wasm module at {url} is larger than Istio's {} MiB limit (istio-agent reads only the \
             first {} MiB, so its checksum and module would be wrong)",
            MAX_MODULE_BYTES >> 20,
            MAX_MODULE_BYTES >> 20
        )
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_MODULE_BYTES)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| {
        format!(
            "wasm module download failed: {}",
            oci::transport::chain(&err)
        )
    })? {
        if (body.len() + chunk.len()) as u64 > MAX_MODULE_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// istio-agent's `unboxIfPossible` (pkg/wasm/httpfetcher.go): a body that is not a wasm module
/// but a gzip stream or a POSIX tar is unwrapped (a tar's first file), repeatedly, and the
/// checksum is taken of the result; on any failure the original bytes stand.
fn unbox_if_possible(origin: Vec<u8>) -> Vec<u8> {
    use std::io::Read;
    let mut current = origin.clone();
    loop {
        if current.len() >= 8 && current.starts_with(b"\0asm") {
            return current;
        }
        let next = if current.len() > 2 && current.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&current[..])
                .take(MAX_MODULE_BYTES)
                .read_to_end(&mut out)
                .ok()
                .map(|_| out)
        } else if current.len() > 262 && &current[257..262] == b"ustar" {
            first_tar_file(&current)
        } else {
            None
        };
        match next {
            Some(next) => current = next,
            None => return origin,
        }
    }
}

fn first_tar_file(tar: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    let entry = archive.entries().ok()?.next()?.ok()?;
    let size = entry.header().size().ok()?;
    let mut out = Vec::new();
    entry.take(size).read_to_end(&mut out).ok()?;
    (out.len() as u64 == size).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(url: &str, sha256: &str) -> Plugin {
        let object =
            kube::api::DynamicObject::new("p", &crate::cluster::wasmplugin::api_resource())
                .within("ns")
                .data(serde_json::json!({"spec": {"url": url, "sha256": sha256}}));
        Plugin::from_object(&object)
    }

    #[tokio::test]
    async fn file_urls_are_checked_like_istio() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("m.wasm");
        std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
        let url = format!("file://{}", module.display());
        let good = hex::encode(Sha256::digest(b"\0asm\x01\0\0\0"));
        let pull = Pull::default();
        let cached = fetch(&plugin(&url, &good), &dir.path().join("cache"), &pull)
            .await
            .unwrap();
        assert_eq!(std::fs::read(cached).unwrap(), b"\0asm\x01\0\0\0");
        let err = fetch(&plugin(&url, &"0".repeat(64)), dir.path(), &pull)
            .await
            .unwrap_err();
        assert!(err.contains("which does not match: 0000"), "{err}");
        std::fs::write(&module, b"MZ").unwrap();
        let err = fetch(&plugin(&url, ""), dir.path(), &pull)
            .await
            .unwrap_err();
        assert!(err.ends_with("is invalid"), "{err}");
    }

    #[test]
    fn http_bodies_are_unboxed_like_istio() {
        let module = b"\0asm\x01\0\0\0payload".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &module).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(unbox_if_possible(gz.clone()), module);
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(gz.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "anything.wasm.gz", &gz[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        assert_eq!(unbox_if_possible(tar), module, "tar of gzip of the module");
        assert_eq!(unbox_if_possible(b"MZ not wasm".to_vec()), b"MZ not wasm");
        let broken_gz = vec![0x1f, 0x8b, 0, 1, 2];
        assert_eq!(unbox_if_possible(broken_gz.clone()), broken_gz);
    }
}
