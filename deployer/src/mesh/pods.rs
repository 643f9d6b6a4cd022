//! Reading the cluster for the mesh views: the plugin, the pods of its namespace, and their
//! `istio-proxy` logs through the API server (the kubelet's log endpoint, kwok's here).
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use k8s_openapi::jiff::Timestamp;

use super::{Error, PROXY_CONTAINER, Plugin, PodView};
use crate::cluster::errors::{self, Attempt, Failure};
use crate::cluster::{Cluster, ConnectOptions};

/// The plugin, or `PluginMissing` naming where it was looked for.
pub async fn get_plugin(cluster: &Cluster, namespace: &str, name: &str) -> Result<Plugin, Error> {
    cluster.ensure_crd().await?;
    match cluster.get_plugin(namespace, name).await? {
        Some(object) => Ok(Plugin::from_object(&object)),
        None => Err(Error::PluginMissing {
            context: cluster.context.clone(),
            namespace: namespace.into(),
            name: name.into(),
        }),
    }
}

fn pod_error(
    cluster: &Cluster,
    verb: &'static str,
    namespace: &str,
    err: kube::Error,
) -> crate::cluster::Error {
    errors::map(
        cluster,
        &Attempt {
            verb,
            resource: "pods",
            namespace: Some(namespace),
            name: None,
        },
        Failure::from(err),
    )
}

pub async fn list_pods(cluster: &Cluster, namespace: &str) -> Result<Vec<PodView>, Error> {
    list_matching(cluster, namespace, &ListParams::default()).await
}

/// The pods `plugin` selects (its matchLabels go to the API server, so a periodic listing
/// stays small in a busy namespace).
pub async fn list_selected(cluster: &Cluster, plugin: &Plugin) -> Result<Vec<PodView>, Error> {
    let mut params = ListParams::default();
    if let Some(labels) = plugin.selector.as_ref().filter(|labels| !labels.is_empty()) {
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        params = params.labels(&selector.join(","));
    }
    let pods = list_matching(cluster, &plugin.namespace, &params).await?;
    Ok(super::select::select(plugin, &pods).selected)
}

async fn list_matching(
    cluster: &Cluster,
    namespace: &str,
    params: &ListParams,
) -> Result<Vec<PodView>, Error> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let pods = cluster
        .bounded(async {
            api.list(params)
                .await
                .map_err(|err| pod_error(cluster, "list", namespace, err))
        })
        .await?;
    let mut views: Vec<PodView> = pods.items.iter().map(PodView::from_pod).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(views)
}

/// A client for long-lived log streams: the same kubeconfig context as `Cluster::connect`
/// but without its read timeout, which would cut `-f` after a quiet half minute.
pub async fn streaming_client(options: &ConnectOptions) -> Result<kube::Client, Error> {
    let mut loaded = crate::cluster::connect::Loaded::load(options).await?;
    loaded.config.read_timeout = None;
    Ok(loaded.client()?)
}

/// Log requests open at once by default (`--max-log-requests`): each is a connection (a file
/// descriptor), so 50 stays far below the usual `ulimit -n` of 1024 (and 256 on macOS) while
/// reading a thousand pods' logs in about the time of a few dozen.
pub const MAX_LOG_REQUESTS: u32 = 50;

/// How much of a log to read.
#[derive(Debug, Clone, Default)]
pub struct LogWindow {
    pub follow: bool,
    pub since_seconds: Option<i64>,
    /// Lines written at or after this time (sent in whole seconds, rounded down).
    pub since_time: Option<Timestamp>,
    pub tail_lines: Option<i64>,
    /// Prefix each line with the time it was written (RFC3339Nano and a space), as
    /// `kubectl logs --timestamps` does: how a reader resumes a stream without repeating lines.
    pub timestamps: bool,
}

/// Rounds down to a whole second. The API takes `sinceTime` in whole seconds and kube rounds
/// half up, which could skip the lines of the last half second; rounding down first never
/// loses a line (the reader drops the ones it already has).
pub fn whole_second(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// The `istio-proxy` log of one pod as a stream of bytes (lines end with `\n`).
pub async fn proxy_log(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    window: &LogWindow,
) -> Result<impl futures::AsyncBufRead + use<>, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = LogParams {
        container: Some(PROXY_CONTAINER.into()),
        follow: window.follow,
        since_seconds: window.since_seconds,
        since_time: window.since_time.map(whole_second),
        tail_lines: window.tail_lines,
        timestamps: window.timestamps,
        ..Default::default()
    };
    api.log_stream(pod, &params)
        .await
        .map_err(|err| Error::PodLogs {
            namespace: namespace.into(),
            pod: pod.into(),
            status: match &err {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            message: match err {
                kube::Error::Api(status) => format!(
                    "cannot read the {PROXY_CONTAINER} log (HTTP {}): {}",
                    status.code, status.message
                ),
                other => format!(
                    "cannot read the {PROXY_CONTAINER} log: {}",
                    describe_failure(&other)
                ),
            },
        })
}

/// An error with its causes, so "client error (Connect)" says what failed underneath; when
/// the process ran out of file descriptors (every log stream is a connection) it says so, with
/// what to do, instead of the bare connect error.
pub fn describe_failure(err: &(dyn std::error::Error + 'static)) -> String {
    let out_of_files = crate::error_chain::causes(err).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)))
    });
    let mut message = crate::error_chain::flatten(err);
    if out_of_files || message.contains("Too many open files") {
        message = format!("{TOO_MANY_OPEN_FILES} ({message})");
    }
    message
}

/// The start of every message about running out of file descriptors.
pub const TOO_MANY_OPEN_FILES: &str = "too many open files: every log stream is a connection, so raise the limit (`ulimit -n`) or lower --max-log-requests";
