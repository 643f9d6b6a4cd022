//! `deployer logs NAME`: what the sidecars of the pods a WasmPlugin selects say about it,
//! streamed from every pod at once through the API server, each line prefixed by its pod. With
//! `-f` it also reads the pods the plugin selects that appear later, and stops reading deleted ones.
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use deployer::cluster::Cluster;
use deployer::mesh::pods::{self, LogWindow};
use deployer::mesh::{PROXY_CONTAINER, PodView, follow, logline, select};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use super::args::{PluginArgs, one_context};

#[derive(Debug, clap::Args)]
#[command(mut_arg("contexts", one_context), after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Keep streaming new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines newer than this (e.g. 30s, 5m, 1.5h, 2h45m, 500ms; 0 means all).
    #[arg(long, value_name = "DURATION", value_parser = deployer::duration::since_seconds)]
    pub since: Option<i64>,
    /// Only the last N lines of each pod's log (counted before filtering, like kubectl).
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
    /// Every line of the istio-proxy logs, not only those about this plugin.
    #[arg(long)]
    pub all: bool,
    /// At most this many log requests at once, one per pod being read (kubectl's flag of the
    /// same name). With -f every pod is read at once, so it must be at least the pod count.
    #[arg(long, value_name = "N", default_value_t = pods::MAX_LOG_REQUESTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_log_requests: u32,
}

const EXAMPLES: &str = "Examples:
  deployer logs context-logger -n demo
  deployer logs context-logger -n demo -f --since 5m
  deployer logs context-logger --all --tail 100 --context staging";

/// How often `-f` lists the selected pods to read new ones and stop reading deleted ones. A
/// bounded poll rather than a watch: one list call (filtered by the selector) every two seconds
/// costs the API server little, needs no resourceVersion bookkeeping (expired watches,
/// reconnects, the kube runtime's watcher and its dependencies), and the delay loses no line
/// since a new pod is read from its first line.
const POLL: Duration = Duration::from_secs(2);

/// Lines waiting to be printed, at most: with a bounded number of streams this keeps memory
/// flat in the number of pods (a slow terminal slows the readers down instead).
const LINE_BUFFER: usize = 4096;

/// Failed pods named in the final error; the warnings above name every one.
const NAMED_FAILURES: usize = 10;

