//! Upload order that never leaves a tag pointing at missing content: every blob first (each
//! skipped when the registry already has it), the manifest last.
use oci_client::RegistryOperation;

use super::image::Image;
use super::transport::Session;
use super::{Error, ImageRef, Options};

#[derive(Debug, Clone)]
pub enum PushEvent {
    Started { total_bytes: u64 },
    BlobSkipped { digest: String, size: u64 },
    BlobUploaded { digest: String, size: u64 },
    ManifestUploaded { digest: String, size: u64 },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PushOutcome {
    /// Manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// `oci://REF@sha256:...`, ready for a WasmPlugin url.
    pub url: String,
    /// The WasmPlugin `sha256` value: for oci:// urls Istio compares the manifest digest.
    pub sha256: String,
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
    pub skipped_blobs: usize,
}

pub async fn push(
    image: &Image,
    reference: &ImageRef,
    options: &Options,
    progress: &(dyn Fn(PushEvent) + Sync),
) -> Result<PushOutcome, Error> {
    if reference.inner().digest().is_some() {
        return Err(Error::InvalidReference {
            reference: reference.to_string(),
            reason: "push needs a tag, not a digest (the digest is the result)".into(),
        });
    }
    let session = Session::open(reference, options, RegistryOperation::Push).await?;
    progress(PushEvent::Started {
        total_bytes: image.total_bytes(),
    });
    let (mut uploaded_blobs, mut uploaded_bytes, mut skipped_blobs) = (0, 0, 0);
    for blob in image.blobs() {
        let size = blob.data.len() as u64;
        if session.blob_exists(&blob.digest).await? {
            skipped_blobs += 1;
            progress(PushEvent::BlobSkipped {
                digest: blob.digest.clone(),
                size,
            });
            continue;
        }
        session.push_blob(&blob.data, &blob.digest).await?;
        uploaded_blobs += 1;
        uploaded_bytes += size;
        progress(PushEvent::BlobUploaded {
            digest: blob.digest.clone(),
            size,
        });
    }
    session
        .push_manifest(&image.manifest, &image.manifest_media_type)
        .await?;
    let size = image.manifest.len() as u64;
    progress(PushEvent::ManifestUploaded {
        digest: image.manifest_digest.clone(),
        size,
    });
    let digest = image.manifest_digest.clone();
    Ok(PushOutcome {
        url: reference.pinned_url(&digest),
        sha256: digest.trim_start_matches("sha256:").to_string(),
        digest,
        size,
        uploaded_blobs,
        uploaded_bytes,
        skipped_blobs,
    })
}
