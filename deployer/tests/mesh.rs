//! `deployer logs` and `deployer status` against real Istio on the local stack: a real
//! kube-apiserver, kwok pods, the real registry, the real istiod, and for every pod with an
//! `istio-proxy` container a real istio-agent + Envoy (local-mesh) that fetches the module the
//! way Istio does and loads it over ECDS. Each test has its own namespace and image repository;
//! deleting the namespace stops its sidecars.
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::mesh::{PodSpec, Sidecar, create_pod, is_loaded_wasm};
use support::stack::{Namespace, Stack, deployer, kubectl_ok, stack, text};

const PLUGIN: &str = "ctx";
const ROOT_ID: &str = "context_logger";
/// A line istio-agent prints once Envoy is up: not about any plugin.
const AGENT_START: &str = "Envoy proxy is ready";

/// Pushes the filter to a repository of the test's own and returns the tagged reference.
fn push_filter(stack: &Stack, ns: &Namespace<'_>) -> String {
    let image = format!("{}/{}/ctx:v1", stack.registry, ns.name);
    let output = deployer(stack)
        .arg("push")
        .arg(support::wasm::filter_module())
        .arg(&image)
        .arg("--plain-http")
        .output()
        .expect("run deployer push");
    assert!(output.status.success(), "push: {:?}", text(&output));
    image
}

/// The filter pushed to the test's repository and applied with `extra` flags; returns the image.
fn push_and_apply(stack: &Stack, ns: &Namespace<'_>, extra: &[&str]) -> String {
    let image = push_filter(stack, ns);
    apply(stack, ns, &image, extra);
    image
}

fn apply(stack: &Stack, ns: &Namespace<'_>, image: &str, extra: &[&str]) {
    apply_with_root_id(stack, ns, image, ROOT_ID, extra);
}

fn apply_with_root_id(
    stack: &Stack,
    ns: &Namespace<'_>,
    image: &str,
    root_id: &str,
    extra: &[&str],
) {
    let output = deployer(stack)
        .args([
            "apply",
            PLUGIN,
            "-n",
            &ns.name,
            "--image",
            image,
            "--plain-http",
        ])
        .args(["--plugin-name", root_id])
        .args(extra)
        .output()
        .expect("run deployer apply");
    assert!(output.status.success(), "apply: {:?}", text(&output));
}

/// A pod labelled app=web, with or without wasm logging at info and an istio-proxy sidecar.
fn web_pod(name: &str, wasm_info: bool, sidecar: bool) -> PodSpec<'_> {
    PodSpec {
        name,
        labels: &[("app", "web")],
        wasm_info,
        sidecar,
    }
}

fn meshed_pod(name: &str) -> PodSpec<'_> {
    web_pod(name, true, true)
}

fn logs(stack: &Stack, ns: &Namespace<'_>, extra: &[&str]) -> Output {
    deployer(stack)
        .args(["logs", PLUGIN, "-n", &ns.name])
        .args(extra)
        .output()
        .expect("run deployer logs")
}

fn status(stack: &Stack, ns: &Namespace<'_>, extra: &[&str]) -> Output {
    deployer(stack)
        .args(["status", PLUGIN, "-n", &ns.name, "--plain-http"])
        .args(extra)
        .output()
        .expect("run deployer status")
}

/// `deployer status` must fail; returns its stdout (the report) to check the reasons.
fn status_failing(stack: &Stack, ns: &Namespace<'_>) -> String {
    let output = status(stack, ns, &[]);
    let (stdout, _) = text(&output);
    assert!(!output.status.success(), "{stdout}");
    stdout
}

