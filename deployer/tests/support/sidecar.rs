//! The sidecar stand-in (`sidecar-standin`, deployer::mesh::sidecar) for one kwok pod, and the
//! pods it stands in for. A `StandIn` is stopped (SIGTERM, then SIGKILL) on drop, which also
//! stops its Envoy.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::stack::{Namespace, Stack, kubectl_ok, run_with_stdin};

/// How a test pod looks.
pub struct PodSpec<'a> {
    pub name: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
    /// Adds `sidecar.istio.io/componentLogLevel: wasm:info`.
    pub wasm_info: bool,
    /// Adds an `istio-proxy` container (an injected sidecar).
    pub sidecar: bool,
}

/// Creates the pod on the kwok node and waits until it is Running.
pub fn create_pod(ns: &Namespace<'_>, spec: &PodSpec<'_>) {
    let labels: String = spec
        .labels
        .iter()
        .map(|(k, v)| format!("    {k}: {v}\n"))
        .collect();
    let annotations = if spec.wasm_info {
        "  annotations:\n    sidecar.istio.io/componentLogLevel: \"wasm:info\"\n"
    } else {
        ""
    };
    let proxy = if spec.sidecar {
        "  - name: istio-proxy\n    image: auto\n"
    } else {
        ""
    };
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\n  labels:\n{labels}{annotations}spec:\n  containers:\n  - name: app\n    image: example.test/app:1\n{proxy}",
        spec.name
    );
    let output = run_with_stdin(ns.kubectl().args(["apply", "-f", "-"]), &manifest);
    assert!(
        output.status.success(),
        "create pod {}: {}",
        spec.name,
        String::from_utf8_lossy(&output.stderr)
    );
    kubectl_ok(ns.kubectl().args([
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "--timeout=60s",
        &format!("pod/{}", spec.name),
    ]));
}

pub fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("sidecar-standin")
}

/// A running stand-in for one pod.
pub struct StandIn {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub pod: String,
    /// `http://127.0.0.1:PORT`: the pod's inbound port through its sidecar.
    pub url: String,
    pub port: u16,
}

impl StandIn {
    /// Starts the stand-in and waits until its Envoy is ready (state.json written).
    pub fn start(stack: &Stack, namespace: &str, pod: &str) -> StandIn {
        Self::start_with(stack, namespace, pod, &[])
    }

    /// [`StandIn::start`] with extra `sidecar-standin` arguments (e.g. `--ca-file`).
    pub fn start_with(
        stack: &Stack,
        namespace: &str,
        pod: &str,
        extra: &[&std::ffi::OsStr],
    ) -> StandIn {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(binary());
        command
            .arg(pod)
            .args(["-n", namespace, "--poll-ms", "300", "--kubeconfig"])
            .arg(&stack.kubeconfig)
            .arg("--context")
            .arg(&stack.context)
            .arg("--dir")
            .arg(dir.path().join("sidecar"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file(&dir.path().join("stdout")))
            .stderr(file(&dir.path().join("stderr")));
        let child = command.spawn().expect("start sidecar-standin");
        let mut standin = StandIn {
            child: Some(child),
            dir,
            pod: pod.to_string(),
            url: String::new(),
            port: 0,
        };
        let state = standin.wait_state(|_| true);
        standin.port = state["port"].as_u64().expect("port in state.json") as u16;
        standin.url = state["url"].as_str().expect("url").to_string();
        standin
    }

    /// The stand-in's `state.json` once `accept` likes it (60 s at most).
    pub fn wait_state(&mut self, accept: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let path = self.dir.path().join("sidecar").join("state.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(state) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                && accept(&state)
            {
                return state;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "sidecar-standin for {} exited ({status}):\n{}",
                    self.pod,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sidecar-standin for {} not in the expected state after 60s; last state: {}\nstderr:\n{}\nstdout:\n{}",
                self.pod,
                std::fs::read_to_string(&path).unwrap_or_default(),
                self.stderr(),
                std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// The container log file kwok serves (CRI lines).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("sidecar").join("istio-proxy.log")
    }

    /// One HTTP/1.1 GET through the sidecar; returns the status code.
    pub fn get(&self, path: &str) -> u16 {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the stand-in");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.pod
        )
        .expect("send request");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer from the stand-in: {response:?}"))
    }

    /// Stops the stand-in (SIGTERM, like a pod's shutdown) and returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: plain syscall on a child we have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop();
    }
}

fn file(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::create(path).expect("create a log file for the stand-in"))
}
