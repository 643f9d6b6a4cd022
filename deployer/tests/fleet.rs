//! `deployer logs` over many pods, and what goes wrong there: a pod whose log cannot be read,
//! a cap on concurrent log requests, a log stream the server closes under `-f`. The pods are
//! kwok pods with an `istio-proxy` container that local-mesh skips (annotation
//! `local-mesh.wasm-deployer/skip`); their logs are files served by kwok `Logs` objects, so each
//! test writes exactly the lines it expects back.
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{RwLock, mpsc};
use std::time::{Duration, Instant};

use support::stack::{Namespace, Stack, kubectl_ok, run_with_stdin, stack};
use support::tools;

const PLUGIN: &str = "fleet";

/// The follow test restarts kwok (which serves every pod's log): the other tests of this
/// binary hold a read lock so they never run while it is down.
static KWOK: RwLock<()> = RwLock::new(());

/// A namespace with the plugin and `count` pods (`p-00`, ...) whose logs are not served yet.
fn fleet<'a>(stack: &'a Stack, prefix: &str, count: usize) -> (Namespace<'a>, Vec<String>) {
    let ns = stack.namespace(prefix);
    let plugin = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{name: {PLUGIN}}}\n\
         spec:\n  url: oci://{}/fleet/x:v1\n  selector: {{matchLabels: {{app: fleet}}}}\n",
        stack.registry
    );
    let output = run_with_stdin(ns.kubectl().args(["apply", "-f", "-"]), &plugin);
    assert!(output.status.success(), "{output:?}");
    let names: Vec<String> = (0..count).map(|i| format!("p-{i:02}")).collect();
    let pods: String = names
        .iter()
        .map(|name| {
            format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: fleet}}\n  \
                 annotations:\n    local-mesh.wasm-deployer/skip: \"true\"\n    sidecar.istio.io/componentLogLevel: \"wasm:info\"\n\
                 spec:\n  containers:\n  - {{name: app, image: example.test/app:1}}\n  - {{name: istio-proxy, image: auto}}\n"
            )
        })
        .collect();
    let output = run_with_stdin(ns.kubectl().args(["apply", "-f", "-"]), &pods);
    assert!(output.status.success(), "{output:?}");
    kubectl_ok(ns.kubectl().args([
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "--timeout=120s",
        "pods",
        "-l",
        "app=fleet",
    ]));
    (ns, names)
}

/// A CRI log line about the plugin (`seq` tells lines apart) and one about something else.
fn lines(ns: &Namespace<'_>, pod: &str, from: usize, count: usize) -> String {
    let mut text = String::new();
    for seq in from..from + count {
        let at = format!(
            "{}",
            k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        );
        text.push_str(&format!(
            "{at} stdout F {at}\tinfo\tenvoy wasm context.cc:1151\twasm log {}.{PLUGIN} root: NewHttpContext {pod} seq={seq}\tthread=20\n\
             {at} stdout F {at}\twarning\tenvoy config grpc_stream.h:191\tnot about the plugin\tthread=21\n",
            ns.name
        ));
    }
    text
}

fn log_file(dir: &Path, pod: &str) -> PathBuf {
    dir.join(format!("{pod}.log"))
}

/// Serves each pod `count` lines (seq 0..count) from its own file in `dir`.
fn serve(ns: &Namespace<'_>, dir: &Path, pods: &[String], count: usize) {
    for pod in pods {
        std::fs::write(log_file(dir, pod), lines(ns, pod, 0, count)).unwrap();
        ns.serve_logs(pod, "istio-proxy", &log_file(dir, pod));
    }
}

fn deployer_logs(stack: &Stack, ns: &Namespace<'_>, extra: &[&str]) -> std::process::Output {
    let mut command = tools::deployer();
    command
        .envs(stack.env())
        .args(["logs", PLUGIN, "-n", &ns.name])
        .args(extra)
        .output()
        .expect("run deployer logs")
}

