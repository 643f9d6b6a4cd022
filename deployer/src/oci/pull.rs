//! Fetching a module the way Istio's agent does (see [`super::istio`]): the manifest (an index
//! resolved to linux/amd64), then the layers Istio would try, in its order, with digests
//! verified and the wasm magic checked. `fetch` reports a rejected layout; `pull` refuses it.
use oci_client::RegistryOperation;

use super::image::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use super::istio::{self, Candidate, Layout, Manifest, Verdict};
use super::transport::Session;
use super::{Error, ImageRef, Options};

const ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
];

#[derive(Debug, Clone)]
pub struct Fetched {
    pub reference: ImageRef,
    /// The digest Istio compares with WasmPlugin `sha256` (the image manifest's).
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub verdict: Verdict,
    /// The module Istio would load; for a rejected image, a best guess (a lone wasm-looking
    /// layer) so `inspect` can still report on it.
    pub module: Option<Vec<u8>>,
}

impl Fetched {
    pub fn pinned_url(&self) -> String {
        self.reference.pinned_url(&self.manifest_digest)
    }
}

pub async fn fetch(reference: &ImageRef, options: &Options) -> Result<Fetched, Error> {
    let session = Session::open(reference, options, RegistryOperation::Pull).await?;
    let (mut body, mut digest) = session.pull_manifest(None, ACCEPT).await?;
    let mut manifest = parse(reference, &body)?;
    if !manifest.manifests.is_empty() {
        let Some(entry) = istio::pick_from_index(&manifest) else {
            return Ok(rejected(
                reference,
                digest,
                body,
                "image index without a linux/amd64 entry".into(),
            ));
        };
        let entry = entry.digest.clone();
        (body, digest) = session.pull_manifest(Some(&entry), ACCEPT).await?;
        manifest = parse(reference, &body)?;
    }
    let (candidates, mut reasons) = istio::candidates(&manifest);
    for candidate in &candidates {
        match extract(&session, candidate).await? {
            Ok(module) => {
                return Ok(Fetched {
                    reference: reference.clone(),
                    manifest_digest: digest,
                    manifest: body,
                    verdict: Verdict::Compatible(candidate.layout),
                    module: Some(module),
                });
            }
            Err(reason) => reasons.push(format!("{}: {reason}", short_layout(candidate.layout))),
        }
    }
    let mut fetched = rejected(reference, digest, body, reasons.join("; "));
    fetched.module = best_guess(&session, &manifest).await;
    Ok(fetched)
}

/// The module, only when Istio would load the image.
pub async fn pull(reference: &ImageRef, options: &Options) -> Result<(Vec<u8>, Fetched), Error> {
    let fetched = fetch(reference, options).await?;
    match (&fetched.verdict, &fetched.module) {
        (Verdict::Compatible(_), Some(module)) => Ok((module.clone(), fetched)),
        (Verdict::Rejected(reason), _) => Err(Error::NotIstioCompatible {
            reference: reference.to_string(),
            reason: reason.clone(),
        }),
        (Verdict::Compatible(_), None) => Err(Error::NotIstioCompatible {
            reference: reference.to_string(),
            reason: "no module found".into(),
        }),
    }
}

fn parse(reference: &ImageRef, body: &[u8]) -> Result<Manifest, Error> {
    serde_json::from_slice(body).map_err(|err| Error::Protocol {
        registry: reference.registry().to_string(),
        message: format!("manifest of {reference} is not valid JSON: {err}"),
    })
}

fn rejected(reference: &ImageRef, digest: String, manifest: Vec<u8>, reason: String) -> Fetched {
    Fetched {
        reference: reference.clone(),
        manifest_digest: digest,
        manifest,
        verdict: Verdict::Rejected(reason),
        module: None,
    }
}

fn short_layout(layout: Layout) -> &'static str {
    match layout {
        Layout::DockerCompat => "docker variant",
        Layout::OciCompat => "compat variant",
        Layout::OciRaw => "oci variant",
    }
}

/// Inner `Err(reason)`: Istio would refuse this layer; outer `Err`: the registry failed us.
async fn extract(
    session: &Session,
    candidate: &Candidate,
) -> Result<Result<Vec<u8>, String>, Error> {
    let compressed_cap = istio::MAX_MODULE_BYTES;
    if candidate.layer.size > compressed_cap {
        return Ok(Err(format!(
            "layer is {} bytes, over Istio's limit",
            candidate.layer.size
        )));
    }
    let blob = session.pull_blob(&candidate.layer.digest).await?;
    let module = if candidate.is_tar_gzip() {
        match istio::extract_plugin(&blob) {
            Ok(module) => module,
            Err(reason) => return Ok(Err(reason)),
        }
    } else {
        blob
    };
    Ok(istio::check_module(&module).map(|()| module))
}

/// For reporting only: the single layer that holds a raw wasm module, if any.
async fn best_guess(session: &Session, manifest: &Manifest) -> Option<Vec<u8>> {
    let layer = manifest
        .layers
        .iter()
        .find(|layer| layer.media_type.contains("wasm") && layer.size <= istio::MAX_MODULE_BYTES)?;
    let blob = session.pull_blob(&layer.digest).await.ok()?;
    istio::check_module(&blob).is_ok().then_some(blob)
}
