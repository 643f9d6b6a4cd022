//! Packaging a wasm module as an image Istio can fetch, byte-for-byte reproducibly: fixed tar
//! metadata, gzip without a timestamp, JSON with sorted keys, and no wall-clock field unless
//! SOURCE_DATE_EPOCH provides one. The same module and metadata give the same manifest digest.
use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::Error;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const WASM_RUNTIME_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub const WASM_CONTENT_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The file name Istio looks for inside a compat layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";
pub const WASM_MAGIC: &[u8] = b"\0asm";

/// Which of the layouts Istio accepts to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One OCI tar+gzip layer holding plugin.wasm (works with every OCI tool and with Istio,
    /// Envoy Gateway).
    #[default]
    Compat,
    /// The two-layer artifact variant: runtime config + raw module layer.
    Oci,
}

/// `org.opencontainers.image.*` facts to record when known.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub source: Option<String>,
    pub revision: Option<String>,
    pub title: Option<String>,
    /// Seconds since the epoch, from SOURCE_DATE_EPOCH: the only timestamp an image gets.
    pub created: Option<i64>,
}

impl Metadata {
    /// Reads SOURCE_DATE_EPOCH (the reproducible-builds convention) into `created`.
    pub fn with_source_date_epoch(mut self) -> Result<Self, Error> {
        if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
            let secs = value.trim().parse::<i64>().map_err(|_| Error::Usage {
                message: format!(
                    "SOURCE_DATE_EPOCH={value:?} is not a number of seconds since 1970"
                ),
            })?;
            self.created = Some(secs);
        }
        Ok(self)
    }
}

/// A blob with its descriptor fields.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: sha256_digest(&data),
            data,
        }
    }

    fn descriptor(&self, annotations: Option<BTreeMap<&str, &str>>) -> serde_json::Value {
        let mut descriptor =
            json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.data.len() });
        if let Some(annotations) = annotations {
            descriptor["annotations"] = json!(annotations);
        }
        descriptor
    }
}

/// Everything a push uploads: blobs first (layers, then config), the manifest last.
#[derive(Debug, Clone)]
pub struct Image {
    pub format: Format,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    pub manifest_digest: String,
}

impl Image {
    /// Distinct blobs in upload order (the raw variant reuses its config as a layer).
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut blobs: Vec<&Blob> = Vec::new();
        for blob in self.layers.iter().chain(std::iter::once(&self.config)) {
            if !blobs.iter().any(|seen| seen.digest == blob.digest) {
                blobs.push(blob);
            }
        }
        blobs
    }

    pub fn total_bytes(&self) -> u64 {
        self.blobs()
            .iter()
            .map(|blob| blob.data.len() as u64)
            .sum::<u64>()
            + self.manifest.len() as u64
    }
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Refuses anything that does not start like a wasm binary: Istio would refuse it later,
/// far from the user. Full ABI checks belong to `deployer::module`.
pub fn check_magic(name: &str, module: &[u8]) -> Result<(), Error> {
    if module.len() < 8 || &module[..4] != WASM_MAGIC {
        return Err(Error::NotWasm {
            path: name.to_string(),
            reason: "it does not start with the wasm magic `\\0asm`".into(),
        });
    }
    Ok(())
}

pub fn package(module: &[u8], format: Format, metadata: &Metadata) -> Result<Image, Error> {
    check_magic(metadata.title.as_deref().unwrap_or(PLUGIN_FILE), module)?;
    super::istio::check_module_size(module.len() as u64)?;
    match format {
        Format::Compat => compat(module, metadata),
        Format::Oci => raw(module, metadata),
    }
}

fn compat(module: &[u8], metadata: &Metadata) -> Result<Image, Error> {
    let tar = plugin_tar(module, metadata.created.unwrap_or(0))?;
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(OCI_LAYER_TAR_GZIP, gzip(&tar)?);
    let mut config = json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    if let Some(created) = metadata.created {
        config["created"] = json!(rfc3339(created));
    }
    let config = Blob::new(OCI_CONFIG, to_json(&config));
    let mut annotations = annotations(metadata);
    annotations.insert("module.wasm.image/variant".into(), "compat".into());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(None),
        "layers": [layer.descriptor(None)],
        "annotations": annotations,
    });
    Ok(finish(Format::Compat, config, vec![layer], manifest))
}

fn raw(module: &[u8], metadata: &Metadata) -> Result<Image, Error> {
    let runtime =
        json!({ "type": "envoy_proxy", "abiVersions": abi_versions(module), "config": {} });
    let config = Blob::new(WASM_RUNTIME_CONFIG, to_json(&runtime));
    let content = Blob::new(WASM_CONTENT_LAYER, module.to_vec());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(None),
        "layers": [
            config.descriptor(Some(BTreeMap::from([("org.opencontainers.image.title", "runtime-config.json")]))),
            content.descriptor(Some(BTreeMap::from([("org.opencontainers.image.title", PLUGIN_FILE)]))),
        ],
        "annotations": annotations(metadata),
    });
    let layers = vec![config.clone(), content];
    Ok(finish(Format::Oci, config, layers, manifest))
}