/// `[pod/NAME/istio-proxy] ... seq=N` lines: (pod, seq) pairs, in order.
fn seqs(stdout: &str) -> Vec<(String, usize)> {
    stdout
        .lines()
        .filter_map(|line| {
            let pod = line.strip_prefix("[pod/")?.split('/').next()?.to_string();
            let seq = line
                .split("seq=")
                .nth(1)?
                .split('\t')
                .next()?
                .parse()
                .ok()?;
            Some((pod, seq))
        })
        .collect()
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn logs_exits_non_zero_naming_the_pod_whose_log_cannot_be_read() {
    let _shared = KWOK.read().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let (ns, pods) = fleet(stack, "fleet-unread", 3);
    let dir = tempfile::tempdir().unwrap();
    // p-02 gets no Logs object: kwok has no log to serve for it.
    serve(&ns, dir.path(), &pods[..2], 3);
    let output = deployer_logs(stack, &ns, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail: {stdout}\n{stderr}");
    assert!(
        stderr.contains("could not read the istio-proxy log of 1 of 3 pod(s)")
            && stderr.contains(": p-02"),
        "names the pod: {stderr}"
    );
    // What could be read is printed all the same.
    assert_eq!(seqs(&stdout).len(), 6, "{stdout}");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_small_max_log_requests_still_reads_every_line_of_every_pod() {
    let _shared = KWOK.read().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let (ns, pods) = fleet(stack, "fleet-cap", 12);
    let dir = tempfile::tempdir().unwrap();
    serve(&ns, dir.path(), &pods, 5);
    let output = deployer_logs(stack, &ns, &["--max-log-requests", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut seen = seqs(&stdout);
    assert_eq!(seen.len(), 12 * 5, "{stdout}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12 * 5, "no line twice: {stdout}");
    // -f needs a stream per pod: refused up front, like kubectl.
    let output = deployer_logs(stack, &ns, &["-f", "--max-log-requests", "2"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--max-log-requests 12"),
        "{output:?}"
    );
}

/// `logs` with several `--context`: every cluster is read (here the same one twice), each
/// line's prefix naming its context; a context that cannot read the plugin fails the command
/// before any line is printed, naming it.
#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn logs_reads_every_context_and_names_it_in_each_line() {
    let _shared = KWOK.read().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let (ns, pods) = fleet(stack, "fleet-contexts", 2);
    let dir = tempfile::tempdir().unwrap();
    serve(&ns, dir.path(), &pods, 3);
    let contexts = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .flat_map(|name| ["--context".to_string(), name.to_string()])
            .collect()
    };
    let args = contexts(&["wasm-stack", "wasm-stack"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = deployer_logs(stack, &ns, &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // Every line names the context; without it, they are the lines of one context, twice.
    let unlabelled: String = stdout
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix("[wasm-stack/pod/")
                .unwrap_or_else(|| panic!("a line without the context: {line}\n{stdout}"));
            format!("[pod/{rest}\n")
        })
        .collect();
    let mut seen = seqs(&unlabelled);
    assert_eq!(seen.len(), 2 * 2 * 3, "{stdout}");
    seen.sort();
    let mut expected: Vec<(String, usize)> = pods
        .iter()
        .flat_map(|pod| (0..3).map(move |seq| (pod.clone(), seq)))
        .flat_map(|line| [line.clone(), line])
        .collect();
    expected.sort();
    assert_eq!(
        seen, expected,
        "each pod's lines once per context: {stdout}"
    );

    // A context that may not read WasmPlugins: exit 2 naming it, and not a line printed.
    let args = contexts(&["wasm-stack", &stack.dev_context]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = deployer_logs(stack, &ns, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("context {}", stack.dev_context)),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// `status` over more pods than `--sample`: the pods of every group (here a pod whose sidecar
/// logs at another level) are read, the others counted as not read, and the sample is named.
#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn status_reads_a_sample_with_every_kind_of_pod_and_says_how_many() {
    let _shared = KWOK.read().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let (ns, pods) = fleet(stack, "fleet-sample", 6);
    let dir = tempfile::tempdir().unwrap();
    serve(&ns, dir.path(), &pods, 2);
    kubectl_ok(ns.kubectl().args([
        "annotate",
        "pod",
        "p-05",
        "--overwrite",
        "sidecar.istio.io/componentLogLevel=wasm:debug",
    ]));
    let status = |sample: &str| {
        let output = tools::deployer()
            .envs(stack.env())
            .args([
                "status",
                PLUGIN,
                "-n",
                &ns.name,
                "--plain-http",
                "-o",
                "json",
            ])
            .args(["--sample", sample])
            .output()
            .expect("run deployer status");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("{err}: {output:?}"));
        let states: Vec<(String, String)> = report["pods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pod| {
                (
                    pod["name"].as_str().unwrap().to_string(),
                    pod["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (states, report["notes"].to_string())
    };
    let (states, notes) = status("2");
    let read: Vec<&str> = states
        .iter()
        .filter(|(_, state)| state == "running")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(read.len(), 2, "{states:?}");
    assert!(
        read.contains(&"p-05"),
        "the pod unlike the others is read: {states:?}"
    );
    assert_eq!(
        states
            .iter()
            .filter(|(_, state)| state == "not-read")
            .count(),
        4,
        "{states:?}"
    );
    assert!(
        notes.contains("logs of 2 of 6 running pods were read"),
        "{notes}"
    );
    let (states, notes) = status("0");
    assert!(
        states.iter().all(|(_, state)| state == "running"),
        "--sample 0 reads every pod: {states:?}"
    );
    assert!(!notes.contains("were read"), "{notes}");

    // Several --context: one report each (-o json: a list), in the order given.
    let several = |contexts: &[&str]| {
        let mut command = tools::deployer();
        command.envs(stack.env()).args([
            "status",
            PLUGIN,
            "-n",
            &ns.name,
            "--plain-http",
            "-o",
            "json",
        ]);
        for context in contexts {
            command.args(["--context", context]);
        }
        command.output().expect("run deployer status")
    };
    let output = several(&["wasm-stack", "wasm-stack"]);
    let reports: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|err| panic!("{err}: {output:?}"));
    let contexts: Vec<&str> = reports
        .as_array()
        .unwrap_or_else(|| panic!("a list: {reports}"))
        .iter()
        .map(|report| report["context"].as_str().unwrap())
        .collect();
    assert_eq!(contexts, ["wasm-stack", "wasm-stack"]);
    // A context that may not read the plugin: could not check (2), and the error names it.
    let output = several(&["wasm-stack", &stack.dev_context]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("context {}", stack.dev_context)),
        "{stderr}"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn follow_reads_on_without_repeating_a_line_after_the_server_closes_the_stream() {
    let _alone = KWOK.write().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let (ns, pods) = fleet(stack, "fleet-follow", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = log_file(dir.path(), &pods[0]);
    std::fs::write(&file, lines(&ns, &pods[0], 0, 3)).unwrap();
    ns.serve_logs(&pods[0], "istio-proxy", &file);

    let mut child = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .envs(stack.env())
        .args(["logs", PLUGIN, "-n", &ns.name, "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start deployer logs -f");
    let (sender, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut printed = Vec::new();
    let mut wait_for = |count: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while printed.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => printed.push(line),
                Err(_) => panic!("{what}: {} of {count} lines: {printed:#?}", printed.len()),
            }
        }
    };
    wait_for(3, "the first lines");

    // kwok serves the log: stopping it ends the stream (the API server closes it too), and
    // while it is down every new request fails. `scripts/stack up` starts it again.
    let pid = std::fs::read_to_string(stack.dir.join("pids/kwok.pid")).unwrap();
    let status = Command::new("kill").arg(pid.trim()).status().unwrap();
    assert!(status.success());
    let stopped = Instant::now();
    while Path::new(&format!("/proc/{}", pid.trim())).exists() {
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "kwok did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Lines written while nothing serves them must not be lost.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(lines(&ns, &pods[0], 3, 2).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let output = support::stack::run_script(&["up"]);
    assert!(output.status.success(), "restart kwok: {output:?}");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(lines(&ns, &pods[0], 5, 2).as_bytes())
        .unwrap();
    wait_for(7, "the lines written while and after kwok was down");
    std::thread::sleep(Duration::from_secs(3));
    while let Ok(line) = received.try_recv() {
        printed.push(line);
    }
    let seen: Vec<usize> = seqs(&printed.join("\n"))
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(seen, (0..7).collect::<Vec<_>>(), "{printed:#?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "-f must keep following"
    );
    let _ = child.kill();
    let _ = child.wait();
}