/// `deployer logs` must fail; returns its stderr to check the reason.
fn logs_failing(stack: &Stack, ns: &Namespace<'_>) -> String {
    let output = logs(stack, ns, &[]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    stderr
}

/// The filter pushed and applied to `app=web`, and a meshed pod `web` whose sidecar has loaded
/// the module: what most tests start from. Returns the image and the sidecar.
fn filter_serving_in_web_pod(stack: &Stack, ns: &Namespace<'_>) -> (String, Sidecar) {
    let image = push_and_apply(stack, ns, &["--selector", "app=web"]);
    create_pod(ns, &meshed_pod("web"));
    let sidecar = loaded_sidecar(stack, ns, "web");
    (image, sidecar)
}

/// The pod's sidecar once Envoy runs the plugin's module with root_id ROOT_ID.
fn loaded_sidecar(stack: &Stack, ns: &Namespace<'_>, pod: &str) -> Sidecar {
    let sidecar = Sidecar::ready(stack, &ns.name, pod);
    sidecar.wait_loaded(PLUGIN, ROOT_ID);
    sidecar
}

/// Envoy's name for the test plugin in this Istio (which translates WasmPlugins into
/// TrafficExtensions): `<ns>.ctx~istio-translated-wasmplugin`.
fn envoy_name(ns: &Namespace<'_>) -> String {
    format!("{}.{PLUGIN}~istio-translated-wasmplugin", ns.name)
}

/// Polls `probe` until it returns Some (30 s at most); the panic shows the last attempt.
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => panic!("{what}: not after 30s; last: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Polls `deployer logs` until its stdout satisfies `wanted`; returns that stdout.
fn eventually_logs(
    stack: &Stack,
    ns: &Namespace<'_>,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    eventually(what, || {
        let (stdout, _) = text(&logs(stack, ns, &[]));
        if wanted(&stdout) {
            Ok(stdout)
        } else {
            Err(stdout)
        }
    })
}

fn new_http_context_lines<'a>(stdout: &'a str, pod: &str) -> Vec<&'a str> {
    let prefix = format!("[pod/{pod}/istio-proxy] ");
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter(|line| line.contains("NewHttpContext"))
        .collect()
}

