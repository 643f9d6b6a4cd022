//! `deployer logs NAME`: what the sidecars of the pods a WasmPlugin selects say about it,
//! streamed from every pod at once through the API server, each line prefixed by its pod. With
//! `-f` it also reads the pods the plugin selects that appear later, and stops reading deleted ones.
//! With several `--context`, every cluster is read at once and each line also names its context.
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deployer::cluster::{Cluster, ConnectOptions};
use deployer::mesh::plugin::Plugin;
use deployer::mesh::pods::{self, LogWindow};
use deployer::mesh::{PROXY_CONTAINER, PodView, follow, logline, select};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use super::args::PluginArgs;

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
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
    /// same name), in each cluster. With -f every pod is read at once, so it must be at least
    /// the pod count of each cluster.
    #[arg(long, value_name = "N", default_value_t = pods::MAX_LOG_REQUESTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_log_requests: u32,
}

const EXAMPLES: &str = "Examples:
  deployer logs context-logger -n demo
  deployer logs context-logger -n demo -f --since 5m
  deployer logs context-logger --all --tail 100 --context staging
  deployer logs context-logger -n demo -f --context eu-1 --context us-1   # every cluster

Each line starts with the pod it comes from: [pod/NAME/istio-proxy]. With several --context,
every cluster is read at once and each line names its context too:
[CONTEXT/pod/NAME/istio-proxy], as do the notes and warnings on stderr; --max-log-requests
applies to each cluster. Every cluster's plugin is found before any log is read: one that
cannot be found fails the command (exit 2) naming its context, before a line is printed.";

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
    let args = &args;
    let options = args.plugin.cluster.connect_options_all();
    let clusters = args.plugin.cluster.connect_all().await?;
    let several = clusters.len() > 1;
    // Every cluster's plugin and pods are found before any log is read, at once: a context
    // that cannot read the plugin fails the command before a line is printed.
    let sites = futures::future::try_join_all(clusters.into_iter().zip(options).map(
        |(cluster, connect)| async move {
            let context = several.then(|| cluster.context.clone());
            let found = Site::find(args, cluster, &connect, context.clone()).await;
            match context {
                Some(context) => found.with_context(|| format!("context {context}")),
                None => found,
            }
        },
    ))
    .await?;
    let window = LogWindow {
        follow: args.follow,
        // kubectl sends no window for --since=0.
        since_seconds: args.since.filter(|seconds| *seconds > 0),
        tail_lines: args.tail,
        ..LogWindow::default()
    };
    let (sender, mut receiver) = mpsc::channel(LINE_BUFFER);
    let mut reading: Vec<Reading> = sites
        .into_iter()
        .enumerate()
        .map(|(index, site)| Reading::start(site, index, args, &window, sender.clone()))
        .collect();
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + POLL, POLL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while reading.iter().any(|cluster| cluster.active(args.follow)) {
        tokio::select! {
            Some((index, message)) = receiver.recv() => {
                let Some(cluster) = reading.get_mut(index) else {
                    continue;
                };
                match message {
                    Message::Note(text) => {
                        let _ = out.flush();
                        eprintln!("{}", cluster.site.say(text));
                    }
                    Message::Line { pod, line } => {
                        // A closed pipe (`| head`) ends the command quietly. Flushed whenever
                        // no line is waiting, so `-f` shows each line as it comes.
                        if writeln!(out, "[{}pod/{pod}/{PROXY_CONTAINER}] {line}", cluster.site.label())
                            .and_then(|()| if receiver.is_empty() { out.flush() } else { Ok(()) })
                            .is_err()
                        {
                            return Ok(ExitCode::SUCCESS);
                        }
                        cluster.printed += 1;
                    }
                    Message::Ended { uid, pod, read_any, failure } => {
                        let warning = cluster.ended(&uid, &pod, read_any, failure);
                        let _ = out.flush();
                        if let Some(warning) = warning {
                            eprintln!("{}", cluster.site.say(warning));
                        }
                    }
                }
            },
            _ = poll.tick(), if args.follow => {
                // Each cluster still followed is listed, all at once.
                let listings = futures::future::join_all(reading.iter().map(|cluster| async {
                    if cluster.active(true) {
                        Some(pods::list_selected(&cluster.site.cluster, &cluster.site.plugin).await)
                    } else {
                        None
                    }
                }))
                .await;
                for (cluster, listing) in reading.iter_mut().zip(listings) {
                    if let Some(listing) = listing {
                        cluster.observe(listing, args);
                    }
                }
            }
        }
    }
    let _ = out.flush();
    let failures: Vec<String> = reading
        .iter()
        .filter_map(|cluster| cluster.failure(&args.plugin.name))
        .collect();
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    if !args.all {
        for cluster in reading.iter().filter(|cluster| cluster.printed == 0) {
            cluster.site.nothing_printed(&args.plugin.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One cluster's part of the command: its plugin and the pods it selects, found before any log
/// is read.
struct Site {
    cluster: Cluster,
    /// For the log streams (no read timeout with `-f`).
    logs_client: kube::Client,
    /// Set when several clusters are read: every line and note names it.
    context: Option<String>,
    namespace: String,
    plugin: Plugin,
    meshed: Vec<PodView>,
    outside: Vec<PodView>,
    /// Meshed pods whose sidecar does not log wasm at info.
    quiet: Vec<String>,
}

impl Site {
    /// Finds the plugin and the pods it selects, or says why there is nothing to read.
    async fn find(
        args: &Args,
        cluster: Cluster,
        connect: &ConnectOptions,
        context: Option<String>,
    ) -> anyhow::Result<Site> {
        let name = &args.plugin.name;
        let namespace = args.plugin.cluster.namespace_in(&cluster);
        let plugin =
            deployer::mesh::plugin::find(&cluster, args.plugin.kind, &namespace, name).await?;
        if !plugin.targets_workloads() {
            anyhow::bail!(
                "WasmPlugin {namespace}/{name} attaches through {}: read the logs of those gateways' pods (kubectl logs -l <gateway labels> | grep \"wasm log {}\")",
                select::describe_selector(&plugin),
                plugin.envoy_name()
            );
        }
        let all_pods = pods::list_pods(&cluster, &namespace).await?;
        let selection = select::select(&plugin, &all_pods);
        if selection.selected.is_empty() {
            anyhow::bail!(
                "no pod in namespace {namespace} matches WasmPlugin {name}'s selector {} ({} pod(s) there): nothing to read; `deployer status {name}` says more",
                select::describe_selector(&plugin),
                selection.not_selected,
            );
        }
        let (meshed, outside): (Vec<_>, Vec<_>) = selection
            .selected
            .into_iter()
            .partition(|pod| pod.has_proxy);
        for pod in &outside {
            eprintln!("{}", in_context(context.as_deref(), not_meshed(&pod.name)));
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
            eprintln!("{}", in_context(context.as_deref(), level_hint(&quiet)));
        }
        let cap = args.max_log_requests as usize;
        if args.follow && meshed.len() > cap {
            anyhow::bail!(
                "-f reads {} pods' logs at once, but --max-log-requests is {cap}: pass --max-log-requests {} (each stream is a connection: mind `ulimit -n`), or select fewer pods",
                meshed.len(),
                meshed.len()
            );
        }
        let logs_client = if args.follow {
            pods::streaming_client(connect).await?
        } else {
            cluster.client.clone()
        };
        Ok(Site {
            cluster,
            logs_client,
            context,
            namespace,
            plugin,
            meshed,
            outside,
            quiet,
        })
    }

    /// What goes in front of `pod/NAME/istio-proxy` in a line's prefix: `CONTEXT/` when
    /// several clusters are read.
    fn label(&self) -> String {
        self.context
            .as_ref()
            .map(|context| format!("{context}/"))
            .unwrap_or_default()
    }

    /// A note or warning for stderr, naming the context when several clusters are read.
    fn say(&self, text: impl std::fmt::Display) -> String {
        in_context(self.context.as_deref(), text)
    }

    /// Says what was looked for when no line was printed (without `--all`).
    fn nothing_printed(&self, name: &str) {
        let plugin = &self.plugin;
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
            "{}",
            self.say(format!(
                "no line about {} {}/{name} ({looked_for}) in the {PROXY_CONTAINER} logs of {} pod(s).",
                plugin.kind,
                self.namespace,
                self.meshed.len()
            ))
        );
        eprintln!("{}", self.say(level_hint(&self.quiet)));
    }
}

/// A cluster whose pods are being read.
struct Reading {
    site: Site,
    reader: Reader,
    tracker: follow::Tracker,
    /// The pods being read, by uid.
    readers: HashMap<String, AbortHandle>,
    /// What to read of a pod known when the command started.
    window: LogWindow,
    /// Whether the last listing of the pods (`-f`) failed: said once per outage.
    listing_failed: bool,
    printed: usize,
    read_pods: usize,
    /// Pods whose log could not be read (in full), with why.
    failed: BTreeMap<String, String>,
}

impl Reading {
    /// Starts reading every meshed pod the plugin selects; `index` tags the messages sent.
    fn start(
        site: Site,
        index: usize,
        args: &Args,
        window: &LogWindow,
        sender: mpsc::Sender<(usize, Message)>,
    ) -> Reading {
        let reader = Reader {
            client: site.logs_client.clone(),
            cluster: site.cluster.client.clone(),
            namespace: site.namespace.clone(),
            matcher: logline::Matcher::for_plugin(&site.plugin),
            all: args.all,
            follow: args.follow,
            requests: Arc::new(Semaphore::new(args.max_log_requests as usize)),
            index,
            sender,
        };
        let tracker = follow::Tracker::new(args.follow, &site.meshed, &site.outside);
        let readers = site
            .meshed
            .iter()
            .map(|pod| (pod.uid.clone(), reader.spawn(pod, window.clone())))
            .collect();
        Reading {
            read_pods: site.meshed.len(),
            site,
            reader,
            tracker,
            readers,
            window: window.clone(),
            listing_failed: false,
            printed: 0,
            failed: BTreeMap::new(),
        }
    }

    /// Whether anything is still read, or (`-f`) may be.
    fn active(&self, follow: bool) -> bool {
        self.tracker.reading() > 0 || (follow && !self.tracker.all_failed())
    }

    /// A pod's log stream ended: the warning to print, if any.
    fn ended(
        &mut self,
        uid: &str,
        pod: &str,
        read_any: bool,
        failure: Option<(Option<u16>, String)>,
    ) -> Option<String> {
        self.readers.remove(uid);
        let end = match &failure {
            None => follow::End::Closed,
            Some((status, _)) => follow::End::Failed { status: *status },
        };
        let outcome = self.tracker.ended(uid, read_any, end);
        let (_, error) = failure?;
        if !outcome.retry {
            self.failed.insert(pod.to_string(), error.clone());
        }
        if !outcome.report {
            return None;
        }
        // Errors from the API name the pod already.
        let mut warning = if error.contains(pod) {
            format!("warning: {error}")
        } else {
            format!("warning: pod {pod}: {error}")
        };
        if outcome.retry {
            warning.push_str(" (trying again while the pod exists)");
        }
        Some(warning)
    }

    /// `-f`: reads the pods the plugin selects now that are new, stops reading deleted ones.
    fn observe(&mut self, listing: Result<Vec<PodView>, deployer::mesh::Error>, args: &Args) {
        let selected = match listing {
            Ok(selected) => selected,
            // Said once per outage; the next listing may work.
            Err(err) => {
                if !self.listing_failed {
                    self.listing_failed = true;
                    eprintln!(
                        "{}",
                        self.site.say(format!(
                            "warning: cannot list the pods to follow new ones (trying again): {err}"
                        ))
                    );
                }
                return;
            }
        };
        self.listing_failed = false;
        let cap = args.max_log_requests as usize;
        for action in self.tracker.observe(&selected) {
            match action {
                follow::Action::Read { pod, from_start } => {
                    let window = if from_start {
                        eprintln!(
                            "{}",
                            self.site.say(format!("reading the new pod {}", pod.name))
                        );
                        if !args.all && !pod.logs_wasm_info() {
                            eprintln!(
                                "{}",
                                self.site.say(level_hint(std::slice::from_ref(&pod.name)))
                            );
                        }
                        LogWindow {
                            follow: true,
                            ..LogWindow::default()
                        }
                    } else {
                        self.window.clone()
                    };
                    self.read_pods += 1;
                    if self.readers.len() >= cap {
                        eprintln!(
                            "{}",
                            self.site.say(format!(
                                "warning: {} log streams are open (--max-log-requests {cap}): pod {} is read from its first line once one closes",
                                self.readers.len(),
                                pod.name
                            ))
                        );
                    }
                    self.readers
                        .insert(pod.uid.clone(), self.reader.spawn(&pod, window));
                }
                follow::Action::Stop { uid, name } => {
                    if let Some(task) = self.readers.remove(&uid) {
                        task.abort();
                    }
                    eprintln!(
                        "{}",
                        self.site
                            .say(format!("pod {name} is gone: no longer reading it"))
                    );
                }
                follow::Action::NotMeshed { name } => {
                    eprintln!("{}", self.site.say(not_meshed(&name)));
                }
            }
        }
    }

    /// The error to end with when some pod's log could not be read.
    fn failure(&self, name: &str) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let mut names: Vec<&str> = self
            .failed
            .keys()
            .map(String::as_str)
            .take(NAMED_FAILURES)
            .collect();
        let more = self.failed.len().saturating_sub(NAMED_FAILURES);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let which = if self.tracker.all_failed() {
            "any".to_string()
        } else {
            format!("{} of {}", self.failed.len(), self.read_pods)
        };
        let hint = if self
            .failed
            .values()
            .any(|error| error.contains(pods::TOO_MANY_OPEN_FILES))
        {
            format!(" ({})", pods::TOO_MANY_OPEN_FILES)
        } else {
            String::new()
        };
        names.dedup();
        Some(self.site.say(format!(
            "could not read the {PROXY_CONTAINER} log of {which} pod(s) WasmPlugin {}/{name} selects: {}{more}{hint} (see the warnings above)",
            self.site.namespace,
            names.join(", ")
        )))
    }
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
    /// Which cluster's pods, in the messages sent.
    index: usize,
    sender: mpsc::Sender<(usize, Message)>,
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
                        if self.send(message).await.is_err() {
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
        let _ = self.send(Message::Note(text)).await;
    }

    /// Fails when nobody prints any more.
    async fn send(&self, message: Message) -> Result<(), mpsc::error::SendError<(usize, Message)>> {
        self.sender.send((self.index, message)).await
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

/// `text`, after `context CONTEXT: ` when several clusters are read.
fn in_context(context: Option<&str>, text: impl std::fmt::Display) -> String {
    match context {
        Some(context) => format!("context {context}: {text}"),
        None => text.to_string(),
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
