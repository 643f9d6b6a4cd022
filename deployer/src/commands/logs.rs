//! `deployer logs NAME`: what the sidecars of the pods a WasmPlugin selects say about it,
//! streamed from every pod at once through the API server, each line prefixed by its pod. With
//! `-f` it also reads the pods the plugin selects that appear later, and stops reading deleted ones.
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use deployer::cluster::{Cluster, ConnectOptions};
use deployer::mesh::pods::{self, LogWindow};
use deployer::mesh::{PROXY_CONTAINER, PodView, follow, logline, select};
use futures::{AsyncBufReadExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

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
    /// Only lines newer than this (kubectl's syntax: 30s, 5m, 1.5h, 500ms; 0 means all).
    #[arg(long, value_name = "DURATION", value_parser = pods::parse_duration)]
    pub since: Option<i64>,
    /// Only the last N lines of each pod's log (counted before filtering, like kubectl).
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
    /// Every line of the istio-proxy logs, not only those about this plugin.
    #[arg(long)]
    pub all: bool,
    /// wasmplugin (wp), trafficextension (te), or auto: the WasmPlugin of that name if there
    /// is one, else the TrafficExtension.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub kind: deployer::plugin::spec::KindChoice,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// How often `-f` lists the selected pods to read new ones and stop reading deleted ones. A
/// bounded poll rather than a watch: one list call (filtered by the selector) every two seconds
/// costs the API server little, needs no resourceVersion bookkeeping (expired watches,
/// reconnects, the kube runtime's watcher and its dependencies), and the delay loses no line
/// since a new pod is read from its first line.
const POLL: Duration = Duration::from_secs(2);

enum Message {
    Line {
        pod: String,
        line: String,
    },
    /// The pod's log stream ended; `failure`: the API server's HTTP status and the error.
    Ended {
        uid: String,
        pod: String,
        read_any: bool,
        failure: Option<(Option<u16>, String)>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let connect = ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let cluster = Cluster::connect(&connect).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let plugin = deployer::mesh::plugin::find(&cluster, args.kind, &namespace, &args.name).await?;
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
        eprintln!("{}", not_meshed(&pod.name));
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
        // kubectl sends no window for --since=0.
        since_seconds: args.since.filter(|seconds| *seconds > 0),
        tail_lines: args.tail,
    };
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let reader = Reader {
        client,
        namespace: namespace.clone(),
        matcher: logline::Matcher::for_plugin(&plugin),
        all: args.all,
        sender,
    };
    let mut tracker = follow::Tracker::new(args.follow, &meshed, &outside);
    let mut readers: HashMap<String, AbortHandle> = meshed
        .iter()
        .map(|pod| (pod.uid.clone(), reader.spawn(pod, window.clone())))
        .collect();
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + POLL, POLL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut listing_failed = false;
    let mut printed = 0usize;
    let stdout = std::io::stdout();
    while tracker.reading() > 0 || (args.follow && !tracker.all_failed()) {
        tokio::select! {
            Some(message) = receiver.recv() => match message {
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
                Message::Ended { uid, pod, read_any, failure } => {
                    readers.remove(&uid);
                    let end = match &failure {
                        None => follow::End::Closed,
                        Some((status, _)) => follow::End::Failed { status: *status },
                    };
                    let outcome = tracker.ended(&uid, read_any, end);
                    if let (true, Some((_, error))) = (outcome.report, &failure) {
                        // Errors from the API name the pod already.
                        let mut warning = if error.contains(&pod) {
                            format!("warning: {error}")
                        } else {
                            format!("warning: pod {pod}: {error}")
                        };
                        if outcome.retry {
                            warning.push_str(" (trying again while the pod exists)");
                        }
                        eprintln!("{warning}");
                    }
                }
            },
            _ = poll.tick(), if args.follow => {
                match pods::list_selected(&cluster, &plugin).await {
                    Ok(selected) => {
                        listing_failed = false;
                        for action in tracker.observe(&selected) {
                            match action {
                                follow::Action::Read { pod, from_start } => {
                                    let window = if from_start {
                                        eprintln!("reading the new pod {}", pod.name);
                                        if !args.all && !pod.logs_wasm_info() {
                                            eprintln!("{}", level_hint(std::slice::from_ref(&pod.name)));
                                        }
                                        LogWindow { follow: true, ..LogWindow::default() }
                                    } else {
                                        window.clone()
                                    };
                                    readers.insert(pod.uid.clone(), reader.spawn(&pod, window));
                                }
                                follow::Action::Stop { uid, name } => {
                                    if let Some(task) = readers.remove(&uid) {
                                        task.abort();
                                    }
                                    eprintln!("pod {name} is gone: no longer reading it");
                                }
                                follow::Action::NotMeshed { name } => eprintln!("{}", not_meshed(&name)),
                            }
                        }
                    }
                    // Said once per outage; the next listing may work.
                    Err(err) if !listing_failed => {
                        listing_failed = true;
                        eprintln!("warning: cannot list the pods to follow new ones (trying again): {err}");
                    }
                    Err(_) => {}
                }
            }
        }
    }
    if tracker.all_failed() {
        anyhow::bail!(
            "could not read the {PROXY_CONTAINER} log of any pod WasmPlugin {namespace}/{} selects (see the warnings above)",
            args.name
        );
    }
    if printed == 0 && !args.all {
        // A TrafficExtension has only its native name (Lua: Envoy's `script log:` lines).
        let looked_for = match plugin.kind {
            deployer::plugin::spec::Kind::TrafficExtension if plugin.is_lua() => {
                "`envoy lua ... script log:` lines, which need lua:info".to_string()
            }
            deployer::plugin::spec::Kind::TrafficExtension => format!(
                "`wasm log {}`, or a fetch error for {}",
                plugin.envoy_name(),
                plugin.fetch_url()
            ),
            deployer::plugin::spec::Kind::WasmPlugin => format!(
                "`wasm log {}` or `wasm log {}{}`, or a fetch error for {}",
                plugin.envoy_name(),
                plugin.envoy_name(),
                logline::TRANSLATED_SUFFIX,
                plugin.fetch_url()
            ),
        };
        eprintln!(
            "no line about {} {namespace}/{} ({looked_for}) in the {PROXY_CONTAINER} logs of {} pod(s).",
            plugin.kind,
            args.name,
            meshed.len()
        );
        eprintln!("{}", level_hint(&quiet));
    }
    Ok(ExitCode::SUCCESS)
}

/// What every pod's log reader shares.
struct Reader {
    client: kube::Client,
    namespace: String,
    matcher: logline::Matcher,
    all: bool,
    sender: mpsc::UnboundedSender<Message>,
}

impl Reader {
    /// Reads the pod's `istio-proxy` log until it ends, sending the lines to print, then how
    /// it ended.
    fn spawn(&self, pod: &PodView, window: LogWindow) -> AbortHandle {
        let (client, namespace, sender) = (
            self.client.clone(),
            self.namespace.clone(),
            self.sender.clone(),
        );
        let (matcher, all) = (self.matcher.clone(), self.all);
        let (uid, pod) = (pod.uid.clone(), pod.name.clone());
        let task = tokio::spawn(async move {
            let mut read_any = false;
            let failure = match pods::proxy_log(&client, &namespace, &pod, &window).await {
                Err(err) => {
                    let status = match &err {
                        deployer::mesh::Error::PodLogs { status, .. } => *status,
                        _ => None,
                    };
                    Some((status, err.to_string()))
                }
                Ok(stream) => {
                    let mut lines = std::pin::pin!(stream.lines());
                    // A kept entry's continuation lines (a message with newlines) are kept too.
                    let mut kept_last = false;
                    loop {
                        match lines.next().await {
                            None => break None,
                            Some(Ok(line)) => {
                                read_any = true;
                                kept_last = all
                                    || matcher.classify(&line).is_some()
                                    || (kept_last && logline::is_continuation(&line));
                                if kept_last {
                                    let message = Message::Line {
                                        pod: pod.clone(),
                                        line,
                                    };
                                    if sender.send(message).is_err() {
                                        return;
                                    }
                                }
                            }
                            Some(Err(err)) => {
                                break Some((
                                    None,
                                    format!("reading the {PROXY_CONTAINER} log: {err}"),
                                ));
                            }
                        }
                    }
                }
            };
            let _ = sender.send(Message::Ended {
                uid,
                pod,
                read_any,
                failure,
            });
        });
        task.abort_handle()
    }
}

fn not_meshed(pod: &str) -> String {
    format!(
        "warning: pod {pod} has no {PROXY_CONTAINER} container: it is not in the mesh, so the plugin does not run there"
    )
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
