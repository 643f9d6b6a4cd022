//! OCI images for proxy-wasm modules: packaging in the layouts Istio's agent (and Envoy
//! Gateway) can fetch, pushing with retries, pulling by Istio's rules, and registry auth.
//!
//! Commands use [`push`], [`fetch`]/[`pull`] and [`resolve_digest`]; everything talks to the
//! registry through `oci-client`, wrapped by [`transport`] (TLS, retries) and [`auth`]
//! (docker config, credential helpers, identity tokens).
pub mod auth;
mod error;
pub mod image;
pub mod istio;
mod options;
mod pull;
mod push;
pub mod reference;
pub mod timeout;
pub mod transport;

pub use auth::{Credentials, Secret};
pub use error::Error;
pub use image::{Format, Image, Metadata};
pub use istio::{Layout, Verdict};
pub use options::{Options, RegistryArgs};
pub use pull::{Fetched, IndexChoice, fetch, pull};
pub use push::{PushEvent, PushOutcome, push};
pub use reference::ImageRef;
pub use transport::{RetryPolicy, Transport};

/// Resolves REF (a tag or digest reference, `oci://` optional) to the manifest digest
/// (`sha256:<hex>`) Istio compares with WasmPlugin `sha256` for oci:// urls: for an image
/// index, its linux/amd64 image's (what istio-agent fetches), not the index's own.
pub async fn resolve_digest(reference: &str, options: &Options) -> Result<String, Error> {
    let reference = ImageRef::parse(reference)?;
    pull::resolve_digest(&reference, options).await
}
