//! The wire format of cosign's signatures (sigstore/cosign pkg/oci/static, pkg/cosign/verify.go,
//! and the simple signing payload of github.com/sigstore/sigstore pkg/signature/payload).
use serde_json::{Value, json};

use super::keys::PublicKey;
use crate::oci::image::{OCI_CONFIG, OCI_MANIFEST, sha256_digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const SIMPLESIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `critical.type` cosign writes and checks.
const SIGNATURE_TYPE: &str = "cosign container image signature";

/// `sha256-<hex>.sig`: where cosign looks for the signatures of `sha256:<hex>`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// The simple signing payload cosign signs. serde_json's map is ordered by key, which gives
/// the same bytes as cosign's Go struct order.
pub fn payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    let value = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&value).expect("a JSON value always serializes")
}

/// One signature layer: the payload's descriptor, kept whole so annotations another tool
/// added (cosign's bundle or certificate) survive when we append a signature.
#[derive(Debug, Clone)]
pub struct Layer {
    pub digest: String,
    pub signature: String,
    descriptor: Value,
}

impl PartialEq for Layer {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.signature == other.signature
    }
}

impl Layer {
    pub fn new(payload: &[u8], signature: String) -> Self {
        let digest = sha256_digest(payload);
        Self {
            descriptor: json!({
                "mediaType": SIMPLESIGNING_MEDIA_TYPE,
                "size": payload.len(),
                "digest": digest,
                "annotations": {SIGNATURE_ANNOTATION: signature},
            }),
            digest,
            signature,
        }
    }
}

/// The signature layers of a `.sig` manifest (layers of other media types are ignored, as
/// cosign does).
pub fn layers(manifest: &[u8]) -> Result<Vec<Layer>, String> {
    let manifest: Value =
        serde_json::from_slice(manifest).map_err(|err| format!("manifest is not JSON: {err}"))?;
    let Some(layers) = manifest.get("layers").and_then(Value::as_array) else {
        return Err("manifest has no layers".into());
    };
    let mut out = Vec::new();
    for layer in layers {
        if layer.get("mediaType").and_then(Value::as_str) != Some(SIMPLESIGNING_MEDIA_TYPE) {
            continue;
        }
        let digest = layer
            .get("digest")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let signature = layer
            .pointer(&format!(
                "/annotations/{}",
                SIGNATURE_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.push(Layer {
            digest: digest.to_string(),
            signature: signature.to_string(),
            descriptor: layer.clone(),
        });
    }
    Ok(out)
}

pub struct SignatureImage {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

/// The `.sig` image as go-containerregistry builds it for cosign: an OCI manifest whose
/// config lists each (uncompressed) layer's digest as its diff_id.
pub fn image(layers: &[Layer]) -> SignatureImage {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .expect("a JSON value always serializes");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": sha256_digest(&config)},
        "layers": layers.iter().map(|l| l.descriptor.clone()).collect::<Vec<_>>(),
    }))
    .expect("a JSON value always serializes");
    SignatureImage {
        manifest_digest: sha256_digest(&manifest),
        config,
        manifest,
    }
}

/// cosign's checks for one layer: the signature verifies over the payload bytes, and the
/// payload is a simple signing document for `digest`.
pub fn check(
    payload: &[u8],
    signature_b64: &str,
    key: &PublicKey,
    digest: &str,
) -> Result<(), String> {
    if signature_b64.is_empty() {
        return Err(format!("no {SIGNATURE_ANNOTATION} annotation"));
    }
    let signature = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "the signature annotation is not base64".to_string())?;
    key.verify(payload, &signature)?;
    let document: Value = serde_json::from_slice(payload)
        .map_err(|err| format!("the signed payload is not JSON: {err}"))?;
    let kind = document.pointer("/critical/type").and_then(Value::as_str);
    if kind != Some(SIGNATURE_TYPE) {
        return Err(format!(
            "the signed payload's type is {kind:?}, not {SIGNATURE_TYPE:?}"
        ));
    }
    let signed = document
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if signed != digest {
        return Err(format!(
            "the signature is for {signed}, not for the image's {digest}"
        ));
    }
    Ok(())
}
