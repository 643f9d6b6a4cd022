//! The mesh side of a WasmPlugin: which pods it selects (`select`), what their `istio-proxy`
//! containers say about it (`logline`: Istio's sidecar log format, the lines that concern one
//! plugin, kwok's CRI log lines), the pods' logs through the API server (`pods`), which pods
//! `logs -f` reads as they come and go (`follow`), and the checks behind `deployer status`
//! (`status`, with `download` for http(s) module urls and `admin` for what each sidecar's Envoy
//! runs).
pub mod admin;
pub mod download;
pub mod follow;
pub mod logline;
pub mod migrate;
pub mod plugin;
pub mod pods;
pub mod sample;
pub mod select;
pub mod status;

pub use plugin::Plugin;
pub use select::{PodView, Selection};

/// The sidecar container Istio injects; `kubectl logs <pod> -c istio-proxy` reads it.
pub const PROXY_CONTAINER: &str = "istio-proxy";
/// Per-component Envoy log levels for a pod's sidecar, e.g. `wasm:info`.
pub const COMPONENT_LOG_LEVEL_ANNOTATION: &str = "sidecar.istio.io/componentLogLevel";
/// The sidecar's global Envoy log level (default `warning`).
pub const LOG_LEVEL_ANNOTATION: &str = "sidecar.istio.io/logLevel";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cluster(Box<crate::cluster::Error>),
    #[error(
        "WasmPlugin {namespace}/{name} not found (context {context}); `deployer list -n {namespace}` shows what is there"
    )]
    PluginMissing {
        context: String,
        namespace: String,
        name: String,
    },
    #[error("pod {namespace}/{pod}: {message}")]
    PodLogs {
        namespace: String,
        pod: String,
        /// The API server's HTTP status, when it answered.
        status: Option<u16>,
        message: String,
    },
}

// Boxed: the cluster error is large, and most results here are small.
impl From<crate::cluster::Error> for Error {
    fn from(err: crate::cluster::Error) -> Self {
        Error::Cluster(Box::new(err))
    }
}
