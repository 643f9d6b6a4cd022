//! The local stack (`scripts/stack`): a real kube-apiserver (with etcd, controller-manager,
//! scheduler), a kwok fake node, an OCI registry, istiod, and local-mesh (a real istio-agent +
//! Envoy for every pod with an `istio-proxy` container) on loopback. Started once and shared by
//! every test binary of a run (`scripts/stack up` is idempotent and takes a lock); `scripts/test`
//! brings it down at the end. Tests isolate themselves with a fresh namespace each.
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::tools;

/// What `scripts/stack env` exports.
#[derive(Debug)]
pub struct Stack {
    /// `KUBECONFIG`: admin context (current) and an unprivileged one.
    pub kubeconfig: PathBuf,
    /// `REGISTRY`: `127.0.0.1:PORT`, plain HTTP, deletes enabled.
    pub registry: String,
    /// `STACK_CONTEXT`: stack-admin, in group system:masters.
    pub context: String,
    /// `STACK_DEV_CONTEXT`: stack-dev, bound only to the `view` ClusterRole (RBAC "forbidden"
    /// on WasmPlugins and on every write).
    pub dev_context: String,
    /// `STACK_APISERVER`: `https://127.0.0.1:PORT`.
    pub apiserver: String,
    /// `STACK_NODE`: the kwok fake node pods are scheduled on.
    pub node: String,
    /// `STACK_DIR`: state, logs (`logs/<component>.log`), pid files.
    pub dir: PathBuf,
    /// `STACK_SIDECARS`: local-mesh's per-pod directories (`<ns>/<pod>/state.json`,
    /// `istio-proxy.log`).
    pub sidecars: PathBuf,
}

/// The shared stack, started on first use. Panics with the reason and the logs' path when it
/// cannot start: a test that needs it fails, never skips.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(start)
}

pub fn script() -> PathBuf {
    tools::repo_root().join("scripts").join("stack")
}

/// Runs `scripts/stack ARGS` and returns its output whatever the status.
pub fn run_script(args: &[&str]) -> Output {
    Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", script().display()))
}

fn default_dir() -> PathBuf {
    std::env::var_os("STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools::cache_dir().join("stack"))
}

fn start() -> Stack {
    let output = run_script(&["up"]);
    if !output.status.success() {
        panic!(
            "the local stack did not start (`scripts/stack up` {}):\n{}\nlogs: {}/logs \
             (binaries come from `scripts/setup`, local-mesh from `cargo build -p local-mesh`)",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            default_dir().display()
        );
    }
    parse_env(&String::from_utf8_lossy(&output.stdout))
}

/// Parses the `export NAME=VALUE` lines printed by `scripts/stack up` / `env`.
pub fn parse_env(text: &str) -> Stack {
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .collect();
    let get = |name: &str| -> String {
        vars.get(name)
            .map(|value| value.to_string())
            .unwrap_or_else(|| panic!("`scripts/stack up` printed no {name}:\n{text}"))
    };
    Stack {
        kubeconfig: PathBuf::from(get("KUBECONFIG")),
        registry: get("REGISTRY"),
        context: get("STACK_CONTEXT"),
        dev_context: get("STACK_DEV_CONTEXT"),
        apiserver: get("STACK_APISERVER"),
        node: get("STACK_NODE"),
        dir: PathBuf::from(get("STACK_DIR")),
        sidecars: PathBuf::from(get("STACK_SIDECARS")),
    }
}

impl Stack {
    /// `kubectl` as stack-admin.
    pub fn kubectl(&self) -> Command {
        self.kubectl_in(&self.context)
    }

    /// `kubectl` as the unprivileged stack-dev.
    pub fn kubectl_as_dev(&self) -> Command {
        self.kubectl_in(&self.dev_context)
    }

    pub fn kubectl_in(&self, context: &str) -> Command {
        let mut command = Command::new(tools::require("kubectl"));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(context);
        command.stdin(Stdio::null());
        command
    }

    /// Environment for a `deployer` (or any client) that should talk to the stack.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("REGISTRY", self.registry.clone()),
        ]
    }

    /// A fresh namespace (name starts with `prefix`), deleted when the guard drops. Returns once
    /// the namespace's default ServiceAccount exists, so pods can be created in it right away.
    pub fn namespace(&self, prefix: &str) -> Namespace<'_> {
        let name = unique_name(prefix);
        kubectl_ok(self.kubectl().args(["create", "namespace", &name]));
        let namespace = Namespace { stack: self, name };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = self
                .kubectl()
                .args([
                    "-n",
                    &namespace.name,
                    "get",
                    "serviceaccount",
                    "default",
                    "-o",
                    "name",
                ])
                .output()
                .expect("run kubectl");
            if output.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no default ServiceAccount in {} after 30s: is kube-controller-manager running? log: {}",
                namespace.name,
                self.dir.join("logs/kube-controller-manager.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        namespace
    }
}

/// A test's own namespace; deleted (without waiting) on drop.
pub struct Namespace<'a> {
    stack: &'a Stack,
    pub name: String,
}

impl Namespace<'_> {
    /// `kubectl -n <this namespace>` as stack-admin.
    pub fn kubectl(&self) -> Command {
        let mut command = self.stack.kubectl();
        command.args(["-n", &self.name]);
        command
    }

    /// Makes `kubectl logs POD -c CONTAINER` in this namespace serve `file` (kwok's Logs
    /// resource, named after the pod). kwok parses the file as CRI log lines:
    /// `<RFC3339Nano time> stdout F <text>`; `follow` lets `kubectl logs -f` see appended lines.
    pub fn serve_logs(&self, pod: &str, container: &str, file: &std::path::Path) {
        let manifest = format!(
            "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Logs\nmetadata:\n  name: {pod}\n  namespace: {}\n\
             spec:\n  logs:\n  - containers: [{container}]\n    logsFile: {}\n    follow: true\n",
            self.name,
            file.display()
        );
        let output = run_with_stdin(self.kubectl().args(["apply", "-f", "-"]), &manifest);
        assert!(
            output.status.success(),
            "create kwok Logs for {}/{pod}: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = self
            .stack
            .kubectl()
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .output();
    }
}

/// `prefix-<pid>-<n>`: unique across the test binaries of one run and the tests of one binary,
/// a valid DNS label.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{}-{}-{:x}",
        prefix.trim_matches('-'),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 0xfff
    )
}

/// `deployer` with the stack's environment (KUBECONFIG, REGISTRY).
pub fn deployer(stack: &Stack) -> assert_cmd::Command {
    let mut command = tools::deployer();
    command.envs(stack.env());
    command
}

/// A command's stdout and stderr as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `command` with `input` on its stdin; returns its output whatever the exit status.
pub fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    tools::run(command, Some(input))
}

/// Runs a kubectl command; panics with its output when it fails. Returns stdout.
pub fn kubectl_ok(command: &mut Command) -> String {
    tools::run_ok(command, None)
}
