//! Signed modules in cosign's format, so `cosign verify` accepts what `deployer sign` writes
//! and `deployer verify` accepts what `cosign sign` writes.
//!
//! A signature is a "simple signing" JSON payload naming the repository and the manifest
//! digest, signed with ECDSA P-256, stored as a layer of an OCI image tagged
//! `sha256-<hex>.sig` in the same repository (the signature, base64, in the layer annotation
//! `dev.cosignproject.cosign/signature`). The digest signed and checked is the one Istio pulls:
//! for an image index, its linux/amd64 entry's.
mod cosign;
pub mod keys;

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_client::RegistryOperation;

use crate::oci::{self, ImageRef, Options, transport::Session};
pub use cosign::{SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE, payload, signature_tag};
pub use keys::{PASSWORD_ENV, Password, PrivateKey, PublicKey};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read key {path}: {message}")]
    ReadKey { path: PathBuf, message: String },

    #[error("{path} is not a usable key: {reason}")]
    BadKey { path: PathBuf, reason: String },

    #[error("cannot decrypt {path}: wrong password (or a damaged key file)")]
    WrongPassword { path: PathBuf },

    #[error("{path} is encrypted and no password was given: {reason}")]
    NoPassword { path: PathBuf, reason: String },

    #[error(transparent)]
    Oci(#[from] oci::Error),

    #[error(
        "{reference} ({digest}) is not signed: no signature image {tag} in its repository (sign it with `deployer sign` or `cosign sign`)"
    )]
    Unsigned {
        reference: String,
        digest: String,
        tag: String,
    },

    #[error("no valid signature for {reference} ({digest}) under key {fingerprint}: {reasons}")]
    Invalid {
        reference: String,
        digest: String,
        fingerprint: String,
        reasons: String,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Signed {
    /// The manifest digest signed (Istio's: an index's linux/amd64 entry).
    pub digest: String,
    /// `REPO:sha256-<hex>.sig`.
    pub signature_ref: String,
    /// Digest of the signature image's manifest.
    pub signature_digest: String,
    /// Whether this exact signature was already there (signing is deterministic).
    pub already_signed: bool,
    pub key_fingerprint: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    pub digest: String,
    pub signature_ref: String,
    pub key_fingerprint: String,
    /// Signature layers in the image (others may be under other keys).
    pub signatures: usize,
}

/// What cosign writes as `docker-reference`: the repository, without tag or digest.
fn docker_reference(reference: &ImageRef) -> String {
    format!(
        "{}/{}",
        reference.inner().registry(),
        reference.inner().repository()
    )
}

/// Signs the image REF resolves to (or `digest`, when the caller just pushed it) and adds the
/// signature to the `.sig` image, keeping signatures already there (cosign appends too).
pub async fn sign(
    reference: &ImageRef,
    digest: Option<&str>,
    key: &PrivateKey,
    options: &Options,
) -> Result<Signed, Error> {
    let digest = match digest {
        Some(digest) => digest.to_string(),
        None => oci::resolve_digest(&reference.to_string(), options).await?,
    };
    let payload = payload(&docker_reference(reference), &digest);
    let signature = STANDARD.encode(key.sign(&payload));
    let tag = signature_tag(&digest);
    let sig_ref = reference.with_tag(&tag);
    let session = Session::open(&sig_ref, options, RegistryOperation::Push).await?;
    let current = existing(&session).await?;
    let mut layers = match &current {
        Some((manifest, _)) => {
            cosign::layers(manifest).map_err(|message| oci::Error::Protocol {
                registry: reference.registry().to_string(),
                message: format!("the existing signature image {sig_ref} is unreadable: {message}"),
            })?
        }
        None => Vec::new(),
    };
    let layer = cosign::Layer::new(&payload, signature);
    let already_signed = layers.contains(&layer);
    let image = if already_signed {
        None
    } else {
        layers.push(layer);
        Some(cosign::image(&layers))
    };
    let signature_digest = match image {
        // Nothing to write: the digest of the manifest as stored (it may be cosign's bytes).
        None => current.map(|(_, digest)| digest).unwrap_or_default(),
        Some(image) => {
            if !session
                .blob_exists(&crate::oci::image::sha256_digest(&payload))
                .await?
            {
                session
                    .push_blob(&payload, &crate::oci::image::sha256_digest(&payload))
                    .await?;
            }
            session
                .push_blob(
                    &image.config,
                    &crate::oci::image::sha256_digest(&image.config),
                )
                .await?;
            session
                .push_manifest(&image.manifest, oci::image::OCI_MANIFEST)
                .await?;
            image.manifest_digest
        }
    };
    Ok(Signed {
        digest,
        signature_ref: sig_ref.to_string(),
        signature_digest,
        already_signed,
        key_fingerprint: key.public().fingerprint,
    })
}

/// Checks that the image Istio would pull for REF carries a signature by `key` whose payload
/// names that image's digest.
pub async fn verify(
    reference: &ImageRef,
    key: &PublicKey,
    options: &Options,
) -> Result<Verified, Error> {
    let digest = oci::resolve_digest(&reference.to_string(), options).await?;
    verify_digest(reference, &digest, key, options).await
}

/// As [`verify`], for a digest already resolved (apply pins first, then verifies that pin).
pub async fn verify_digest(
    reference: &ImageRef,
    digest: &str,
    key: &PublicKey,
    options: &Options,
) -> Result<Verified, Error> {
    let tag = signature_tag(digest);
    let sig_ref = reference.with_tag(&tag);
    let session = Session::open(&sig_ref, options, RegistryOperation::Pull).await?;
    let invalid = |reasons: String| Error::Invalid {
        reference: reference.name().to_string(),
        digest: digest.to_string(),
        fingerprint: key.fingerprint.clone(),
        reasons,
    };
    let Some((manifest, _)) = existing(&session).await? else {
        return Err(Error::Unsigned {
            reference: reference.name().to_string(),
            digest: digest.to_string(),
            tag: sig_ref.to_string(),
        });
    };
    let layers = cosign::layers(&manifest).map_err(&invalid)?;
    if layers.is_empty() {
        return Err(invalid(format!("{sig_ref} holds no signature layers")));
    }
    let mut reasons = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        // The blob is verified against its digest as it streams in, so the payload checked is
        // the one the manifest names.
        let payload = session.pull_blob(&layer.digest).await?;
        match cosign::check(&payload, &layer.signature, key, digest) {
            Ok(()) => {
                return Ok(Verified {
                    digest: digest.to_string(),
                    signature_ref: sig_ref.to_string(),
                    key_fingerprint: key.fingerprint.clone(),
                    signatures: layers.len(),
                });
            }
            Err(reason) => reasons.push(format!("signature {}: {reason}", i + 1)),
        }
    }
    Err(invalid(reasons.join("; ")))
}

/// The `.sig` manifest and its digest, if the tag exists.
async fn existing(session: &Session) -> Result<Option<(Vec<u8>, String)>, Error> {
    match session
        .pull_manifest(
            None,
            &[oci::image::OCI_MANIFEST, oci::image::DOCKER_MANIFEST],
        )
        .await
    {
        Ok(found) => Ok(Some(found)),
        Err(oci::Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests;
