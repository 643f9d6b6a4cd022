//! The one error type of the `oci` boundary. Every variant names the input and says what to
//! do next; none carries a password or token (credentials are reported by their source only).
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid image reference `{reference}`: {reason} (expected e.g. localhost:5000/filters/logger:v1)"
    )]
    InvalidReference { reference: String, reason: String },

    #[error("`{path}` is not a wasm module: {reason}")]
    NotWasm { path: String, reason: String },

    #[error(
        "the module is {size} bytes, over Istio's {limit_mib} MiB limit: Istio's agent would refuse to fetch it (nothing was sent)"
    )]
    ModuleTooLarge { size: u64, limit_mib: u64 },

    #[error("cannot read the CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },

    #[error("cannot read the docker config {path}: {message}")]
    DockerConfig { path: PathBuf, message: String },

    #[error("credential helper `docker-credential-{helper}` failed for {registry}: {message}")]
    CredentialHelper {
        helper: String,
        registry: String,
        message: String,
    },

    #[error("{message}")]
    Usage { message: String },

    #[error("registry {registry} refused the credentials{who} (HTTP 401 Unauthorized){hint}")]
    Unauthorized {
        registry: String,
        who: String,
        hint: String,
    },

    #[error("registry {registry} denied access to {repository} (HTTP 403 Forbidden): {message}")]
    Forbidden {
        registry: String,
        repository: String,
        message: String,
    },

    #[error("{reference} not found in the registry (HTTP 404): {message}")]
    NotFound { reference: String, message: String },

    #[error("registry {url} answered HTTP {status} after {attempts} attempt(s): {message}")]
    Registry {
        url: String,
        status: u16,
        attempts: u32,
        message: String,
    },

    #[error("cannot reach registry {registry} after {attempts} attempt(s): {message}{hint}")]
    Unreachable {
        registry: String,
        attempts: u32,
        message: String,
        hint: String,
    },

    #[error(
        "registry {registry} did not answer within {timeout} ({attempts} attempt(s), {elapsed} in all): it accepts connections but does not respond; check that it is healthy, or raise --timeout for a slow link"
    )]
    TimedOut {
        registry: String,
        timeout: String,
        attempts: u32,
        elapsed: String,
    },

    #[error("TLS with registry {registry} failed: {message}{hint}")]
    Tls {
        registry: String,
        message: String,
        hint: String,
    },

    #[error("registry {registry} broke the distribution protocol: {message}")]
    Protocol { registry: String, message: String },

    #[error("{reference} is not an image Istio can load: {reason}")]
    NotIstioCompatible { reference: String, reason: String },

    #[error("content of {reference} does not match its digest: {message}")]
    DigestMismatch { reference: String, message: String },
}
