//! One pod's sidecar: the files the kubelet would mount into `istio-proxy`, then `pilot-agent
//! proxy sidecar` (which starts Envoy) in the pod's working directory, its output as the pod's
//! container log, restarted if it exits, stopped (SIGTERM, then SIGKILL of its process group)
//! when the pod goes away.
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use deployer::process::{self, Pid, Signal};

use crate::logfile::LogFile;
use crate::pod::{MeshPod, downward_api_file};
use crate::{Error, Shared, objects};

/// How long the agent gets to drain Envoy and exit after SIGTERM before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(6);
/// Pause before an agent that exited is started again (a kubelet's first back-off).
const RESTART_DELAY: Duration = Duration::from_secs(2);
const ROOT_CERT_TIMEOUT: Duration = Duration::from_secs(30);

/// The agent runs in a private mount namespace whose /var/lib is an overlay with its writes in
/// the pod's directory: its wasm module cache is the hard-coded /var/lib/istio/data
/// (constants.IstioDataDir, no flag or env), which this gives each pod without touching the host.
const MOUNT_SCRIPT: &str = r#"set -e
mkdir -p var/lib-overlay/upper var/lib-overlay/work
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$PWD/var/lib-overlay/upper,workdir=$PWD/var/lib-overlay/work" /var/lib
mkdir -p /var/lib/istio/data
exec "$@""#;

/// What `state.json` in the pod's directory says (tests and the demo read it).
#[derive(Debug, Clone, serde::Serialize)]
struct State<'a> {
    namespace: &'a str,
    pod: &'a str,
    uid: &'a str,
    ip: Ipv4Addr,
    /// `http://<pod IP>:<port>` for each inbound port: requests there go through the sidecar.
    urls: Vec<String>,
    /// Envoy's admin, as `istioctl proxy-config` would reach it.
    admin: String,
    /// The agent's status port (`/healthz/ready`).
    status: String,
    agent_pid: Option<u32>,
    /// Envoy is ready (listeners and clusters from istiod).
    ready: bool,
    restarts: u32,
}

struct Ports {
    admin: u16,
    status: u16,
    envoy_status: u16,
    envoy_prometheus: u16,
}

/// Free loopback ports, all held at once so they differ from each other.
fn free_ports() -> Result<Ports, Error> {
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<_, _>>()
        .map_err(|source| Error::Io {
            what: "cannot find a free port on",
            path: "127.0.0.1".into(),
            source,
        })?;
    let port = |i: usize| listeners[i].local_addr().map(|a| a.port()).unwrap_or(0);
    Ok(Ports {
        admin: port(0),
        status: port(1),
        envoy_status: port(2),
        envoy_prometheus: port(3),
    })
}

fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            what: "cannot create",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, contents).map_err(|source| Error::Io {
        what: "cannot write",
        path: path.to_path_buf(),
        source,
    })
}

/// The files of the `istio-proxy` container, relative to its working directory as the agent
/// resolves them: downward-API labels/annotations, the istio-ca token, the root certificate,
/// and the bootstrap template of the proxy image.
async fn prepare(shared: &Shared, pod: &MeshPod, dir: &Path) -> Result<(), Error> {
    let client = &shared.client;
    write(
        &dir.join("etc/istio/pod/labels"),
        downward_api_file(&pod.labels),
    )?;
    write(
        &dir.join("etc/istio/pod/annotations"),
        downward_api_file(&pod.annotations),
    )?;
    std::fs::create_dir_all(dir.join("etc/istio/proxy")).map_err(|source| Error::Io {
        what: "cannot create",
        path: dir.join("etc/istio/proxy"),
        source,
    })?;
    let token = objects::istio_token(client, &pod.namespace, &pod.service_account).await?;
    write(&dir.join("var/run/secrets/tokens/istio-token"), token)?;
    let root = objects::root_cert(client, &pod.namespace, ROOT_CERT_TIMEOUT).await?;
    write(&dir.join("var/run/secrets/istio/root-cert.pem"), root)?;
    let template =
        std::fs::read(&shared.options.bootstrap_template).map_err(|source| Error::Io {
            what: "cannot read the Envoy bootstrap template",
            path: shared.options.bootstrap_template.clone(),
            source,
        })?;
    write(
        &dir.join("var/lib/istio/envoy/envoy_bootstrap_tmpl.json"),
        template,
    )?;
    Ok(())
}

