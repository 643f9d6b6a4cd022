//! What a sidecar's Envoy actually runs for a plugin, read from its admin (port 15000 in the
//! pod, reached through the API server's port-forward like `istioctl proxy-config`): the ECDS
//! filter config Istio sent for the plugin after istio-agent rewrote it. A module the agent
//! fetched appears as a local file named by the digest it checked; a failed fetch as the
//! deny-all (FAIL_CLOSE) or allow-all (FAIL_OPEN) stand-in filter.
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::logline::TRANSLATED_SUFFIX;

/// Envoy's admin port in an Istio sidecar (`proxyAdminPort`).
pub const ADMIN_PORT: u16 = 15000;
/// A config dump of a sidecar is small; this bounds a misbehaving one.
const MAX_DUMP_BYTES: usize = 16 << 20;

/// What Envoy holds in the plugin's place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Running {
    /// The module, from the agent's cache file `<dir>/<digest>.wasm`.
    Loaded {
        /// Envoy's name for the plugin (either of Istio's forms).
        name: String,
        /// The checksum the agent verified: for oci urls the image manifest's digest.
        digest: Option<String>,
        root_id: String,
    },
    /// The agent could not fetch the module and FAIL_CLOSE put a deny-all filter there.
    DenyAll { name: String },
    /// ... and FAIL_OPEN put an allow-all filter there.
    AllowAll { name: String },
    /// No filter config for the plugin at all (not sent yet, or not selected).
    Absent,
}

/// The plugin's entry in an ECDS config dump (`/config_dump?resource=ecds_filters`).
pub fn running(dump: &Value, envoy_name: &str) -> Running {
    let ours = |name: &str| {
        // `extensions.istio.io/<kind>/<ns>.<name>[~istio-translated-wasmplugin]`
        let short = name.rsplit('/').next().unwrap_or(name);
        short == envoy_name || short.strip_suffix(TRANSLATED_SUFFIX) == Some(envoy_name)
    };
    let Some(filter) = dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| &c["ecds_filter"])
        .find(|f| f["name"].as_str().is_some_and(ours))
    else {
        return Running::Absent;
    };
    let name = filter["name"]
        .as_str()
        .and_then(|n| n.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let config = &filter["typed_config"];
    let kind = config["@type"].as_str().unwrap_or_default();
    if kind.ends_with("rbac.v3.RBAC") {
        // Istio's stand-ins: an RBAC filter with no policies denies, one with an allow-all
        // action (or rules_stat_prefix wasm-default-allow) lets everything through.
        let allow = config["rules_stat_prefix"]
            .as_str()
            .is_some_and(|p| p.contains("allow"))
            || config["rules"]["action"].as_str() == Some("ALLOW")
                && config["rules"]["policies"].is_object();
        return if allow {
            Running::AllowAll { name }
        } else {
            Running::DenyAll { name }
        };
    }
    let file = config["config"]["vm_config"]["code"]["local"]["filename"]
        .as_str()
        .unwrap_or_default();
    let digest = std::path::Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|hex| format!("sha256:{hex}"));
    Running::Loaded {
        name,
        digest,
        root_id: config["config"]["root_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// GETs `path` from the pod's Envoy admin through a port-forward.
pub async fn admin_get(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut forwarder = pods
        .portforward(pod, &[ADMIN_PORT])
        .await
        .map_err(|err| format!("cannot port-forward to {pod}:{ADMIN_PORT}: {err}"))?;
    let mut stream = forwarder
        .take_stream(ADMIN_PORT)
        .ok_or_else(|| format!("no stream for {pod}:{ADMIN_PORT}"))?;
    // HTTP/1.1 (Envoy's admin refuses 1.0); the answer ends when Envoy closes.
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|err| format!("port-forward to {pod}: {err}"))?;
    // Read until the response is complete: a port-forward does not always pass Envoy's close
    // on as the end of the stream.
    let mut response = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while body(&response).is_none() {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|err| format!("port-forward to {pod}: {err}"))?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
        if response.len() > MAX_DUMP_BYTES {
            return Err(format!(
                "Envoy's admin in {pod} sent more than {MAX_DUMP_BYTES} bytes"
            ));
        }
    }
    drop(stream);
    forwarder.abort();
    body(&response).ok_or_else(|| format!("no HTTP answer from Envoy's admin in {pod}"))
}

/// The body of a complete HTTP/1.1 200 response, de-chunked; `None` while it is incomplete or
/// when it is not a 200 (the caller reads on until the stream ends).
fn body(response: &[u8]) -> Option<Vec<u8>> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return None;
    }
    let mut rest = &response[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|n| n.trim().parse::<usize>().ok())?;
        return rest.get(..length).map(<[u8]>::to_vec);
    }
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// What the pod's Envoy runs for the plugin.
pub async fn running_in_pod(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    envoy_name: &str,
) -> Result<Running, String> {
    let bytes = admin_get(client, namespace, pod, "/config_dump?resource=ecds_filters").await?;
    let dump: Value = serde_json::from_slice(&bytes)
        .map_err(|err| format!("Envoy's config dump from {pod} is not JSON: {err}"))?;
    Ok(running(&dump, envoy_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verbatim (trimmed) from a real sidecar: Istio 1.31-dev, Envoy 1.40.0.
    fn loaded() -> Value {
        serde_json::json!({"configs": [{
            "@type": "type.googleapis.com/envoy.admin.v3.EcdsConfigDump.EcdsFilterConfig",
            "ecds_filter": {
                "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                "name": "extensions.istio.io/trafficextension/dbg.ctx~istio-translated-wasmplugin",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "dbg.ctx~istio-translated-wasmplugin",
                        "root_id": "context_logger",
                        "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": "/var/lib/istio/data/3d39a9ff491b30446b03f736ec65ea036a1cccf5db0847d50ec2b91eace067c7/9d7feb6cebd2b514c6d95fe739def21319cd7730b7f26d9599d443baeb166c6b.wasm"}}},
                        "configuration": {},
                        "failure_policy": "FAIL_CLOSED"
                    }
                }
            },
            "last_updated": "2026-11-29T17:20:56.568Z"
        }]})
    }

    #[test]
    fn a_loaded_module_names_the_digest_the_agent_checked() {
        assert_eq!(
            running(&loaded(), "dbg.ctx"),
            Running::Loaded {
                name: "dbg.ctx~istio-translated-wasmplugin".into(),
                digest: Some(
                    "sha256:9d7feb6cebd2b514c6d95fe739def21319cd7730b7f26d9599d443baeb166c6b"
                        .into()
                ),
                root_id: "context_logger".into()
            }
        );
        assert_eq!(running(&loaded(), "dbg.ct"), Running::Absent);
        assert_eq!(running(&serde_json::json!({}), "dbg.ctx"), Running::Absent);
    }

    #[test]
    fn the_deny_all_stand_in_is_recognised() {
        // Verbatim typed_config after a failed fetch with FAIL_CLOSE.
        let mut dump = loaded();
        dump["configs"][0]["ecds_filter"]["typed_config"] = serde_json::json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {}, "rules_stat_prefix": "wasm-default-deny"
        });
        assert_eq!(
            running(&dump, "dbg.ctx"),
            Running::DenyAll {
                name: "dbg.ctx~istio-translated-wasmplugin".into()
            }
        );
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(body(response).unwrap(), b"{\"a\":1}");
        assert_eq!(body(b"HTTP/1.1 404 Not Found\r\n\r\nno"), None);
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap(),
            b"ok"
        );
    }
}
