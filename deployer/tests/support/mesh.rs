//! Pods with real Istio sidecars: on the local stack, local-mesh starts pilot-agent + Envoy for
//! every pod with an `istio-proxy` container (its pod IP on `lo`, inbound traffic on
//! `podIP:8080` through the sidecar) and stops them when the pod is deleted. This module
//! creates such pods and talks to their sidecars.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
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
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\n  labels:\n{labels}{annotations}spec:\n  containers:\n  - name: app\n    image: example.test/app:1\n    ports:\n    - containerPort: {APP_PORT}\n{proxy}",
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

/// The port test pods declare; their sidecar's inbound listener is `podIP:APP_PORT`.
pub const APP_PORT: u16 = 8080;

/// A pod's running sidecar, as local-mesh reports it in `state.json`.
pub struct Sidecar {
    pub namespace: String,
    pub pod: String,
    dir: PathBuf,
    /// `http://<pod IP>:8080`: the pod's inbound port through its sidecar.
    pub url: String,
    pub ip: String,
    /// Envoy's admin, `http://127.0.0.1:PORT`.
    pub admin: String,
    pub agent_pid: u32,
}

impl Sidecar {
    /// Waits (60 s at most) until the pod's sidecar reports Envoy ready.
    pub fn ready(stack: &Stack, namespace: &str, pod: &str) -> Sidecar {
        let dir = stack.sidecars.join(namespace).join(pod);
        let state_file = dir.join("state.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        let state = loop {
            let state = std::fs::read_to_string(&state_file)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
            if let Some(state) = state.filter(|s| s["ready"] == true) {
                break state;
            }
            assert!(
                Instant::now() < deadline,
                "the sidecar of {namespace}/{pod} is not ready after 60s; state: {}\nlog {}:\n{}\nlocal-mesh log: {}",
                std::fs::read_to_string(&state_file).unwrap_or_default(),
                dir.join("istio-proxy.log").display(),
                tail(
                    &std::fs::read_to_string(dir.join("istio-proxy.log")).unwrap_or_default(),
                    30
                ),
                stack.dir.join("logs/local-mesh.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let text = |key: &str| state[key].as_str().unwrap_or_default().to_string();
        Sidecar {
            namespace: namespace.into(),
            pod: pod.into(),
            url: state["urls"][0].as_str().unwrap_or_default().to_string(),
            ip: text("ip"),
            admin: text("admin"),
            agent_pid: state["agent_pid"].as_u64().unwrap_or_default() as u32,
            dir,
        }
    }

    /// `Ok` once the sidecar is gone: its agent exited, Envoy's admin is closed and local-mesh
    /// removed the pod's directory. (Not the pod IP: kwok gives it to the next pod at once.)
    pub fn stopped(&self) -> Result<(), String> {
        let agent = std::path::Path::new(&format!("/proc/{}", self.agent_pid)).exists();
        let admin = TcpStream::connect(self.admin.trim_start_matches("http://")).is_ok();
        let dir = self.dir.exists();
        if agent || admin || dir {
            Err(format!(
                "agent alive: {agent}, admin open: {admin}, directory left: {dir}"
            ))
        } else {
            Ok(())
        }
    }

    /// The container log file kwok serves (CRI lines).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("istio-proxy.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// One HTTP/1.1 GET through the sidecar; returns the status code (0: no HTTP answer).
    pub fn try_get(&self, path: &str) -> u16 {
        let Ok(mut stream) = TcpStream::connect((self.ip.as_str(), APP_PORT)) else {
            return 0;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        if write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.pod
        )
        .is_err()
        {
            return 0;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    /// [`Sidecar::try_get`] that must get an HTTP answer.
    pub fn get(&self, path: &str) -> u16 {
        match self.try_get(path) {
            0 => panic!(
                "no HTTP answer from {}/{} at {}{path}; log:\n{}",
                self.namespace,
                self.pod,
                self.url,
                tail(&self.log(), 30)
            ),
            status => status,
        }
    }

    /// Envoy's admin `GET path`, as text.
    pub fn admin_get(&self, path: &str) -> String {
        let address = self.admin.trim_start_matches("http://");
        let Ok(mut stream) = TcpStream::connect(address) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        // Envoy's admin speaks HTTP/1.1 only (426 to 1.0) and sends its dumps chunked.
        let _ = write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        );
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let Some((head, body)) = response.split_once("\r\n\r\n") else {
            return String::new();
        };
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        }
    }

    /// The Wasm filter configs Envoy holds for the WasmPlugin `name` of this namespace (ECDS:
    /// what istiod sent, with the module as a local file once the agent fetched it).
    pub fn wasm_configs(&self, name: &str) -> Vec<serde_json::Value> {
        let body = self.admin_get("/config_dump?resource=ecds_filters");
        let dump: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let prefix = format!("{}.{name}", self.namespace);
        dump["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["ecds_filter"])
            // `extensions.istio.io/<kind>/<ns>.<name>[~istio-translated-wasmplugin]`
            .filter(|f| {
                f["name"]
                    .as_str()
                    .and_then(|n| n.rsplit('/').next())
                    .is_some_and(|n| n == prefix || n.starts_with(&format!("{prefix}~")))
            })
            .map(|f| f["typed_config"].clone())
            .collect()
    }

    /// Waits (30 s at most) until Envoy holds a config for the plugin that `accept` likes; returns it.
    pub fn wait_config(
        &self,
        name: &str,
        what: &str,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let configs = self.wasm_configs(name);
            if let Some(config) = configs.iter().find(|c| accept(c)) {
                return config.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{}/{}: {what}: not after 30s; Envoy holds {configs:?}\nlog:\n{}",
                self.namespace,
                self.pod,
                tail(&self.log(), 30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the plugin's module is loaded: a Wasm config whose module is the agent's
    /// local file (root_id `root_id`, "" for none).
    pub fn wait_loaded(&self, name: &str, root_id: &str) -> serde_json::Value {
        self.wait_config(
            name,
            &format!("module loaded with root_id {root_id:?}"),
            |c| is_loaded_wasm(c) && c["config"]["root_id"].as_str().unwrap_or_default() == root_id,
        )
    }
}

/// A Wasm filter config whose module Envoy reads from a local file (the agent rewrote the
/// remote url after fetching it).
pub fn is_loaded_wasm(config: &serde_json::Value) -> bool {
    config["@type"]
        .as_str()
        .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"))
        && config["config"]["vm_config"]["code"]["local"]["filename"].is_string()
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