fn finish(format: Format, config: Blob, layers: Vec<Blob>, manifest: serde_json::Value) -> Image {
    let manifest = to_json(&manifest);
    Image {
        format,
        config,
        layers,
        manifest_digest: sha256_digest(&manifest),
        manifest,
        manifest_media_type: OCI_MANIFEST.to_string(),
    }
}

fn annotations(metadata: &Metadata) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    let mut put = |key: &str, value: &Option<String>| {
        if let Some(value) = value.as_ref().filter(|value| !value.is_empty()) {
            annotations.insert(format!("org.opencontainers.image.{key}"), value.clone());
        }
    };
    put("source", &metadata.source.as_deref().map(public_source_url));
    put("revision", &metadata.revision);
    put("title", &metadata.title);
    put("created", &metadata.created.map(rfc3339));
    annotations
}

/// A repository url as it may be published: `git remote get-url origin` often holds a token
/// (`https://user:TOKEN@host/org/repo`, CI checkouts), and an image annotation is public, so
/// the userinfo goes, and so do a query and fragment (`?access_token=...`). scp-like remotes
/// (`git@host:org/repo`) name a user only, no secret, and are kept.
pub fn public_source_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    // The LAST '@' ends the userinfo, even past a '/': a token with an unescaped '/' (base64)
    // must not leak; a path with an '@' would lose its head, which is the safer mistake.
    let public = rest.rsplit_once('@').map_or(rest, |(_, public)| public);
    format!("{scheme}://{public}")
}

/// serde_json's map keeps keys sorted, so equal values serialize to equal bytes.
fn to_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value always serializes")
}

fn plugin_tar(module: &[u8], mtime: i64) -> Result<Vec<u8>, Error> {
    let mut header = tar::Header::new_ustar();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime.max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder
        .append_data(&mut header, PLUGIN_FILE, module)
        .and_then(|()| builder.into_inner())
        .map_err(|err| Error::Usage {
            message: format!("cannot build the image layer: {err}"),
        })
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, Error> {
    // mtime 0 and no file name: the gzip header then carries nothing that varies between runs.
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|err| Error::Usage {
            message: format!("cannot compress the image layer: {err}"),
        })
}

/// The proxy-wasm ABI versions a module exports (`proxy_abi_version_0_2_1` -> `0.2.1`).
fn abi_versions(module: &[u8]) -> Vec<String> {
    let mut versions = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let Ok(wasmparser::Payload::ExportSection(exports)) = payload else {
            continue;
        };
        for export in exports.into_iter().flatten() {
            if let Some(version) = export.name.strip_prefix("proxy_abi_version_") {
                versions.push(version.replace('_', "."));
            }
        }
    }
    versions
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` without a date crate (civil-from-days, proleptic Gregorian).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_source_annotation() {
        for (remote, public) in [
            (
                "https://user:ghp_CANARY@github.com/org/repo.git",
                "https://github.com/org/repo.git",
            ),
            (
                "https://ghp_CANARY@github.com/org/repo",
                "https://github.com/org/repo",
            ),
            (
                "https://oauth2:a@b@gitlab.example:8443/g/r.git?private_token=x#frag",
                "https://gitlab.example:8443/g/r.git",
            ),
            ("ssh://git@host/org/repo", "ssh://host/org/repo"),
            ("https://u:to/ken@host/org/repo", "https://host/org/repo"),
            ("https://github.com/org/repo", "https://github.com/org/repo"),
            ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ] {
            assert_eq!(public_source_url(remote), public, "{remote}");
        }
    }

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn compat_is_reproducible_and_annotated() {
        let metadata = Metadata {
            revision: Some("abc".into()),
            ..Default::default()
        };
        let first = package(MODULE, Format::Compat, &metadata).unwrap();
        let second = package(MODULE, Format::Compat, &metadata).unwrap();
        assert_eq!(first.manifest_digest, second.manifest_digest);
        let manifest: serde_json::Value = serde_json::from_slice(&first.manifest).unwrap();
        assert_eq!(
            manifest["annotations"]["module.wasm.image/variant"],
            "compat"
        );
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.revision"],
            "abc"
        );
        assert_eq!(manifest["layers"][0]["mediaType"], OCI_LAYER_TAR_GZIP);
        assert_eq!(first.blobs().len(), 2);
    }

    #[test]
    fn source_date_epoch_only_changes_the_timestamps() {
        let plain = package(MODULE, Format::Compat, &Metadata::default()).unwrap();
        let dated = package(
            MODULE,
            Format::Compat,
            &Metadata {
                created: Some(1_700_000_000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_ne!(plain.manifest_digest, dated.manifest_digest);
        let config: serde_json::Value = serde_json::from_slice(&dated.config.data).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn raw_variant_has_two_layers_and_one_config_blob() {
        let image = package(MODULE, Format::Oci, &Metadata::default()).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
        assert_eq!(manifest["layers"][1]["mediaType"], WASM_CONTENT_LAYER);
        assert_eq!(image.blobs().len(), 2);
    }

    #[test]
    fn refuses_non_wasm() {
        assert!(matches!(
            package(b"not wasm", Format::Compat, &Metadata::default()),
            Err(Error::NotWasm { .. })
        ));
    }
}