/// The environment Istio's injection template gives the `istio-proxy` container, for
/// interception mode NONE.
fn agent_env(shared: &Shared, pod: &MeshPod, ports: &Ports) -> Vec<(&'static str, String)> {
    let options = &shared.options;
    let proxy_config = serde_json::json!({
        "discoveryAddress": options.discovery_address,
        "binaryPath": options.envoy,
        "proxyAdminPort": ports.admin,
        "statusPort": ports.status,
        "concurrency": 1,
        "drainDuration": "2s",
        "terminationDrainDuration": "1s",
    });
    vec![
        ("POD_NAME", pod.name.clone()),
        ("POD_NAMESPACE", pod.namespace.clone()),
        ("SERVICE_ACCOUNT", pod.service_account.clone()),
        ("INSTANCE_IP", pod.ip.to_string()),
        ("HOST_IP", "127.0.0.1".into()),
        ("ISTIO_META_CLUSTER_ID", "Kubernetes".into()),
        ("ISTIO_META_MESH_ID", "cluster.local".into()),
        ("TRUST_DOMAIN", "cluster.local".into()),
        ("ISTIO_META_INTERCEPTION_MODE", "NONE".into()),
        ("ISTIO_META_WORKLOAD_NAME", pod.workload.clone()),
        ("ISTIO_META_APP_CONTAINERS", pod.app_containers.join(",")),
        ("ISTIO_META_POD_PORTS", pod.pod_ports_json()),
        ("JWT_POLICY", "third-party-jwt".into()),
        ("PILOT_CERT_PROVIDER", "istiod".into()),
        (
            "WASM_INSECURE_REGISTRIES",
            options.insecure_registries.clone(),
        ),
        ("ENVOY_STATUS_PORT", ports.envoy_status.to_string()),
        ("ENVOY_PROMETHEUS_PORT", ports.envoy_prometheus.to_string()),
        ("PROXY_CONFIG", proxy_config.to_string()),
        // Two cores shared by every sidecar: one Go thread each is plenty.
        ("GOMAXPROCS", "1".into()),
        // The image's trust store plus the CAs tests drop in `<dir>/trusted-ca` (their TLS
        // registries): the agent verifies registries like a real one, with no blanket insecure.
        (
            "SSL_CERT_DIR",
            format!(
                "/etc/ssl/certs:{}",
                options.dir.join(crate::TRUSTED_CA_DIR).display()
            ),
        ),
    ]
}

fn spawn_agent(shared: &Shared, pod: &MeshPod, dir: &Path, ports: &Ports) -> Result<Child, Error> {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(MOUNT_SCRIPT)
        .arg("istio-proxy")
        .arg(&shared.options.pilot_agent)
        .args(["proxy", "sidecar"])
        .args(pod.agent_log_flags())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .envs(agent_env(shared, pod, ports))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: Envoy joins it, so one signal to the group reaches both.
        .process_group(0);
    // The agent dies with local-mesh (Envoy is then killed through the group or by the next
    // start's sweep of strays).
    process::die_with_parent(command.as_std_mut(), Signal::KILL);
    command.spawn().map_err(|source| Error::Io {
        what: "cannot start pilot-agent (through unshare)",
        path: shared.options.pilot_agent.clone(),
        source,
    })
}

/// Copies one output stream of the agent into the container log, a line at a time.
fn pump(
    stream: impl AsyncRead + Unpin + Send + 'static,
    name: &'static str,
    log: Arc<Mutex<LogFile>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut log) = log.lock() {
                log.line(name, &line);
            }
        }
    });
}

/// The agent's group; `Pid` refuses 0 and 1, which would reach far more than this pod's
/// processes. An error means the group is gone already.
fn signal_group(pgid: u32, signal: Signal) {
    if let Some(pgid) = Pid::new(pgid) {
        let _ = pgid.signal_group(signal);
    }
}

/// SIGTERM to the agent (it drains and stops Envoy), then SIGKILL to whatever is left of its
/// process group.
async fn terminate(child: &mut Child) {
    let Some(pid) = child.id() else { return };
    // Our own, not yet reaped, child: the pid is still its.
    if let Some(pid) = Pid::new(pid) {
        let _ = pid.signal(Signal::TERM);
    }
    let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
    signal_group(pid, Signal::KILL);
    let _ = child.wait().await;
}

/// Whether the agent reports Envoy ready (`GET /healthz/ready` on its status port).
async fn ready(status_port: u16) -> bool {
    let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(("127.0.0.1", status_port)),
    )
    .await
    else {
        return false;
    };
    let request = "GET /healthz/ready HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut head)).await,
        Ok(Ok(_))
    ) && head.starts_with(b"HTTP/1.")
        && &head[9..12] == b"200"
}

struct PodDir {
    dir: PathBuf,
    log: Arc<Mutex<LogFile>>,
}

impl PodDir {
    fn note(&self, level: &str, message: &str) {
        if let Ok(mut log) = self.log.lock() {
            log.note(level, message);
        }
        eprintln!("local-mesh: {message}");
    }

