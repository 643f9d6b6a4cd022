//! The sidecar stand-in: for one pod of a cluster without a container runtime (kwok's fake
//! pods), it does what istio-agent and Envoy do in the pod's `istio-proxy` container. It polls
//! the WasmPlugins that select the pod, fetches their modules by Istio's rules ([`agent`]),
//! runs a real Envoy with them named the way Istio names them ([`bootstrap`]) on a loopback
//! port, and writes the container log in Istio's format where kwok serves it ([`logfile`]).
//! It stands in for Istio on this machine only; a real mesh needs none of it.
pub mod agent;
pub mod bootstrap;
pub mod logfile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::signal::unix::{SignalKind, signal};

use super::{Error, Plugin, PodView, logline, select};
use crate::cluster::{Cluster, ConnectOptions};
use crate::local::{Event, Launch, Running, tools};
use bootstrap::Loaded;

/// How long Envoy gets to start with its modules.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long Envoy gets to drain on a reconfiguration or stop before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Options {
    pub connect: ConnectOptions,
    pub namespace: String,
    pub pod: String,
    /// This pod's working directory: the container log, modules, Envoy configs, `state.json`.
    pub dir: PathBuf,
    /// Listener port on 127.0.0.1 (0: pick a free one).
    pub port: u16,
    /// How often the pod and the WasmPlugins are re-read.
    pub poll: Duration,
    pub envoy: Option<PathBuf>,
    /// A CA to trust for loopback registries that speak TLS.
    pub ca_file: Option<PathBuf>,
}

