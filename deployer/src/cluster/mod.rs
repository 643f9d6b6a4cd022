//! Talking to Kubernetes about WasmPlugins: a client per kubeconfig context with bounded
//! timeouts (`connect`), server-side apply / get / list / delete of the resource, a
//! WasmPlugin or a TrafficExtension (`wasmplugin`), the registry pull Secret (`pull_secret`), and the mapping of API answers
//! to errors that say what to do (`errors`).
pub mod connect;
pub mod errors;
pub mod pull_secret;
pub mod wasmplugin;

use std::path::PathBuf;
use std::time::Duration;

pub use connect::{Cluster, ConnectOptions};
pub use wasmplugin::{Applied, DryRun, Outcome};

/// The field manager every write uses, so re-applies own the same fields.
pub const FIELD_MANAGER: &str = "deployer";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot load kubeconfig{}: {message}; point at one with --kubeconfig FILE or KUBECONFIG",
        path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default()
    )]
    Kubeconfig {
        path: Option<PathBuf>,
        message: String,
    },
    #[error("kubeconfig context {context:?}: {message}")]
    Context { context: String, message: String },
    #[error(
        "cannot reach the API server {server} (context {context}, gave up after {}s at most): {message}; check that the cluster is running and the kubeconfig points at it",
        timeout.as_secs()
    )]
    Unreachable {
        context: String,
        server: String,
        timeout: Duration,
        message: String,
    },
    #[error(
        "{kind} CRD not found: is Istio installed in this cluster? (context {context}, server {server}: no {resource} in {api_version}); install Istio (its CRDs come with `istioctl install` or the `base` Helm chart{})",
        if *kind == "TrafficExtension" { "; TrafficExtension needs an Istio with istio.io/api 1.32, else use --kind wasmplugin" } else { "" }
    )]
    CrdMissing {
        kind: &'static str,
        context: String,
        server: String,
        resource: &'static str,
        api_version: &'static str,
    },
    #[error(
        "forbidden: {user} cannot {verb} {resource}{} (context {context}); ask for RBAC that allows it, e.g. a Role with verbs [{verb}] on {resource}: {message}",
        namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default()
    )]
    Forbidden {
        context: String,
        user: String,
        verb: &'static str,
        resource: String,
        namespace: Option<String>,
        message: String,
    },
    #[error(
        "conflict applying {resource} {namespace}/{name} (context {context}): {message}; another field manager owns these fields: re-run with --force-conflicts to take them over (field manager \"{FIELD_MANAGER}\"), or change them with the tool that owns them"
    )]
    Conflict {
        context: String,
        resource: String,
        namespace: String,
        name: String,
        message: String,
    },
    #[error(
        "the API server {server} did not accept the credentials of context {context} (HTTP 401): {message}; refresh them (log in again) or fix the user in the kubeconfig"
    )]
    Unauthorized {
        context: String,
        server: String,
        message: String,
    },
    #[error(
        "namespace {namespace:?} not found (context {context}); create it (`kubectl create namespace {namespace}`) or pick another with -n"
    )]
    NamespaceMissing { context: String, namespace: String },
    #[error("the API server rejected {resource} {namespace}/{name} (context {context}): {message}")]
    Invalid {
        context: String,
        resource: String,
        namespace: String,
        name: String,
        message: String,
    },
    #[error("{resource} {namespace}/{name} not found (context {context})")]
    NotFound {
        context: String,
        resource: String,
        namespace: String,
        name: String,
    },
    #[error("{verb} {resource} failed (context {context}, HTTP {code}): {message}")]
    Api {
        context: String,
        verb: &'static str,
        resource: String,
        code: u16,
        message: String,
    },
    #[error("unexpected answer from the API server (context {context}): {message}")]
    Decode { context: String, message: String },
    #[error("cannot build the pull secret for {registry}: {message}")]
    PullSecret { registry: String, message: String },
}