    /// The pod is gone, and with it (as with a kubelet) its container log and volumes; unless a
    /// new pod of the same name has taken the directory over meanwhile.
    fn remove(&self, uid: &str) {
        let taken_over = std::fs::read_to_string(self.dir.join("state.json"))
            .is_ok_and(|state| !state.contains(uid));
        if !taken_over {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let Some(namespace_dir) = self.dir.parent() {
            // Only when empty: other pods of the namespace may still run.
            let _ = std::fs::remove_dir(namespace_dir);
        }
    }

    fn state(&self, state: &State<'_>) {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        let text = serde_json::to_string_pretty(state).unwrap_or_default();
        if std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .is_err()
        {
            eprintln!("local-mesh: cannot write {}", path.display());
        }
    }
}

/// Runs the pod's sidecar until `stop` says so.
pub async fn run(shared: Arc<Shared>, pod: MeshPod, mut stop: watch::Receiver<bool>) {
    let dir = shared.options.dir.join(&pod.namespace).join(&pod.name);
    // A new pod starts from an empty directory, like a new container's log and volumes.
    let _ = std::fs::remove_dir_all(&dir);
    let log = match std::fs::create_dir_all(&dir)
        .and(Ok(()))
        .map_err(|source| Error::Io {
            what: "cannot create",
            path: dir.clone(),
            source,
        })
        .and_then(|()| LogFile::create(&dir.join("istio-proxy.log")))
    {
        Ok(log) => log,
        Err(err) => {
            eprintln!("local-mesh: {}/{}: {err}", pod.namespace, pod.name);
            let _ = stop.changed().await;
            return;
        }
    };
    let log_path = log.path().to_path_buf();
    let pod_dir = PodDir {
        dir,
        log: Arc::new(Mutex::new(log)),
    };
    if let Err(err) =
        objects::publish_logs(&shared.client, &pod.namespace, &pod.name, &log_path).await
    {
        eprintln!("local-mesh: {}/{}: {err}", pod.namespace, pod.name);
    }
    let mut ports = match free_ports() {
        Ok(ports) => ports,
        Err(err) => {
            pod_dir.note("error", &format!("{}/{}: {err}", pod.namespace, pod.name));
            let _ = stop.changed().await;
            return;
        }
    };
    if let Err(err) =
        objects::publish_admin(&shared.client, &pod.namespace, &pod.name, ports.admin).await
    {
        eprintln!("local-mesh: {}/{}: {err}", pod.namespace, pod.name);
    }
    let mut state = State {
        namespace: &pod.namespace,
        pod: &pod.name,
        uid: &pod.uid,
        ip: pod.ip,
        urls: pod
            .ports
            .iter()
            .map(|port| format!("http://{}:{port}", pod.ip))
            .collect(),
        admin: format!("http://127.0.0.1:{}", ports.admin),
        status: format!("http://127.0.0.1:{}", ports.status),
        agent_pid: None,
        ready: false,
        restarts: 0,
    };
    let prepared = tokio::select! {
        result = prepare(&shared, &pod, &pod_dir.dir) => result,
        _ = stop.changed() => return,
    };
    if let Err(err) = prepared {
        pod_dir.note(
            "error",
            &format!(
                "cannot start the sidecar of {}/{}: {err}",
                pod.namespace, pod.name
            ),
        );
        let _ = stop.changed().await;
        return;
    }
    let acquired = tokio::select! {
        result = shared.ips.acquire(pod.ip) => result,
        _ = stop.changed() => {
            pod_dir.remove(&pod.uid);
            return;
        }
    };
    let holds_ip = match acquired {
        Ok(()) => true,
        Err(err) => {
            pod_dir.note("error", &err.to_string());
            false
        }
    };
    loop {
        let mut child = match spawn_agent(&shared, &pod, &pod_dir.dir, &ports) {
            Ok(child) => child,
            Err(err) => {
                pod_dir.note("error", &err.to_string());
                let _ = stop.changed().await;
                break;
            }
        };
        if let Some(out) = child.stdout.take() {
            pump(out, "stdout", pod_dir.log.clone());
        }
        if let Some(err) = child.stderr.take() {
            pump(err, "stderr", pod_dir.log.clone());
        }
        state.agent_pid = child.id();
        state.ready = false;
        pod_dir.state(&state);
        let exited = loop {
            tokio::select! {
                _ = stop.changed() => break None,
                status = child.wait() => break Some(status),
                _ = tokio::time::sleep(Duration::from_millis(200)), if !state.ready => {
                    if ready(ports.status).await {
                        state.ready = true;
                        pod_dir.state(&state);
                    }
                }
            }
        };
        let Some(status) = exited else {
            terminate(&mut child).await;
            break;
        };
        if let Some(pgid) = state.agent_pid {
            signal_group(pgid, Signal::KILL);
        }
        let status = status
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        pod_dir.note(
            "warn",
            &format!(
                "pilot-agent of {}/{} exited ({status}); starting it again in {}s",
                pod.namespace,
                pod.name,
                RESTART_DELAY.as_secs()
            ),
        );
        state.restarts += 1;
        state.ready = false;
        state.agent_pid = None;
        // The ports were free when picked, but they come from the range outgoing connections
        // take their local ports from, so one can be taken before the agent binds it, and the
        // agent exits on every start with the same ports: the next start gets fresh ones.
        if let Ok(fresh) = free_ports() {
            ports = fresh;
            state.admin = format!("http://127.0.0.1:{}", ports.admin);
            state.status = format!("http://127.0.0.1:{}", ports.status);
            if let Err(err) =
                objects::publish_admin(&shared.client, &pod.namespace, &pod.name, ports.admin).await
            {
                eprintln!("local-mesh: {}/{}: {err}", pod.namespace, pod.name);
            }
        }
        pod_dir.state(&state);
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
    if holds_ip {
        shared.ips.release(pod.ip);
    }
    pod_dir.remove(&pod.uid);
}