/// What `state.json` says once Envoy is ready (tests and the demo read it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub namespace: String,
    pub pod: String,
    /// `http://127.0.0.1:PORT`: send requests here to reach the pod through its sidecar.
    pub url: String,
    pub port: u16,
    /// Envoy's admin (`POST /logging?wasm=info` changes levels like `istioctl proxy-config log`).
    pub admin: String,
    /// Bumped on every reconfiguration.
    pub generation: u64,
    /// Each selected plugin, in filter-chain order.
    pub plugins: Vec<PluginState>,
    pub log_file: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginState {
    /// Envoy's name for it: `<namespace>.<name>`.
    pub name: String,
    pub url: String,
    /// The WasmPlugin's resourceVersion this Envoy runs (waiters compare it with the cluster's).
    pub resource_version: String,
    /// `loaded`, or `fetch failed: <istio-agent's reason>`.
    pub status: String,
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn standin_error(options: &Options, message: String) -> Error {
    Error::StandIn {
        namespace: options.namespace.clone(),
        pod: options.pod.clone(),
        message,
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// The pod (None once deleted) and the plugins that select it, in Istio's order.
async fn desired(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
) -> Result<Option<(PodView, Vec<Plugin>)>, Error> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let Some(pod) = pods.get_opt(pod).await.map_err(|err| Error::StandIn {
        namespace: namespace.into(),
        pod: pod.into(),
        message: format!("cannot read the pod: {err}"),
    })?
    else {
        return Ok(None);
    };
    let view = PodView::from_pod(&pod);
    let mut plugins: Vec<Plugin> = cluster
        .list_plugins(Some(namespace))
        .await?
        .iter()
        .map(Plugin::from_object)
        .filter(|plugin| select::selects(plugin, &view.labels))
        .collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some((view, plugins)))
}

/// Runs until SIGTERM/SIGINT or the pod's deletion; Envoy never outlives it.
pub async fn run(options: Options) -> Result<(), Error> {
    std::fs::create_dir_all(&options.dir).map_err(io("cannot create", &options.dir))?;
    let dir = options
        .dir
        .canonicalize()
        .map_err(io("cannot resolve", &options.dir))?;
    let tools = tools::find(options.envoy.as_deref(), None)?;
    let cluster = Cluster::connect(&options.connect).await?;
    cluster.ensure_crd().await?;
    let Some((pod, _)) = desired(&cluster, &options.namespace, &options.pod).await? else {
        return Err(standin_error(
            &options,
            "no such pod: start the stand-in for a pod that exists (kubectl get pods)".into(),
        ));
    };
    if !pod.has_proxy {
        return Err(standin_error(
            &options,
            format!(
                "the pod has no {} container, so no sidecar to stand in for (inject one: label the namespace istio-injection=enabled and recreate the pod)",
                super::PROXY_CONTAINER
            ),
        ));
    }
    let port = match options.port {
        0 => free_port().map_err(io("cannot pick a port on", Path::new("127.0.0.1")))?,
        port => port,
    };
    crate::local::ensure_port_free(port)?;
    let mut log = logfile::LogFile::open(&dir.join("istio-proxy.log"))?;
    logfile::publish(
        &cluster.client,
        &options.namespace,
        &options.pod,
        log.path(),
    )
    .await?;
    // Read once, like the real sidecar: log levels come from the pod at start.
    let log_level = pod.log_level.clone().unwrap_or_else(|| "warning".into());
    let component_level = pod
        .component_log_level
        .clone()
        .unwrap_or_else(|| "misc:error".into());
    log.agent(
        "info",
        "standin",
        &format!(
            "sidecar stand-in (istio-agent + Envoy) for {}/{}: inbound 127.0.0.1:{port}, log level {log_level}, component levels {component_level}",
            options.namespace, options.pod
        ),
    );

    let mut sidecar = Sidecar {
        namespace: options.namespace.clone(),
        pod: options.pod.clone(),
        dir,
        envoy_binary: tools.envoy,
        port,
        log_level,
        component_level,
        log,
        envoy: None,
        generation: 0,
        client: cluster.client.clone(),
        ca_file: options.ca_file.clone(),
    };
    let mut terminate =
        signal(SignalKind::terminate()).map_err(io("cannot watch", Path::new("SIGTERM")))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(io("cannot watch", Path::new("SIGINT")))?;
    let mut ticker = tokio::time::interval(options.poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What the running Envoy was configured from (None: reconfigure at the next poll).
    let mut applied: Option<String> = None;
    let mut reported_poll_error = false;
    loop {
        tokio::select! {
            _ = terminate.recv() => {
                sidecar.log.agent("info", "standin", "received SIGTERM: stopping Envoy");
                break;
            }
            _ = interrupt.recv() => {
                sidecar.log.agent("info", "standin", "received SIGINT: stopping Envoy");
                break;
            }
            event = next_event(&mut sidecar.envoy) => {
                if sidecar.handle(event) {
                    // It crashed after being ready: start it again at the next poll.
                    applied = None;
                }
            }
            _ = ticker.tick() => {
                let plugins = match desired(&cluster, &sidecar.namespace, &sidecar.pod).await {
                    Ok(Some((_, plugins))) => plugins,
                    Ok(None) => {
                        sidecar.log.agent("info", "standin", "pod deleted: stopping");
                        break;
                    }
                    Err(err) => {
                        if !reported_poll_error {
                            eprintln!("warning: {err} (retrying)");
                            reported_poll_error = true;
                        }
                        continue;
                    }
                };
                reported_poll_error = false;
                let mut key = plugins
                    .iter()
                    .map(Plugin::fingerprint)
                    .collect::<Vec<_>>()
                    .join("\n");
                // A changed pull Secret is pulled with again, as when istiod pushes it.
                key.push('\n');
                key.push_str(&agent::pull_secret_versions(&cluster.client, &plugins).await);
                if applied.as_ref() != Some(&key) {
                    // A refused configuration is not retried until the plugins (or their
                    // pull Secrets) change.
                    applied = Some(key);
                    sidecar.reconfigure(plugins).await?;
                }
            }
        }
    }
    if let Some(running) = sidecar.envoy.take() {
        retire(running, &mut sidecar.log).await;
    }
    let _ = std::fs::remove_file(state_path(&sidecar.dir));
    Ok(())
}

/// One pod's sidecar: its Envoy, its log, and how Envoy is started.
struct Sidecar {
    namespace: String,
    pod: String,
    dir: PathBuf,
    envoy_binary: PathBuf,
    port: u16,
    log_level: String,
    component_level: String,
    log: logfile::LogFile,
    envoy: Option<Running>,
    generation: u64,
    /// Reads the plugins' imagePullSecrets.
    client: kube::Client,
    ca_file: Option<PathBuf>,
}

impl Sidecar {
    /// Writes what the running Envoy said; true when it exited.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Line(line) => self.log.write(&line.text),
            Event::Ready { .. } => {}
            Event::Failed(err) => {
                self.envoy = None;
                self.log.agent(
                    "error",
                    "envoy",
                    &format!("Envoy exited: {}", summary(&err)),
                );
                return true;
            }
        }
        false
    }

    /// Fetches the plugins' modules like istio-agent, then runs a new Envoy with them.
    async fn reconfigure(&mut self, plugins: Vec<Plugin>) -> Result<(), Error> {
        self.generation += 1;
        let mut loaded = Vec::new();
        for plugin in plugins {
            let module = match agent::pull_secret_credentials(&self.client, &plugin).await {
                Ok(credentials) => {
                    let pull = agent::Pull {
                        ca_file: self.ca_file.clone(),
                        credentials,
                    };
                    agent::fetch(&plugin, &self.dir.join("modules"), &pull).await
                }
                Err(reason) => Err(reason),
            };
            if let Err(reason) = &module {
                self.log.agent(
                    "error",
                    "wasm",
                    &logline::fetch_error(&plugin.fetch_url(), reason),
                );
            }
            loaded.push(Loaded { plugin, module });
        }
        let loaded = bootstrap::ordered(loaded);
        let config = self.dir.join(format!("envoy-{}.yaml", self.generation));
        let rendered =
            serde_yaml::to_string(&bootstrap::render(self.port, &loaded)).map_err(|err| {
                Error::StandIn {
                    namespace: self.namespace.clone(),
                    pod: self.pod.clone(),
                    message: format!("cannot render the Envoy config: {err}"),
                }
            })?;
        std::fs::write(&config, rendered).map_err(io("cannot write", &config))?;
        let admin_file = self.dir.join(format!("admin-address-{}", self.generation));
        let _ = std::fs::remove_file(&admin_file);
        let launch = self.launch(&config, &admin_file);
        let mut running = Running::start(&launch, admin_file, self.port, READY_TIMEOUT)?;
        // Make before break, like an xDS update: the new Envoy binds the same port
        // (SO_REUSEPORT) and takes over once ready; the old one keeps serving (and logging)
        // until then, and stays when the new configuration is refused.
        let admin = loop {
            tokio::select! {
                event = running.next() => match event {
                    Event::Line(line) => self.log.write(&line.text),
                    Event::Ready { admin } => break admin,
                    Event::Failed(err) => {
                        let kept = if self.envoy.is_some() { "keeping the previous one" } else { "no Envoy runs" };
                        let err = summary(&err);
                        self.log.agent(
                            "error",
                            "envoy",
                            &format!("Envoy refused the configuration of generation {} ({kept}): {err}", self.generation),
                        );
                        return Ok(());
                    }
                },
                event = next_event(&mut self.envoy) => {
                    self.handle(event);
                }
            }
        };
        if let Some(old) = self.envoy.replace(running) {
            retire(old, &mut self.log).await;
        }
        let state = State {
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
            url: format!("http://127.0.0.1:{}", self.port),
            port: self.port,
            admin: format!("http://{admin}"),
            generation: self.generation,
            plugins: loaded
                .iter()
                .map(|l| PluginState {
                    name: l.plugin.envoy_name(),
                    url: l.plugin.url.clone(),
                    resource_version: l.plugin.resource_version.clone(),
                    status: match &l.module {
                        Ok(_) => "loaded".to_string(),
                        Err(reason) => format!("fetch failed: {reason}"),
                    },
                })
                .collect(),
            log_file: self.log.path().to_path_buf(),
        };
        write_state(&self.dir, &state)?;
        let plugins: Vec<String> = state
            .plugins
            .iter()
            .map(|p| format!("{}: {}", p.name, p.status))
            .collect();
        println!(
            "ready {}/{} {} generation {} plugins [{}]",
            state.namespace,
            state.pod,
            state.url,
            state.generation,
            plugins.join(", ")
        );
        Ok(())
    }

    /// Envoy's command line as istio-agent builds it: Istio's log format, the pod's levels,
    /// one worker (a stand-in never needs more), no hot restart (several run at once).
    fn launch(&self, config: &Path, admin_file: &Path) -> Launch {
        let mut args = tools::envoy_args(config, admin_file);
        args.extend([
            "--log-format".into(),
            logline::ENVOY_LOG_FORMAT.into(),
            "--log-level".into(),
            self.log_level.clone().into(),
            "--component-log-level".into(),
            self.component_level.clone().into(),
        ]);
        Launch {
            program: self.envoy_binary.clone(),
            args,
            env: Vec::new(),
            via_func_e: false,
        }
    }
}