enum Message {
    /// Something to say on stderr.
    Note(String),
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
    let connect = args.plugin.cluster.connect_options_one();
    let cluster = Cluster::connect(&connect).await?;
    let namespace = args.plugin.cluster.namespace_in(&cluster);
    let plugin =
        deployer::mesh::plugin::find(&cluster, args.plugin.kind, &namespace, &args.plugin.name)
            .await?;
    if !plugin.targets_workloads() {
        anyhow::bail!(
            "WasmPlugin {namespace}/{} attaches through {}: read the logs of those gateways' pods (kubectl logs -l <gateway labels> | grep \"wasm log {}\")",
            args.plugin.name,
            select::describe_selector(&plugin),
            plugin.envoy_name()
        );
    }
    let all_pods = pods::list_pods(&cluster, &namespace).await?;
    let selection = select::select(&plugin, &all_pods);
    if selection.selected.is_empty() {
        anyhow::bail!(
            "no pod in namespace {namespace} matches WasmPlugin {}'s selector {} ({} pod(s) there): nothing to read; `deployer status {}` says more",
            args.plugin.name,
            select::describe_selector(&plugin),
            selection.not_selected,
            args.plugin.name
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
    let cap = args.max_log_requests as usize;
    if args.follow && meshed.len() > cap {
        anyhow::bail!(
            "-f reads {} pods' logs at once, but --max-log-requests is {cap}: pass --max-log-requests {} (each stream is a connection: mind `ulimit -n`), or select fewer pods",
            meshed.len(),
            meshed.len()
        );
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
        ..LogWindow::default()
    };
    let (sender, mut receiver) = mpsc::channel(LINE_BUFFER);
    let reader = Reader {
        client,
        cluster: cluster.client.clone(),
        namespace: namespace.clone(),
        matcher: logline::Matcher::for_plugin(&plugin),
        all: args.all,
        follow: args.follow,
        requests: Arc::new(Semaphore::new(cap)),
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
    let mut read_pods = meshed.len();
    // Pods whose log could not be read (in full), with why.
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while tracker.reading() > 0 || (args.follow && !tracker.all_failed()) {
        tokio::select! {
            Some(message) = receiver.recv() => match message {
                Message::Note(text) => {
                    let _ = out.flush();
                    eprintln!("{text}");
                }
                Message::Line { pod, line } => {
                    // A closed pipe (`| head`) ends the command quietly. Flushed whenever no
                    // line is waiting, so `-f` shows each line as it comes.
                    if writeln!(out, "[pod/{pod}/{PROXY_CONTAINER}] {line}")
                        .and_then(|()| if receiver.is_empty() { out.flush() } else { Ok(()) })
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
                    if let (false, Some((_, error))) = (outcome.retry, &failure) {
                        failed.insert(pod.clone(), error.clone());
                    }
                    let _ = out.flush();
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
                                    read_pods += 1;
                                    if readers.len() >= cap {
                                        eprintln!("warning: {} log streams are open (--max-log-requests {cap}): pod {} is read from its first line once one closes", readers.len(), pod.name);
                                    }
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
    let _ = out.flush();
    if !failed.is_empty() {
        let mut names: Vec<&str> = failed
            .keys()
            .map(String::as_str)
            .take(NAMED_FAILURES)
            .collect();
        let more = failed.len().saturating_sub(NAMED_FAILURES);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let which = if tracker.all_failed() {
            "any".to_string()
        } else {
            format!("{} of {read_pods}", failed.len())
        };
        let hint = if failed
            .values()
            .any(|error| error.contains(pods::TOO_MANY_OPEN_FILES))
        {
            format!(" ({})", pods::TOO_MANY_OPEN_FILES)
        } else {
            String::new()
        };
        names.dedup();
        anyhow::bail!(
            "could not read the {PROXY_CONTAINER} log of {which} pod(s) WasmPlugin {namespace}/{} selects: {}{more}{hint} (see the warnings above)",
            args.plugin.name,
            names.join(", ")
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
            args.plugin.name,
            meshed.len()
        );
        eprintln!("{}", level_hint(&quiet));
    }
    Ok(ExitCode::SUCCESS)
}

/// What every pod's log reader shares.
struct Reader {
    /// For the log streams (no read timeout with `-f`).
    client: kube::Client,
    /// For short requests: does the pod still exist?
    cluster: kube::Client,
    namespace: String,
    matcher: logline::Matcher,
    all: bool,
    follow: bool,
    /// One permit per open log request: `--max-log-requests`.
    requests: Arc<Semaphore>,
    sender: mpsc::Sender<Message>,
}

/// How one log request ended.
enum StreamEnd {
    /// The server ended the stream.
    Closed { lines: usize },
    Failed {
        opened: bool,
        status: Option<u16>,
        error: String,
    },
    /// Nobody prints any more (stdout closed).
    Stopped,
}

/// A pod's state as far as reading its log again is concerned.
enum PodNow {
    Here,
    /// Deleted, replaced (another uid) or finished: nothing more will be written.
    Gone,
    /// The API server did not say (restarting, unreachable).
    Unknown,
}

impl Reader {
    /// Reads the pod's `istio-proxy` log until it ends, sending the lines to print, then how
    /// it ended. With `-f` a stream the server closes (or breaks) while the pod exists is read
    /// again from the last line seen; without it, a failed request is tried again twice.
    fn spawn(&self, pod: &PodView, window: LogWindow) -> AbortHandle {
        let reader = Reader {
            client: self.client.clone(),
            cluster: self.cluster.clone(),
            namespace: self.namespace.clone(),
            matcher: self.matcher.clone(),
            requests: self.requests.clone(),
            sender: self.sender.clone(),
            ..*self
        };
        let (uid, pod) = (pod.uid.clone(), pod.name.clone());
        let task = tokio::spawn(async move {
            // Held while the pod's log is read, including the pauses between attempts, so a
            // pod being retried never lets more requests than the cap run.
            let Ok(_permit) = reader.requests.clone().acquire_owned().await else {
                return;
            };
            let mut resume = follow::Resume::default();
            let mut kept_last = false;
            let mut failures = 0u32;
            let mut reported = false;
            let failure = loop {
                let mut this = if resume.started() {
                    LogWindow {
                        follow: window.follow,
                        since_time: resume.reconnect(),
                        ..LogWindow::default()
                    }
                } else {
                    window.clone()
                };
                this.timestamps = true;
                let end = reader.read(&pod, &this, &mut resume, &mut kept_last).await;
                let (opened, lines) = match &end {
                    StreamEnd::Stopped => return,
                    StreamEnd::Closed { lines } => (true, *lines),
                    StreamEnd::Failed { opened, .. } => (*opened, 0),
                };
                if opened && reported {
                    reported = false;
                    reader
                        .note(format!(
                            "pod {pod}: reading its {PROXY_CONTAINER} log again"
                        ))
                        .await;
                }
                match end {
                    StreamEnd::Stopped => return,
                    StreamEnd::Closed { .. } if !reader.follow => break None,
                    StreamEnd::Failed { status, error, .. } if !reader.follow => {
                        failures += 1;
                        // A 4xx is an answer (no such container, forbidden): asking again
                        // would get the same one.
                        if failures > RETRIES || matches!(status, Some(400..=499)) {
                            break Some((status, error));
                        }
                    }
                    StreamEnd::Closed { .. } => {
                        failures = if lines > 0 { 0 } else { failures + 1 };
                        if let PodNow::Gone = reader.pod_now(&pod, &uid).await {
                            break None;
                        }
                    }
                    StreamEnd::Failed { status, error, .. } => {
                        if matches!(status, Some(401 | 403)) {
                            break Some((status, error));
                        }
                        failures += 1;
                        match reader.pod_now(&pod, &uid).await {
                            PodNow::Gone => break None,
                            PodNow::Here | PodNow::Unknown if !reported => {
                                reported = true;
                                let error = if error.contains(&pod) {
                                    error
                                } else {
                                    format!("pod {pod}: {error}")
                                };
                                reader
                                    .note(format!(
                                        "warning: {error} (trying again while the pod exists)"
                                    ))
                                    .await;
                            }
                            _ => {}
                        }
                    }
                }
                tokio::time::sleep(backoff(failures)).await;
            };
            let _ = reader
                .sender
                .send(Message::Ended {
                    uid,
                    pod,
                    read_any: resume.started(),
                    failure,
                })
                .await;
        });
        task.abort_handle()
    }

    /// One log request: sends the new lines about the plugin (or all with `--all`).
    async fn read(
        &self,
        pod: &str,
        window: &LogWindow,
        resume: &mut follow::Resume,
        kept_last: &mut bool,
    ) -> StreamEnd {
        let stream = match pods::proxy_log(&self.client, &self.namespace, pod, window).await {
            Ok(stream) => stream,
            Err(err) => {
                let status = match &err {
                    deployer::mesh::Error::PodLogs { status, .. } => *status,
                    _ => None,
                };
                return StreamEnd::Failed {
                    opened: false,
                    status,
                    error: err.to_string(),
                };
            }
        };
        let mut lines = std::pin::pin!(stream.lines());
        let mut count = 0;
        loop {
            match lines.next().await {
                None => return StreamEnd::Closed { lines: count },
                Some(Ok(line)) => {
                    let (at, text) = follow::Resume::split(&line);
                    if !resume.accept(at) {
                        continue;
                    }
                    count += 1;
                    // A kept entry's continuation lines (a message with newlines) are kept too.
                    *kept_last = self.all
                        || self.matcher.classify(text).is_some()
                        || (*kept_last && logline::is_continuation(text));
                    if *kept_last {
                        let message = Message::Line {
                            pod: pod.to_string(),
                            line: text.to_string(),
                        };
                        if self.sender.send(message).await.is_err() {
                            return StreamEnd::Stopped;
                        }
                    }
                }
                Some(Err(err)) => {
                    return StreamEnd::Failed {
                        opened: true,
                        status: None,
                        error: format!(
                            "reading the {PROXY_CONTAINER} log: {}",
                            pods::describe_failure(&err)
                        ),
                    };
                }
            }
        }
    }

    async fn pod_now(&self, name: &str, uid: &str) -> PodNow {
        let api: Api<Pod> = Api::namespaced(self.cluster.clone(), &self.namespace);
        match api.get_opt(name).await {
            Ok(None) => PodNow::Gone,
            Ok(Some(pod)) => {
                let finished = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
                if finished || pod.metadata.uid.as_deref() != Some(uid) {
                    PodNow::Gone
                } else {
                    PodNow::Here
                }
            }
            Err(_) => PodNow::Unknown,
        }
    }

    async fn note(&self, text: String) {
        let _ = self.sender.send(Message::Note(text)).await;
    }
}

/// Attempts after a failed log request without `-f`.
const RETRIES: u32 = 2;

/// The pause before reading a pod's log again: at once after a stream that delivered lines,
/// then doubling to at most 10 s while requests fail or streams close empty (an API server
/// restarting, a container that exited).
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::from_millis(50);
    }
    Duration::from_millis(250u64.saturating_mul(1 << failures.min(6))).min(Duration::from_secs(10))
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
