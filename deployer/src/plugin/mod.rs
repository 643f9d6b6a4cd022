//! The Istio `WasmPlugin` as this tool builds it: the spec model (`spec`), the CRD's rules
//! checked client-side (`validate`), building a spec from CLI flags or `-f plugin.yaml`
//! (`flags`), the `--image` reference and its digest pinning (`image`), the bounded revision
//! history kept in an annotation for `rollback` (`history`), and Helm values (`helm`). The
//! model reads a user's file strictly and a cluster's object leniently (`read`).
//! Nothing here talks to a cluster or a registry; `deployer::cluster` does.
pub mod flags;
pub mod helm;
pub mod history;
pub mod image;
pub mod read;
pub mod spec;
pub mod validate;
pub mod wire_enum;

use std::path::PathBuf;

pub use spec::{WasmPluginManifest, WasmPluginSpec};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid WasmPlugin {name}:\n  - {}\nfix these and retry; nothing was sent", problems.join("\n  - "))]
    Invalid { name: String, problems: Vec<String> },
    #[error("{flag} {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--image {image:?}: {reason}")]
    Image { image: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {message}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{0}")]
    Missing(String),
    #[error(
        "revision history annotation {annotation} on {name} is unreadable ({message}); re-apply with `deployer apply` to start a new history"
    )]
    History {
        name: String,
        annotation: &'static str,
        message: String,
    },
    #[error("{name} has no revision {revision}; available: {available}")]
    NoRevision {
        name: String,
        revision: u64,
        available: String,
    },
    #[error("cannot render Helm values: {0}")]
    Helm(String),
}
