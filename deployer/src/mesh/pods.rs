//! Reading the cluster for the mesh views: the plugin, the pods of its namespace, and their
//! `istio-proxy` logs through the API server (the kubelet's log endpoint, kwok's here).
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

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
    let failed = |message: String| {
        Error::from(crate::cluster::Error::Kubeconfig {
            path: options.kubeconfig.clone(),
            message,
        })
    };
    let kubeconfig = match &options.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|err| failed(err.to_string()))?;
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|err| failed(err.to_string()))?;
    config.connect_timeout = Some(crate::cluster::connect::CONNECT_TIMEOUT);
    config.read_timeout = None;
    crate::tls::install_crypto_provider();
    kube::Client::try_from(config).map_err(|err| failed(err.to_string()))
}

/// How much of a log to read.
#[derive(Debug, Clone, Default)]
pub struct LogWindow {
    pub follow: bool,
    pub since_seconds: Option<i64>,
    pub tail_lines: Option<i64>,
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
        tail_lines: window.tail_lines,
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
                other => format!("cannot read the {PROXY_CONTAINER} log: {other}"),
            },
        })
}

/// Parses `--since` values the way kubectl does: `30s`, `5m`, `2h`, or combinations (`1h30m`).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let mut total = 0i64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("unknown unit {c:?} (use s, m or h, e.g. 5m)")),
        };
        let value: i64 = number
            .parse()
            .map_err(|_| "a number must come before each unit (e.g. 5m)".to_string())?;
        total += value * unit;
        number.clear();
    }
    if !number.is_empty() || total <= 0 {
        return Err("expected a positive duration with a unit, e.g. 30s, 5m, 1h".into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
