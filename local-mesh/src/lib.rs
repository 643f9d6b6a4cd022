//! The local stack's mesh: a real Istio sidecar for every kwok pod with an `istio-proxy`
//! container. kwok only pretends pods run, so nothing would start the `istio-proxy` container;
//! this does what the kubelet and Istio's injector would: for each such pod it writes what the
//! container would have mounted, runs `pilot-agent proxy sidecar` (which runs Envoy and talks to
//! istiod) in the pod's own directory, serves its output as the container log through kwok, and
//! stops it when the pod goes away. Test and demo infrastructure: a real mesh needs none of it.
pub mod app;
pub mod logfile;
pub mod loopback;
pub mod objects;
pub mod pod;
pub mod sidecar;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use deployer::cluster::{Cluster, ConnectOptions};
use deployer::process::{Pid, Signal};

pub use loopback::Cidr;

/// Under the `--dir`: PEM CAs every agent started afterwards trusts for registries.
pub const TRUSTED_CA_DIR: &str = "trusted-ca";
use pod::MeshPod;

#[derive(Debug, Clone)]
pub struct Options {
    pub connect: ConnectOptions,
    /// Each pod's working directory is `<dir>/<namespace>/<pod>`; `<dir>/ready` exists while
    /// local-mesh runs.
    pub dir: PathBuf,
    pub pilot_agent: PathBuf,
    pub envoy: PathBuf,
    pub bootstrap_template: PathBuf,
    pub discovery_address: String,
    pub pod_cidr: Cidr,
    pub app_port: u16,
    pub insecure_registries: String,
    pub poll: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cluster(Box<deployer::cluster::Error>),
    #[error("{what} (namespace {namespace}): {message}")]
    Kube {
        what: String,
        namespace: String,
        message: String,
    },
    #[error("pod IP {ip}/32 on lo: {message}")]
    Loopback {
        ip: std::net::Ipv4Addr,
        message: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What every pod's sidecar task shares.
pub struct Shared {
    pub client: kube::Client,
    pub options: Options,
    pub ips: loopback::Leases,
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The address its Envoy listens on (the pod's IP, unless another pod had it).
    ip: std::net::Ipv4Addr,
}

/// Runs until SIGTERM/SIGINT, then stops every sidecar it started.
pub async fn run(options: Options) -> Result<(), Error> {
    let cluster = Cluster::connect(&options.connect)
        .await
        .map_err(|err| Error::Cluster(Box::new(err)))?;
    std::fs::create_dir_all(&options.dir).map_err(|source| Error::Io {
        what: "cannot create",
        path: options.dir.clone(),
        source,
    })?;
    let trusted = options.dir.join(TRUSTED_CA_DIR);
    std::fs::create_dir_all(&trusted).map_err(|source| Error::Io {
        what: "cannot create",
        path: trusted,
        source,
    })?;
    kill_strays(&options.dir);
    // What an earlier run's sidecars left (their processes are gone now): a pod that still
    // exists gets a fresh directory, as a restarted kubelet would start its containers again.
    for entry in std::fs::read_dir(&options.dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.path().is_dir() && entry.file_name() != TRUSTED_CA_DIR {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    loopback::release_stale(&options.pod_cidr)?;
    app::serve(options.app_port).await?;
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let ready_file = options.dir.join("ready");
    std::fs::write(&ready_file, std::process::id().to_string()).map_err(|source| Error::Io {
        what: "cannot write",
        path: ready_file.clone(),
        source,
    })?;
    let shared = Arc::new(Shared {
        client: cluster.client.clone(),
        options,
        ips: loopback::Leases::default(),
    });
    let pods: Api<Pod> = Api::all(shared.client.clone());
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut stopping: Vec<JoinHandle<()>> = Vec::new();
    let mut inbound: HashMap<String, BTreeSet<u16>> = HashMap::new();
    loop {
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                let meshed: Vec<MeshPod> = list
                    .items
                    .iter()
                    .filter_map(MeshPod::from_pod)
                    .filter(|pod| shared.options.pod_cidr.contains(pod.ip))
                    .collect();
                sync_inbound(&shared, &meshed, &mut inbound).await;
                let live: BTreeSet<&str> = meshed.iter().map(|p| p.uid.as_str()).collect();
                for pod in &meshed {
                    if running.contains_key(&pod.uid) {
                        continue;
                    }
                    let mut pod = pod.clone();
                    let shared_ip = running
                        .iter()
                        .any(|(uid, other)| other.ip == pod.ip && live.contains(uid.as_str()));
                    if shared_ip {
                        // kwok, restarted, can hand out an IP a live pod still has (it learns
                        // the old pods' IPs in a race with new pods): this sidecar gets an
                        // address of its own, which state.json reports.
                        let used: std::collections::HashSet<_> = meshed
                            .iter()
                            .map(|p| p.ip)
                            .chain(running.values().map(|r| r.ip))
                            .collect();
                        if let Some(spare) = shared
                            .options
                            .pod_cidr
                            .spare(|ip| !used.contains(&ip) && !shared.ips.held(ip))
                        {
                            eprintln!(
                                "local-mesh: {}/{} has pod IP {}, which another running pod has too; its sidecar listens on {spare}",
                                pod.namespace, pod.name, pod.ip
                            );
                            pod.ip = spare;
                        }
                    }
                    eprintln!(
                        "local-mesh: starting the sidecar of {}/{} ({})",
                        pod.namespace, pod.name, pod.ip
                    );
                    let (stop, stopped) = watch::channel(false);
                    let ip = pod.ip;
                    let uid = pod.uid.clone();
                    let task = tokio::spawn(sidecar::run(shared.clone(), pod, stopped));
                    running.insert(uid, Running { stop, task, ip });
                }
                let gone: Vec<String> = running
                    .keys()
                    .filter(|uid| !live.contains(uid.as_str()))
                    .cloned()
                    .collect();
                stopping.retain(|task| !task.is_finished());
                for uid in gone {
                    if let Some(sidecar) = running.remove(&uid) {
                        let _ = sidecar.stop.send(true);
                        stopping.push(sidecar.task);
                    }
                }
            }
            Err(err) => eprintln!("local-mesh: cannot list pods: {err}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.options.poll) => {}
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    eprintln!("local-mesh: stopping {} sidecar(s)", running.len());
    for sidecar in running.values() {
        let _ = sidecar.stop.send(true);
    }
    for task in running.into_values().map(|r| r.task).chain(stopping) {
        let _ = task.await;
    }
    let _ = std::fs::remove_file(&ready_file);
    Ok(())
}

fn signal_error(source: std::io::Error) -> Error {
    Error::Io {
        what: "cannot install a signal handler for",
        path: "SIGTERM/SIGINT".into(),
        source,
    }
}

/// Keeps one `Sidecar` per namespace with meshed pods, listing every app port there.
async fn sync_inbound(
    shared: &Shared,
    meshed: &[MeshPod],
    applied: &mut HashMap<String, BTreeSet<u16>>,
) {
    let mut wanted: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
    for pod in meshed {
        wanted
            .entry(&pod.namespace)
            .or_default()
            .extend(pod.ports.iter().copied());
    }
    for (namespace, ports) in wanted {
        // Ports are only added: a port that a pod stopped declaring is harmless to keep.
        let known = applied.get(namespace);
        if known.is_some_and(|known| ports.is_subset(known)) {
            continue;
        }
        let mut all = known.cloned().unwrap_or_default();
        all.extend(ports);
        match objects::apply_inbound_sidecar(
            &shared.client,
            namespace,
            &all,
            shared.options.app_port,
        )
        .await
        {
            Ok(()) => {
                applied.insert(namespace.to_string(), all);
            }
            Err(err) => eprintln!("local-mesh: {err}"),
        }
    }
}

/// Kills processes left running under `dir` by an earlier local-mesh that was killed (an
/// Envoy outlives its agent: it has no parent-death signal of its own).
fn kill_strays(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(Pid::new)
        else {
            continue;
        };
        if u32::try_from(pid.raw()) == Ok(own) {
            continue;
        }
        let in_dir =
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
        if in_dir {
            eprintln!(
                "local-mesh: killing stray process {pid} left in {}",
                dir.display()
            );
            // A pid whose working directory is ours; gone already is fine.
            let _ = pid.signal(Signal::KILL);
        }
    }
}