/// Stops an Envoy (SIGTERM, SIGKILL after the grace time) while still writing what it says,
/// so no line of the requests it served last is lost.
async fn retire(mut envoy: Running, log: &mut logfile::LogFile) {
    // SAFETY: plain syscall on the unreaped leader of the group we started.
    unsafe { libc::kill(envoy.pid(), libc::SIGTERM) };
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    loop {
        match tokio::time::timeout_at(deadline, envoy.next()).await {
            Ok(Event::Line(line)) => log.write(&line.text),
            Ok(Event::Ready { .. }) => {}
            // Gone: `next` reports the exit once its output is drained.
            Ok(Event::Failed(_)) => return,
            Err(_) => {
                let _ = envoy.stop(Duration::ZERO).await;
                return;
            }
        }
    }
}

/// The first line of an Envoy failure: the lines it quotes are in the log already.
fn summary(err: &crate::local::LocalError) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_end_matches(" What it said:").to_string()
}

/// The next event of a running Envoy; never resolves when there is none.
async fn next_event(envoy: &mut Option<Running>) -> Event {
    match envoy {
        Some(running) => running.next().await,
        None => std::future::pending().await,
    }
}

fn write_state(dir: &Path, state: &State) -> Result<(), Error> {
    let path = state_path(dir);
    let tmp = dir.join("state.json.tmp");
    let text = serde_json::to_string_pretty(state).unwrap_or_default();
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(io("cannot write", &path))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