/// Istio's sidecar format: `<RFC3339 time>\tinfo\tenvoy wasm <file:line>\twasm log <envoy name> <root_id>: NewHttpContext\tthread=N`.
fn assert_istio_format(line: &str, ns: &Namespace<'_>) {
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len(), 5, "{line:?}");
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('T'),
        "{line:?}"
    );
    assert_eq!(fields[1], "info", "{line:?}");
    assert!(
        fields[2].starts_with("envoy wasm ") && fields[2].contains(".cc:"),
        "{line:?}"
    );
    assert_eq!(
        fields[3],
        format!("wasm log {} {ROOT_ID}: NewHttpContext", envoy_name(ns)),
        "{line:?}"
    );
    assert!(fields[4].starts_with("thread="), "{line:?}");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn logs_show_one_new_http_context_per_request_prefixed_by_pod_and_kubectl_logs_agrees() {
    let stack = stack();
    let ns = stack.namespace("mesh-logs");
    push_and_apply(stack, &ns, &["--selector", "app=web"]);
    create_pod(&ns, &meshed_pod("web-a"));
    create_pod(&ns, &meshed_pod("web-b"));
    create_pod(
        &ns,
        &PodSpec {
            name: "db",
            labels: &[("app", "db")],
            wasm_info: true,
            sidecar: true,
        },
    );
    let a = loaded_sidecar(stack, &ns, "web-a");
    let b = loaded_sidecar(stack, &ns, "web-b");
    for _ in 0..3 {
        assert_eq!(a.get("/"), 200);
    }
    for _ in 0..2 {
        assert_eq!(b.get("/get"), 200);
    }

    let stdout = eventually("5 NewHttpContext lines from deployer logs", || {
        let output = logs(stack, &ns, &[]);
        let (stdout, stderr) = text(&output);
        if !output.status.success() {
            return Err(stderr);
        }
        let found = new_http_context_lines(&stdout, "web-a").len()
            + new_http_context_lines(&stdout, "web-b").len();
        if found >= 5 { Ok(stdout) } else { Err(stdout) }
    });
    let from_a = new_http_context_lines(&stdout, "web-a");
    let from_b = new_http_context_lines(&stdout, "web-b");
    assert_eq!((from_a.len(), from_b.len()), (3, 2), "{stdout}");
    for line in from_a.iter().chain(&from_b) {
        assert_istio_format(line, &ns);
    }
    assert!(!stdout.contains("pod/db"), "db is not selected: {stdout}");
    // Only lines about this plugin: the agent's own start-up lines are filtered out...
    assert!(!stdout.contains(AGENT_START), "{stdout}");
    // ...and kept with --all.
    let (all, _) = text(&logs(stack, &ns, &["--all"]));
    assert!(
        all.contains("[pod/web-a/istio-proxy] ") && all.contains(AGENT_START),
        "{all}"
    );

    // --tail counts each pod's last lines before filtering, like kubectl: as many lines as
    // end web-a's log after its second-to-last NewHttpContext give exactly the last one.
    let log = a.log();
    let lines: Vec<&str> = log.lines().collect();
    let last_two: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("NewHttpContext"))
        .map(|(i, _)| i)
        .rev()
        .take(2)
        .collect();
    let tail_lines = (lines.len() - last_two[1] - 1).to_string();
    let (tail, _) = text(&logs(stack, &ns, &["--tail", &tail_lines]));
    assert_eq!(
        new_http_context_lines(&tail, "web-a").len(),
        1,
        "--tail {tail_lines}: {tail}"
    );

    // The same lines, read the way users do: kubectl logs <pod> -c istio-proxy | grep "wasm log".
    for (pod, lines) in [("web-a", &from_a), ("web-b", &from_b)] {
        let served = kubectl_ok(ns.kubectl().args(["logs", pod, "-c", "istio-proxy"]));
        let wasm: Vec<&str> = served.lines().filter(|l| l.contains("wasm log")).collect();
        assert_eq!(&wasm, lines, "kubectl logs {pod} -c istio-proxy:\n{served}");
    }

    // status: all is well, both pods named with their latest line.
    let output = status(stack, &ns, &[]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("matches the pinned sha256"), "{stdout}");
    assert!(
        stdout.contains("web-a") && stdout.contains("web-b"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("wasm log {}", envoy_name(&ns))),
        "{stdout}"
    );
    let output = status(stack, &ns, &["-o", "json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("status -o json prints JSON");
    assert!(output.status.success());
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["pods"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["pods"][0]["latest"]["kind"], "wasm-log");
    // What each Envoy runs, read from its admin through the API server's port-forward: the
    // module of the pinned digest.
    let pinned = report["image"]["pinned"]
        .as_str()
        .expect("a pin")
        .to_string();
    for pod in report["pods"].as_array().expect("pods") {
        assert_eq!(pod["envoy"]["state"], "loaded", "{pod}");
        assert_eq!(pod["envoy"]["digest"], format!("sha256:{pinned}"), "{pod}");
        assert_eq!(pod["envoy"]["name"], envoy_name(&ns), "{pod}");
    }
    assert!(
        stdout.contains(&format!(
            "envoy: {} loaded, module sha256:{pinned}",
            envoy_name(&ns)
        )),
        "{stdout}"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn wrong_sha256_fails_status_with_checksum_mismatch_and_logs_show_the_agent_fetch_error() {
    let stack = stack();
    let ns = stack.namespace("mesh-sha");
    let image = push_filter(stack, &ns);
    let wrong = "a".repeat(64);
    apply(
        stack,
        &ns,
        &image,
        &["--selector", "app=web", "--no-pin", "--sha256", &wrong],
    );
    create_pod(&ns, &meshed_pod("web"));
    let sidecar = Sidecar::ready(stack, &ns.name, "web");
    // FAIL_CLOSE (the default): the agent puts a deny-all RBAC filter where the module would be.
    sidecar.wait_config(PLUGIN, "the deny-all filter in the module's place", |c| {
        c["@type"]
            .as_str()
            .is_some_and(|t| t.ends_with("rbac.v3.RBAC"))
    });
    assert_eq!(sidecar.get("/"), 403);

    let output = status(stack, &ns, &[]);
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "status must fail:\n{stdout}");
    assert!(stdout.contains("checksum mismatch"), "{stdout}{stderr}");
    assert!(stdout.contains("could not fetch the module"), "{stdout}");
    assert!(
        stdout.contains("pod web: Envoy has Istio's deny-all filter in the plugin's place"),
        "{stdout}"
    );

    let output = logs(stack, &ns, &[]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let url = format!("oci://{image}");
    let expected = format!(
        "\terror\twasm\terror in converting the wasm config to local: cannot fetch Wasm module {url}: module downloaded from {url} has checksum "
    );
    assert!(
        stdout.starts_with("[pod/web/istio-proxy] ") && stdout.contains(&expected),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            ", which does not match: {wrong}. applying deny RBAC filter"
        )),
        "{stdout}"
    );

    // Fixing the plugin takes effect in the running sidecar (same agent, no restart).
    apply(stack, &ns, &image, &["--selector", "app=web"]);
    sidecar.wait_loaded(PLUGIN, ROOT_ID);
    assert_eq!(
        Sidecar::ready(stack, &ns.name, "web").agent_pid,
        sidecar.agent_pid
    );
    assert_eq!(sidecar.get("/"), 200);
    eventually_logs(
        stack,
        &ns,
        "a NewHttpContext line after the fix",
        |stdout| new_http_context_lines(stdout, "web").len() == 1,
    );
    let output = status(stack, &ns, &[]);
    assert!(output.status.success(), "{:?}", text(&output));
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_selector_matching_no_pod_is_reported() {
    let stack = stack();
    let ns = stack.namespace("mesh-nopod");
    push_and_apply(stack, &ns, &["--selector", "app=nothing"]);
    create_pod(&ns, &meshed_pod("web"));

    let stdout = status_failing(stack, &ns);
    assert!(
        stdout.contains(&format!(
            "no pod in namespace {} matches selector app=nothing (1 pod(s) there)",
            ns.name
        )),
        "{stdout}"
    );
    let stderr = logs_failing(stack, &ns);
    assert!(stderr.contains("no pod in namespace"), "{stderr}");

    // A name that does not exist is named, with where to look.
    for verb in ["logs", "status"] {
        let output = deployer(stack)
            .args([verb, "nope", "-n", &ns.name])
            .output()
            .expect("run deployer");
        let (_, stderr) = text(&output);
        assert!(!output.status.success());
        assert!(
            stderr.contains(&format!("WasmPlugin {}/nope not found", ns.name))
                && stderr.contains("deployer list"),
            "{verb}: {stderr}"
        );
    }
}

/// The ports of a sidecar are picked free but come from the range outgoing connections take
/// their local ports from: when its agent dies and another process holds its admin port by the
/// time it starts again, it must come back on other ports, not fail on every restart.
#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_restarted_sidecar_whose_port_was_taken_comes_back_on_another() {
    let stack = stack();
    let ns = stack.namespace("mesh-ports");
    create_pod(&ns, &meshed_pod("web"));
    let before = Sidecar::ready(stack, &ns.name, "web");
    let admin_port: u16 = before
        .admin
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("admin url ends in a port");
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", before.agent_pid)])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill the agent's process group");
    // local-mesh starts the agent again after 2 s: hold the port before then.
    let deadline = Instant::now() + Duration::from_millis(1500);
    let _held = loop {
        match std::net::TcpListener::bind(("127.0.0.1", admin_port)) {
            Ok(listener) => break listener,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => panic!("cannot hold the admin port {admin_port}: {err}"),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let now = Sidecar::ready(stack, &ns.name, "web");
        if now.agent_pid != before.agent_pid {
            break now;
        }
        assert!(Instant::now() < deadline, "the agent was not started again");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(after.admin, before.admin, "a new admin port");
    // And the pod still serves through its sidecar.
    eventually("a request through the restarted sidecar", || {
        match after.try_get("/") {
            200 => Ok(()),
            status => Err(format!("HTTP {status}")),
        }
    });
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_selected_pod_without_istio_proxy_is_reported() {
    let stack = stack();
    let ns = stack.namespace("mesh-noproxy");
    push_and_apply(stack, &ns, &[]);
    create_pod(&ns, &web_pod("plain", false, false));
    let stdout = status_failing(stack, &ns);
    assert!(
        stdout.contains("plain  Running  istio-proxy: NO"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pod plain has no istio-proxy container"),
        "{stdout}"
    );
    let stderr = logs_failing(stack, &ns);
    assert!(
        stderr.contains("pod plain has no istio-proxy container"),
        "{stderr}"
    );
    // Not in the mesh: no sidecar was started for it.
    assert!(
        !stack.sidecars.join(&ns.name).join("plain").exists(),
        "local-mesh started a sidecar for a pod without istio-proxy"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn without_wasm_info_logs_prints_nothing_and_says_why() {
    let stack = stack();
    let ns = stack.namespace("mesh-quiet");
    push_and_apply(stack, &ns, &[]);
    create_pod(&ns, &web_pod("quiet", false, true));
    let sidecar = loaded_sidecar(stack, &ns, "quiet");
    assert_eq!(sidecar.get("/"), 200);
    std::thread::sleep(Duration::from_millis(500));
    let output = logs(stack, &ns, &[]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "", "the sidecar logs wasm at warning");
    assert!(
        stderr.contains("sidecar.istio.io/componentLogLevel")
            && stderr.contains("istioctl proxy-config log <pod> --level wasm:info")
            && stderr.contains("quiet"),
        "{stderr}"
    );
    let log = sidecar.log();
    assert!(!log.contains("NewHttpContext"), "{log}");
}

/// A running `deployer logs PLUGIN -n NS -f`: its stdout lines as they come, its stderr in a
/// file for failure messages. Killed on drop.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
}

impl Follower {
    fn start(stack: &Stack, ns: &Namespace<'_>) -> Follower {
        let stderr = tempfile::NamedTempFile::new().expect("temp file");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("deployer"))
            .args(["logs", PLUGIN, "-n", &ns.name, "-f"])
            .envs(stack.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen the stderr file"))
            .spawn()
            .expect("start deployer logs -f");
        let stdout = child.stdout.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Follower {
            child,
            lines,
            stderr,
        }
    }

    /// The next stdout line, within `timeout`.
    fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().expect("poll").is_none(),
            "-f must keep running; stderr:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn follow_streams_new_lines_as_requests_arrive() {
    let stack = stack();
    let ns = stack.namespace("mesh-follow");
    let (_, sidecar) = filter_serving_in_web_pod(stack, &ns);

    let mut follower = Follower::start(stack, &ns);
    for round in 1..=3 {
        assert_eq!(sidecar.get("/"), 200);
        let line = follower
            .next_line(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("deployer logs -f printed no line for request {round}"));
        assert!(line.starts_with("[pod/web/istio-proxy] "), "{line}");
        assert!(line.contains("NewHttpContext"), "{line}");
    }
    follower.assert_running();
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn follow_picks_up_a_pod_created_after_it_started() {
    const REQUESTS: usize = 3;
    let stack = stack();
    let ns = stack.namespace("mesh-follow-new");
    let (_, first) = filter_serving_in_web_pod(stack, &ns);
    assert_eq!(first.get("/"), 200);
    let mut follower = Follower::start(stack, &ns);
    let started = Instant::now();

    // A scale-up: a second selected pod, with its sidecar, after the follower began.
    create_pod(&ns, &meshed_pod("web-2"));
    let second = loaded_sidecar(stack, &ns, "web-2");
    for _ in 0..REQUESTS {
        assert_eq!(second.get("/"), 200);
    }
    let prefix = "[pod/web-2/istio-proxy] ";
    let mut seen = Vec::new();
    let deadline = started + Duration::from_secs(45);
    while seen.len() < REQUESTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = follower.next_line(left) else {
            panic!(
                "{} of {REQUESTS} NewHttpContext lines from web-2 after 45s: {seen:?}\nstderr:\n{}",
                seen.len(),
                follower.stderr()
            );
        };
        if let Some(rest) = line.strip_prefix(prefix) {
            assert_istio_format(rest, &ns);
            seen.push(line);
        }
    }
    eprintln!(
        "web-2's lines followed {:?} after the follower started",
        started.elapsed()
    );
    // No line twice: nothing more from web-2 over two more listings (4 s).
    while let Some(line) = follower.next_line(Duration::from_secs(4)) {
        assert!(
            !line.starts_with(prefix),
            "a line beyond the {REQUESTS} requests: {line}"
        );
    }
    assert!(
        follower.stderr().contains("reading the new pod web-2"),
        "{}",
        follower.stderr()
    );

    // A scale-down: the deleted pod is no longer read, the remaining one still is.
    kubectl_ok(
        ns.kubectl()
            .args(["delete", "pod", "web-2", "--wait=false"]),
    );
    eventually("the follower drops the deleted pod", || {
        let stderr = follower.stderr();
        if stderr.contains("pod web-2 is gone") {
            Ok(())
        } else {
            Err(stderr)
        }
    });
    assert_eq!(first.get("/"), 200);
    let line = follower
        .next_line(Duration::from_secs(20))
        .expect("a line from web after web-2 went");
    assert!(line.starts_with("[pod/web/istio-proxy] "), "{line}");
    follower.assert_running();
}

/// Envoy's uptime in this epoch (seconds): it starts again from 0 when Envoy restarts.
fn envoy_uptime(sidecar: &Sidecar) -> u64 {
    let info: serde_json::Value =
        serde_json::from_str(&sidecar.admin_get("/server_info")).unwrap_or_default();
    info["uptime_current_epoch"]
        .as_str()
        .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
        .map(|s| s as u64)
        .unwrap_or_else(|| panic!("no uptime in Envoy's /server_info: {info}"))
}

/// Requests through the sidecar every 10 ms on a thread of their own until stopped; returns
/// each status (0: no HTTP answer at all).
struct Traffic {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u16>>,
}

impl Traffic {
    fn start(stack: &Stack, ns: &Namespace<'_>, pod: &str) -> Traffic {
        let sidecar = Sidecar::ready(stack, &ns.name, pod);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                statuses.push(sidecar.try_get("/steady"));
                std::thread::sleep(Duration::from_millis(10));
            }
            statuses
        });
        Traffic { stop, thread }
    }

    fn stop(self) -> Vec<u16> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("traffic thread")
    }
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_changed_plugin_takes_over_in_the_running_sidecar_without_failing_requests() {
    let stack = stack();
    let ns = stack.namespace("mesh-change");
    let (image, sidecar) = filter_serving_in_web_pod(stack, &ns);
    let first = sidecar.wait_loaded(PLUGIN, ROOT_ID);
    let module_file = |c: &serde_json::Value| {
        c["config"]["vm_config"]["code"]["local"]["filename"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let uptime = envoy_uptime(&sidecar);
    let traffic = Traffic::start(stack, &ns, "web");

    // A new pluginConfig reaches the running Envoy over ECDS...
    apply(
        stack,
        &ns,
        &image,
        &["--selector", "app=web", "--set", "prefix=v2-"],
    );
    sidecar.wait_config(PLUGIN, "the new pluginConfig", |c| {
        is_loaded_wasm(c) && c["config"]["configuration"].to_string().contains("v2-")
    });
    // ...and so does a new image (another digest: the agent fetches it, Envoy swaps modules).
    let image_v2 = format!("{}/{}/ctx:v2", stack.registry, ns.name);
    let output = deployer(stack)
        .arg("push")
        .arg(support::wasm::filter_module())
        .arg(&image_v2)
        .args(["--plain-http", "--revision", "v2"])
        .output()
        .expect("run deployer push");
    assert!(output.status.success(), "push v2: {:?}", text(&output));
    apply(
        stack,
        &ns,
        &image_v2,
        &["--selector", "app=web", "--set", "prefix=v2-"],
    );
    let second = sidecar.wait_config(PLUGIN, "the module of the v2 image", |c| {
        is_loaded_wasm(c) && module_file(c) != module_file(&first)
    });
    std::thread::sleep(Duration::from_millis(300));
    let statuses = traffic.stop();
    let failed: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty() && statuses.len() > 10,
        "{} of {} requests failed during the switch: {failed:?}",
        failed.len(),
        statuses.len()
    );
    assert!(
        second["config"]["configuration"]
            .to_string()
            .contains("v2-"),
        "{second}"
    );
    // Same agent, same Envoy: nothing restarted.
    assert_eq!(
        Sidecar::ready(stack, &ns.name, "web").agent_pid,
        sidecar.agent_pid
    );
    assert!(envoy_uptime(&sidecar) >= uptime, "Envoy restarted");
    let stdout = eventually_logs(stack, &ns, "a line with the new prefix", |stdout| {
        stdout.contains(&format!(
            "wasm log {} {ROOT_ID}: v2-NewHttpContext",
            envoy_name(&ns)
        ))
    });
    assert!(
        stdout.contains(&format!(
            "wasm log {} {ROOT_ID}: NewHttpContext",
            envoy_name(&ns)
        )),
        "the earlier lines stay: {stdout}"
    );

    // Deleting the pod stops its sidecar: the agent and Envoy are gone.
    kubectl_ok(ns.kubectl().args(["delete", "pod", "web", "--wait=false"]));
    eventually("the sidecar stops with its pod", || sidecar.stopped());
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_configuration_envoy_refuses_is_reported_and_the_previous_one_keeps_serving() {
    let stack = stack();
    let ns = stack.namespace("mesh-refused");
    let (image, sidecar) = filter_serving_in_web_pod(stack, &ns);
    assert_eq!(sidecar.get("/"), 200);

    // The filter's on_configure refuses unknown keys, so Envoy cannot load the plugin.
    apply(
        stack,
        &ns,
        &image,
        &["--selector", "app=web", "--set", "bogus=1"],
    );
    let log = eventually("Envoy refuses the new configuration", || {
        let log = sidecar.log();
        if log.contains("unknown field") {
            Ok(log)
        } else {
            Err(support::mesh::tail(&log, 20))
        }
    });
    assert!(
        log.contains("invalid plugin configuration"),
        "the module's reason is in the log: {log}"
    );

    let stdout = status_failing(stack, &ns);
    assert!(
        stdout.contains("pod web: Envoy could not load the plugin"),
        "{stdout}"
    );
    let (stdout, _) = text(&logs(stack, &ns, &[]));
    assert!(stdout.contains("unknown field"), "{stdout}");
    // Like any rejected xDS update: the previous configuration keeps serving.
    assert_eq!(sidecar.get("/"), 200);
}

/// Serves `body` to every GET on 127.0.0.1 (a plain web server for http:// module urls) until
/// the test process ends.
fn serve(body: Vec<u8>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/wasm\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, head.as_bytes());
            let _ = std::io::Write::write_all(&mut stream, &body);
        }
    });
    port
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn an_http_module_url_is_fetched_and_checked_by_its_bytes() {
    let stack = stack();
    let ns = stack.namespace("mesh-http");
    let module = std::fs::read(support::wasm::filter_module()).expect("read the filter");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&module))
    };
    let url = format!("http://127.0.0.1:{}/context_logger.wasm", serve(module));
    apply(
        stack,
        &ns,
        &url,
        &["--selector", "app=web", "--sha256", &sha],
    );
    create_pod(&ns, &meshed_pod("web"));
    let sidecar = loaded_sidecar(stack, &ns, "web");
    assert_eq!(sidecar.get("/"), 200);
    eventually_logs(stack, &ns, "a NewHttpContext line", |stdout| {
        new_http_context_lines(stdout, "web").len() == 1
    });
    let output = status(stack, &ns, &[]);
    let (stdout, _) = text(&output);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("a plain wasm module") && stdout.contains("matches the pinned sha256"),
        "{stdout}"
    );

    let wrong = "c".repeat(64);
    apply(
        stack,
        &ns,
        &url,
        &["--selector", "app=web", "--sha256", &wrong],
    );
    let stdout = status_failing(stack, &ns);
    assert!(
        stdout.contains(&format!("checksum mismatch: the WasmPlugin pins sha256 {wrong} but {url} has module sha256 sha256:{sha}")),
        "{stdout}"
    );
    eventually_logs(stack, &ns, "the agent's fetch error", |stdout| {
        stdout.contains(&format!(
            "cannot fetch Wasm module {url}: module downloaded from {url} has checksum {sha}, which does not match: {wrong}"
        ))
    });
}

