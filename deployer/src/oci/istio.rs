//! The rules Istio's agent applies to an image before it hands a module to Envoy
//! (istio/istio pkg/wasm, summarised in shared/FACTS.md): a Docker v2 manifest whose last layer
//! is a Docker tar+gzip holding `plugin.wasm`; else an OCI manifest whose last layer is an OCI
//! tar+gzip holding `plugin.wasm` ("compat"); else exactly two layers, one of them the raw
//! `application/vnd.module.wasm.content.layer.v1+wasm` module. Anything else is refused.
use std::io::Read;

use serde::Deserialize;

use super::Error;
use super::image::{
    DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_LAYER_TAR_GZIP,
    PLUGIN_FILE, WASM_CONTENT_LAYER, WASM_MAGIC,
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
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    #[serde(default)]
    pub media_type: String,
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
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Manifest {
    /// Whether this is an image index / manifest list. go-containerregistry decides by the
    /// Content-Type the registry sends, which registries derive from the body's `mediaType`;
    /// an OCI index may omit that field, so a `manifests` list without `layers` counts too.
    pub fn is_index(&self) -> bool {
        match self.media_type.as_deref() {
            Some(media_type) => is_index_media_type(media_type),
            None => !self.manifests.is_empty() && self.layers.is_empty(),
        }
    }
}

pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
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

/// The platform istio-agent asks go-containerregistry for: it never sets one, so `remote`'s
/// default applies (`pkg/v1/remote/options.go`: amd64/linux, no variant, OS version or features).
pub const ISTIO_PLATFORM: &str = "linux/amd64";

/// The entry of an index Istio's agent uses, by go-containerregistry's `childByPlatform`: the
/// FIRST entry whose platform has os `linux` and architecture `amd64` (its variant, OS version
/// and features do not matter, as the required platform leaves them empty), an entry without a
/// platform counting as linux/amd64. There is no fallback to a lone entry of another platform:
/// such an index is refused with "no child with platform ...", and so is it here (`Err`: why).
pub fn child_for_istio(index: &Manifest) -> Result<&IndexEntry, String> {
    index
        .manifests
        .iter()
        .find(|entry| {
            entry
                .platform
                .as_ref()
                .is_none_or(|p| p.os == "linux" && p.architecture == "amd64")
        })
        .ok_or_else(|| {
            let platforms: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|entry| entry.platform.as_ref().map(ToString::to_string))
                .collect();
            format!(
                "image index without a {ISTIO_PLATFORM} entry (it has: {}); Istio's agent fetches \
                 only the {ISTIO_PLATFORM} image of an index (go-containerregistry's default \
                 platform) and refuses this one with \"no child with platform\"",
                if platforms.is_empty() {
                    "no entries".to_string()
                } else {
                    platforms.join(", ")
                }
            )
        })
}

/// `plugin.wasm` (at any depth, as Istio compares base names) from a tar+gzip layer.
pub fn extract_plugin(tar_gzip: &[u8]) -> Result<Vec<u8>, String> {
    // Go's gzip.Reader reads every member of a multi-member gzip stream (concatenated gzip
    // files, as pigz and some image builders write); GzDecoder would stop after the first.
    let decoder = flate2::read::MultiGzDecoder::new(tar_gzip);
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

    fn index(entries: serde_json::Value) -> Manifest {
        manifest(serde_json::json!({"mediaType": OCI_INDEX, "manifests": entries}))
    }

    fn entry(digest: &str, platform: Option<(&str, &str)>) -> serde_json::Value {
        let mut entry =
            serde_json::json!({"mediaType": OCI_MANIFEST_TYPE, "digest": digest, "size": 1});
        if let Some((os, architecture)) = platform {
            entry["platform"] = serde_json::json!({"os": os, "architecture": architecture});
        }
        entry
    }

    const OCI_MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

    #[test]
    fn index_child_is_the_first_linux_amd64_entry_like_go_containerregistry() {
        let picked = |entries| child_for_istio(&index(entries)).map(|e| e.digest.clone());
        // The first match wins, not the last, and a variant does not get in the way.
        let mut with_variant = entry("sha256:b", Some(("linux", "amd64")));
        with_variant["platform"]["variant"] = "v3".into();
        assert_eq!(
            picked(serde_json::json!([
                entry("sha256:a", Some(("linux", "arm64"))),
                with_variant,
                entry("sha256:c", Some(("linux", "amd64"))),
            ])),
            Ok("sha256:b".to_string())
        );
        // An entry without a platform counts as linux/amd64.
        assert_eq!(
            picked(serde_json::json!([
                entry("sha256:a", Some(("wasip1", "wasm"))),
                entry("sha256:n", None)
            ])),
            Ok("sha256:n".to_string())
        );
        // A lone entry of another platform is refused, as Istio refuses it.
        let refused = picked(serde_json::json!([entry(
            "sha256:w",
            Some(("wasip1", "wasm"))
        )]))
        .unwrap_err();
        assert!(refused.contains("wasip1/wasm"), "{refused}");
        assert!(refused.contains("linux/amd64"), "{refused}");
        assert!(picked(serde_json::json!([])).is_err());
    }

    #[test]
    fn index_detection_by_media_type_or_shape() {
        assert!(index(serde_json::json!([])).is_index());
        let list =
            manifest(serde_json::json!({"mediaType": DOCKER_MANIFEST_LIST, "manifests": []}));
        assert!(list.is_index());
        let untyped = manifest(serde_json::json!({"manifests": [entry("sha256:a", None)]}));
        assert!(untyped.is_index());
        let image = manifest(serde_json::json!({"mediaType": OCI_MANIFEST_TYPE, "layers": []}));
        assert!(!image.is_index());
    }

    #[test]
    fn multi_member_gzip_layers_are_read_to_the_end() {
        let module: Vec<u8> = b"\0asm\x01\0\0\0"
            .iter()
            .copied()
            .chain((0..20_000u32).map(|i| (i % 251) as u8))
            .collect();
        let image = package(&module, Format::Compat, &Metadata::default()).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&image.layers[0].data[..])
            .read_to_end(&mut tar)
            .unwrap();
        // The same tar stream as three concatenated gzip members.
        let mut layer = Vec::new();
        for part in tar.chunks(tar.len() / 3 + 1) {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut encoder, part).unwrap();
            layer.extend(encoder.finish().unwrap());
        }
        assert_eq!(extract_plugin(&layer).unwrap(), module);
    }

    #[test]
    fn module_checks() {
        assert!(check_module(b"\0asm\x01\0\0\0").is_ok());
        assert!(check_module(b"MZ").is_err());
    }
}
