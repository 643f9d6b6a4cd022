//! The rules Istio's agent applies to an image before it hands a module to Envoy
//! (istio/istio pkg/wasm, summarised in shared/FACTS.md): a Docker v2 manifest whose last layer
//! is a Docker tar+gzip holding `plugin.wasm`; else an OCI manifest whose last layer is an OCI
//! tar+gzip holding `plugin.wasm` ("compat"); else exactly two layers, one of them the raw
//! `application/vnd.module.wasm.content.layer.v1+wasm` module. Anything else is refused.
use std::io::Read;

use serde::Deserialize;

use super::Error;
use super::image::{
    DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, OCI_LAYER_TAR_GZIP, PLUGIN_FILE, WASM_CONTENT_LAYER,
    WASM_MAGIC,
};

/// Istio reads at most this much of a module.
pub const MAX_MODULE_BYTES: u64 = 256 * 1024 * 1024;

/// Refuses a module Istio's agent would refuse to fetch (it reads at most
/// [`MAX_MODULE_BYTES`]), before anything is packaged or uploaded.
pub fn check_module_size(size: u64) -> Result<(), Error> {
    if size > MAX_MODULE_BYTES {
        return Err(Error::ModuleTooLarge {
            size,
            limit_mib: MAX_MODULE_BYTES >> 20,
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Docker v2 manifest, last layer a Docker tar+gzip with plugin.wasm.
    DockerCompat,
    /// OCI manifest, last layer an OCI tar+gzip with plugin.wasm.
    OciCompat,
    /// Two layers, one the raw wasm module.
    OciRaw,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::DockerCompat => "Docker image, plugin.wasm in its last tar+gzip layer",
            Layout::OciCompat => "OCI compat image, plugin.wasm in its last tar+gzip layer",
            Layout::OciRaw => "OCI two-layer image with a raw wasm module layer",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Compatible(Layout),
    Rejected(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Set on image indexes / manifest lists.
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IndexEntry {
    pub digest: String,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

/// How to get a module out of a layer, in the order Istio tries.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub layout: Layout,
    pub layer: Descriptor,
}

impl Candidate {
    pub fn is_tar_gzip(&self) -> bool {
        self.layout != Layout::OciRaw
    }
}

/// The layers worth fetching, in Istio's order, plus why the other rules did not apply.
pub fn candidates(manifest: &Manifest) -> (Vec<Candidate>, Vec<String>) {
    let mut found = Vec::new();
    let mut reasons = Vec::new();
    let Some(last) = manifest.layers.last() else {
        reasons.push("the image has no layers".to_string());
        return (found, reasons);
    };
    if manifest.media_type.as_deref() == Some(DOCKER_MANIFEST) {
        // Istio tries nothing else for a Docker manifest.
        if last.media_type == DOCKER_LAYER_TAR_GZIP {
            found.push(Candidate {
                layout: Layout::DockerCompat,
                layer: last.clone(),
            });
        } else {
            reasons.push(format!(
                "Docker image whose last layer is {} (Istio needs {DOCKER_LAYER_TAR_GZIP})",
                last.media_type
            ));
        }
        return (found, reasons);
    }
    if last.media_type == OCI_LAYER_TAR_GZIP {
        found.push(Candidate {
            layout: Layout::OciCompat,
            layer: last.clone(),
        });
    } else {
        reasons.push(format!(
            "compat variant: last layer is {} (needs {OCI_LAYER_TAR_GZIP})",
            last.media_type
        ));
    }
    if manifest.layers.len() != 2 {
        reasons.push(format!(
            "oci variant: {} layer(s) (needs exactly 2)",
            manifest.layers.len()
        ));
    } else if let Some(layer) = manifest
        .layers
        .iter()
        .find(|layer| layer.media_type == WASM_CONTENT_LAYER)
    {
        found.push(Candidate {
            layout: Layout::OciRaw,
            layer: layer.clone(),
        });
    } else {
        reasons.push(format!("oci variant: no {WASM_CONTENT_LAYER} layer"));
    }
    (found, reasons)
}

/// Picks the manifest Istio would use from an index: linux/amd64 (go-containerregistry's
/// default platform), else the only entry.
pub fn pick_from_index(manifest: &Manifest) -> Option<&IndexEntry> {
    manifest
        .manifests
        .iter()
        .find(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
        .or_else(|| (manifest.manifests.len() == 1).then(|| &manifest.manifests[0]))
}

/// `plugin.wasm` (at any depth, as Istio compares base names) from a tar+gzip layer.
pub fn extract_plugin(tar_gzip: &[u8]) -> Result<Vec<u8>, String> {
    let decoder = flate2::read::GzDecoder::new(tar_gzip);
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .map_err(|err| format!("layer is not a tar+gzip archive: {err}"))?;
    for entry in entries {
        let entry = entry.map_err(|err| format!("layer is not a tar+gzip archive: {err}"))?;
        let path = entry
            .path()
            .map_err(|err| format!("bad tar entry name: {err}"))?
            .into_owned();
        if path.file_name().is_some_and(|name| name == PLUGIN_FILE) {
            let mut module = Vec::new();
            entry
                .take(MAX_MODULE_BYTES + 1)
                .read_to_end(&mut module)
                .map_err(|err| format!("cannot read {PLUGIN_FILE}: {err}"))?;
            return Ok(module);
        }
    }
    Err(format!("{PLUGIN_FILE} not found in the layer"))
}

/// The last checks Istio makes on the bytes it got.
pub fn check_module(module: &[u8]) -> Result<(), String> {
    if module.len() as u64 > MAX_MODULE_BYTES {
        return Err(format!(
            "module is larger than Istio's {} MiB limit",
            MAX_MODULE_BYTES >> 20
        ));
    }
    if !module.starts_with(WASM_MAGIC) {
        return Err("module does not start with the wasm magic `\\0asm`".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::image::{Format, Metadata, package};
    use super::*;

    #[test]
    fn module_size_limit_is_istios() {
        assert!(check_module_size(MAX_MODULE_BYTES).is_ok());
        let err = check_module_size(MAX_MODULE_BYTES + 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("268435457 bytes") && err.contains("256 MiB"),
            "{err}"
        );
    }

    fn manifest(json: serde_json::Value) -> Manifest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn accepts_what_push_produces() {
        for format in [Format::Compat, Format::Oci] {
            let image = package(b"\0asm\x01\0\0\0", format, &Metadata::default()).unwrap();
            let parsed: Manifest = serde_json::from_slice(&image.manifest).unwrap();
            let (found, _) = candidates(&parsed);
            assert!(!found.is_empty(), "{format:?} rejected");
        }
    }

    #[test]
    fn extracts_plugin_from_compat_layer() {
        let image = package(b"\0asm\x01\0\0\0xyz", Format::Compat, &Metadata::default()).unwrap();
        assert_eq!(
            extract_plugin(&image.layers[0].data).unwrap(),
            b"\0asm\x01\0\0\0xyz"
        );
    }

    #[test]
    fn rejects_cncf_artifacts_and_docker_with_wrong_layer() {
        let cncf = manifest(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "layers": [{"mediaType": "application/wasm", "digest": "sha256:00", "size": 1}]
        }));
        let (found, reasons) = candidates(&cncf);
        assert!(found.is_empty());
        assert_eq!(reasons.len(), 2);
        let docker = manifest(serde_json::json!({
            "mediaType": DOCKER_MANIFEST,
            "layers": [{"mediaType": OCI_LAYER_TAR_GZIP, "digest": "sha256:00", "size": 1}]
        }));
        assert!(candidates(&docker).0.is_empty());
    }

    #[test]
    fn module_checks() {
        assert!(check_module(b"\0asm\x01\0\0\0").is_ok());
        assert!(check_module(b"MZ").is_err());
    }
}