/// The app=web pods of a Deployment, by name, once `count` of them run.
fn deployment_pods(ns: &Namespace<'_>, count: usize) -> Vec<String> {
    eventually(&format!("{count} Running pods"), || {
        let names = kubectl_ok(ns.kubectl().args([
            "get",
            "pods",
            "-l",
            "app=web",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{end}{range .items[*]}{.metadata.name} {end}",
        ]));
        let names: Vec<String> = names.split_whitespace().map(str::to_string).collect();
        if names.len() == count {
            Ok(names)
        } else {
            Err(format!("{names:?}"))
        }
    })
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_scaled_deployment_gets_a_sidecar_per_pod_and_loses_them_on_scale_down() {
    let stack = stack();
    let ns = stack.namespace("mesh-scale");
    push_and_apply(stack, &ns, &["--selector", "app=web"]);
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata:\n      labels: {{app: web}}\n      annotations: {{sidecar.istio.io/componentLogLevel: \"wasm:info\"}}\n    spec:\n      containers:\n      - {{name: app, image: example.test/app:1, ports: [{{containerPort: {}}}]}}\n      - {{name: istio-proxy, image: auto}}\n",
        support::mesh::APP_PORT
    );
    let output =
        support::stack::run_with_stdin(ns.kubectl().args(["apply", "-f", "-"]), &deployment);
    assert!(output.status.success(), "{:?}", text(&output));
    deployment_pods(&ns, 1);
    kubectl_ok(
        ns.kubectl()
            .args(["scale", "deployment", "web", "--replicas", "3"]),
    );
    let pods = deployment_pods(&ns, 3);
    let sidecars: Vec<Sidecar> = pods
        .iter()
        .map(|pod| loaded_sidecar(stack, &ns, pod))
        .collect();
    let ips: std::collections::BTreeSet<&str> = sidecars.iter().map(|s| s.ip.as_str()).collect();
    assert_eq!(ips.len(), 3, "each pod has its own IP: {ips:?}");
    for sidecar in &sidecars {
        assert_eq!(sidecar.get("/"), 200);
    }
    let stdout = eventually_logs(stack, &ns, "a line from each of the 3 pods", |stdout| {
        pods.iter()
            .all(|pod| new_http_context_lines(stdout, pod).len() == 1)
    });
    for pod in &pods {
        let line = new_http_context_lines(&stdout, pod)[0];
        assert_istio_format(line, &ns);
    }

    // Scale down: the deleted pods' sidecars stop (agent and Envoy gone).
    kubectl_ok(
        ns.kubectl()
            .args(["scale", "deployment", "web", "--replicas", "1"]),
    );
    let kept = deployment_pods(&ns, 1);
    for sidecar in sidecars.iter().filter(|s| s.pod != kept[0]) {
        eventually(&format!("the sidecar of {} stops", sidecar.pod), || {
            sidecar.stopped()
        });
    }
    let survivor = sidecars
        .iter()
        .find(|s| s.pod == kept[0])
        .expect("the kept pod");
    assert_eq!(survivor.get("/"), 200);
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn fail_open_lets_requests_through_without_the_module_and_status_says_so() {
    let stack = stack();
    let ns = stack.namespace("mesh-failopen");
    let image = push_filter(stack, &ns);
    let wrong = "b".repeat(64);
    apply(
        stack,
        &ns,
        &image,
        &[
            "--selector",
            "app=web",
            "--no-pin",
            "--sha256",
            &wrong,
            "--fail-strategy",
            "FAIL_OPEN",
        ],
    );
    create_pod(&ns, &meshed_pod("web"));
    let sidecar = Sidecar::ready(stack, &ns.name, "web");
    sidecar.wait_config(
        PLUGIN,
        "Istio's allow-all filter in the module's place",
        |c| {
            c["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("rbac.v3.RBAC"))
                && !is_loaded_wasm(c)
        },
    );
    // The module could not be fetched, and FAIL_OPEN lets requests pass without it.
    for _ in 0..3 {
        assert_eq!(sidecar.get("/"), 200);
    }
    let stdout = status_failing(stack, &ns);
    assert!(
        stdout.contains("pod web: Envoy has Istio's allow-all filter in the plugin's place"),
        "{stdout}"
    );
    let stdout = eventually_logs(stack, &ns, "the agent's fetch error", |stdout| {
        stdout.contains("which does not match") && stdout.contains("applying allow RBAC filter")
    });
    assert!(
        !stdout.contains("NewHttpContext"),
        "no module ran: {stdout}"
    );
}
