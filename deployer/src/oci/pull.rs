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
    /// The digest Istio compares with WasmPlugin `sha256`: the image manifest's, which for an
    /// index is its linux/amd64 entry's, not the index's own.
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    /// Set when the reference named an image index: the index's digest and the platform of
    /// the entry Istio uses.
    pub index: Option<IndexChoice>,
    pub verdict: Verdict,
    /// The module Istio would load; for a rejected image, a best guess (a lone wasm-looking
    /// layer) so `inspect` can still report on it.
    pub module: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexChoice {
    /// `sha256:<hex>` of the (outermost) index the reference names.
    pub index_digest: String,
    /// The platform of the entry taken, as `os/arch[/variant]` (`linux/amd64` for an entry
    /// without one).
    pub platform: String,
}

impl Fetched {
    pub fn pinned_url(&self) -> String {
        self.reference.pinned_url(&self.manifest_digest)
    }
}

/// Index nesting go-containerregistry follows without a limit; no real image nests this deep.
const MAX_INDEX_DEPTH: usize = 8;

/// What istio-agent resolves a reference to: `remote.Get`, then `Descriptor.Image()`, which
/// walks indexes (nested ones too) to the entry for linux/amd64 (see
/// [`istio::child_for_istio`]), fetching each child with the media type its descriptor gives.
struct Resolved {
    body: Vec<u8>,
    digest: String,
    manifest: Manifest,
    index: Option<IndexChoice>,
    /// Istio would stop here: an index without an entry it takes.
    refused: Option<String>,
}

async fn resolve(session: &Session, reference: &ImageRef) -> Result<Resolved, Error> {
    let (mut body, mut digest) = session.pull_manifest(None, ACCEPT).await?;
    let mut manifest = parse(reference, &body)?;
    // The top level's kind comes from the registry (its mediaType); a child's from the
    // descriptor that names it, as in go-containerregistry.
    let mut is_index = manifest.is_index();
    let mut index: Option<IndexChoice> = None;
    for _ in 0..MAX_INDEX_DEPTH {
        if !is_index {
            return Ok(Resolved {
                body,
                digest,
                manifest,
                index,
                refused: None,
            });
        }
        let entry = match istio::child_for_istio(&manifest) {
            Ok(entry) => entry.clone(),
            Err(reason) => {
                return Ok(Resolved {
                    body,
                    digest,
                    manifest,
                    index,
                    refused: Some(reason),
                });
            }
        };
        let platform = entry
            .platform
            .as_ref()
            .map_or_else(|| istio::ISTIO_PLATFORM.to_string(), ToString::to_string);
        let index_digest = index.map_or(digest, |outer| outer.index_digest);
        index = Some(IndexChoice {
            index_digest,
            platform,
        });
        let accept: Vec<&str> = if entry.media_type.is_empty() {
            ACCEPT.to_vec()
        } else {
            vec![entry.media_type.as_str()]
        };
        (body, digest) = session.pull_manifest(Some(&entry.digest), &accept).await?;
        manifest = parse(reference, &body)?;
        is_index = if entry.media_type.is_empty() {
            manifest.is_index()
        } else {
            istio::is_index_media_type(&entry.media_type)
        };
    }
    Ok(Resolved {
        body,
        digest,
        manifest,
        index,
        refused: Some(format!(
            "image indexes nested more than {MAX_INDEX_DEPTH} deep"
        )),
    })
}

/// The manifest digest Istio compares with WasmPlugin `sha256` for REF (an index resolved to
/// its linux/amd64 entry), or `NotIstioCompatible` when Istio would not get that far.
pub async fn resolve_digest(reference: &ImageRef, options: &Options) -> Result<String, Error> {
    let session = Session::open(reference, options, RegistryOperation::Pull).await?;
    let resolved = resolve(&session, reference).await?;
    match resolved.refused {
        None => Ok(resolved.digest),
        Some(reason) => Err(Error::NotIstioCompatible {
            reference: reference.to_string(),
            reason,
        }),
    }
}

pub async fn fetch(reference: &ImageRef, options: &Options) -> Result<Fetched, Error> {
    let session = Session::open(reference, options, RegistryOperation::Pull).await?;
    let Resolved {
        body,
        digest,
        manifest,
        index,
        refused,
    } = resolve(&session, reference).await?;
    if let Some(reason) = refused {
        let mut fetched = rejected(reference, digest, body, reason);
        fetched.index = index;
        return Ok(fetched);
    }
    let (candidates, mut reasons) = istio::candidates(&manifest);
    for candidate in &candidates {
        match extract(&session, candidate).await? {
            Ok(module) => {
                return Ok(Fetched {
                    reference: reference.clone(),
                    manifest_digest: digest,
                    manifest: body,
                    index,
                    verdict: Verdict::Compatible(candidate.layout),
                    module: Some(module),
                });
            }
            Err(reason) => reasons.push(format!("{}: {reason}", short_layout(candidate.layout))),
        }
    }
    let mut fetched = rejected(reference, digest, body, reasons.join("; "));
    fetched.index = index;
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
        index: None,
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
