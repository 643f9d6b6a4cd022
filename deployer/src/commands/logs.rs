//! `deployer logs NAME`: what the sidecars of the pods a WasmPlugin selects say about it,
//! streamed from every pod at once through the API server, each line prefixed by its pod.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use deployer::cluster::{Cluster, ConnectOptions};
use deployer::mesh::pods::{self, LogWindow};
use deployer::mesh::{PROXY_CONTAINER, logline, select};
use futures::{AsyncBufReadExt, StreamExt};
use tokio::sync::mpsc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The WasmPlugin's name.
    pub name: String,
    /// Namespace of the WasmPlugin (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Keep streaming new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines newer than this (e.g. 30s, 5m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = pods::parse_duration)]
    pub since: Option<i64>,
    /// Only the last N lines of each pod's log (counted before filtering, like kubectl).
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
    /// Every line of the istio-proxy logs, not only those about this plugin.
    #[arg(long)]
    pub all: bool,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

enum Message {
    Line { pod: String, line: String },
    Failed { pod: String, error: String },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    deployer::oci::install_crypto_provider();
    let connect = ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let cluster = Cluster::connect(&connect).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let plugin = pods::get_plugin(&cluster, &namespace, &args.name).await?;
    if !plugin.targets_workloads() {
        anyhow::bail!(
            "WasmPlugin {namespace}/{} attaches through {}: read the logs of those gateways' pods (kubectl logs -l <gateway labels> | grep \"wasm log {}\")",
            args.name,
            select::describe_selector(&plugin),
            plugin.envoy_name()
        );
    }
    let all_pods = pods::list_pods(&cluster, &namespace).await?;
    let selection = select::select(&plugin, &all_pods);
    if selection.selected.is_empty() {
        anyhow::bail!(
            "no pod in namespace {namespace} matches WasmPlugin {}'s selector {} ({} pod(s) there): nothing to read; `deployer status {}` says more",
            args.name,
            select::describe_selector(&plugin),
            selection.not_selected,
            args.name
        );
    }
    let (meshed, outside): (Vec<_>, Vec<_>) = selection
        .selected
        .into_iter()
        .partition(|pod| pod.has_proxy);
    for pod in &outside {
        eprintln!(
            "warning: pod {} has no {PROXY_CONTAINER} container: it is not in the mesh, so the plugin does not run there",
            pod.name
        );
    }
    if meshed.is_empty() {
        anyhow::bail!(
            "none of the {} selected pod(s) has an {PROXY_CONTAINER} container, so the plugin runs nowhere: enable sidecar injection (label the namespace istio-injection=enabled) and restart the pods",
            outside.len()
        );
    }
    let quiet: Vec<String> = meshed
        .iter()
        .filter(|pod| !pod.logs_wasm_info())
        .map(|pod| pod.name.clone())
        .collect();
    if args.follow && !args.all && !quiet.is_empty() {
        eprintln!("{}", level_hint(&quiet));
    }
    let client = if args.follow {
        pods::streaming_client(&connect).await?
    } else {
        cluster.client.clone()
    };
    let window = LogWindow {
        follow: args.follow,
        since_seconds: args.since,
        tail_lines: args.tail,
    };
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let envoy_name = plugin.envoy_name();
    let url = plugin.fetch_url();
    for pod in &meshed {
        let sender = sender.clone();
        let client = client.clone();
        let namespace = namespace.clone();
        let pod = pod.name.clone();
        let window = window.clone();
        let (envoy_name, url, all) = (envoy_name.clone(), url.clone(), args.all);
        tokio::spawn(async move {
            let stream = match pods::proxy_log(&client, &namespace, &pod, &window).await {
                Ok(stream) => stream,
                Err(err) => {
                    let _ = sender.send(Message::Failed {
                        pod,
                        error: err.to_string(),
                    });
                    return;
                }
            };
            let mut lines = std::pin::pin!(stream.lines());
            while let Some(line) = lines.next().await {
                match line {
                    Ok(line) => {
                        if all || logline::classify(&line, &envoy_name, &url).is_some() {
                            let message = Message::Line {
                                pod: pod.clone(),
                                line,
                            };
                            if sender.send(message).is_err() {
                                return;
                            }
                        }
                    }
                    Err(err) => {
                        let _ = sender.send(Message::Failed {
                            pod,
                            error: format!("reading the {PROXY_CONTAINER} log: {err}"),
                        });
                        return;
                    }
                }
            }
        });
    }
    drop(sender);
    let mut printed = 0usize;
    let mut failed = 0usize;
    let stdout = std::io::stdout();
    while let Some(message) = receiver.recv().await {
        match message {
            Message::Line { pod, line } => {
                let mut out = stdout.lock();
                // A closed pipe (`| head`) ends the command quietly.
                if writeln!(out, "[pod/{pod}/{PROXY_CONTAINER}] {line}")
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return Ok(ExitCode::SUCCESS);
                }
                printed += 1;
            }
            Message::Failed { pod, error } => {
                failed += 1;
                // Errors from the API name the pod already.
                if error.contains(&pod) {
                    eprintln!("warning: {error}");
                } else {
                    eprintln!("warning: pod {pod}: {error}");
                }
            }
        }
    }
    if failed == meshed.len() {
        anyhow::bail!(
            "could not read the {PROXY_CONTAINER} log of any pod WasmPlugin {namespace}/{} selects (see the warnings above)",
            args.name
        );
    }
    if printed == 0 && !args.all {
        eprintln!(
            "no line about WasmPlugin {namespace}/{} (`wasm log {envoy_name}` or a fetch error for {url}) in the {PROXY_CONTAINER} logs of {} pod(s).",
            args.name,
            meshed.len()
        );
        eprintln!("{}", level_hint(&quiet));
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a module's lines usually do not show: sidecars log at warning, modules at info.
fn level_hint(quiet: &[String]) -> String {
    let mut hint = String::from(
        "hint: sidecars log at warning by default and modules usually log at info, so their `wasm log` lines only show when the wasm logger is at info or below: set the pod annotation sidecar.istio.io/componentLogLevel: \"wasm:info\" (then restart the pod), or run `istioctl proxy-config log <pod> --level wasm:info`.",
    );
    if quiet.is_empty() {
        hint.push_str(" The selected pods already log wasm at info: send traffic through them, or check `deployer status`.");
    } else {
        hint.push_str(&format!(
            " Pods without wasm at info: {}.",
            quiet.join(", ")
        ));
    }
    hint
}
