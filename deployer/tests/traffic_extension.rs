//! TrafficExtension (istio.io/api 1.32, WasmPlugin's successor) beside WasmPlugin, against the
//! local stack's real istiod and real sidecars (local-mesh: pilot-agent + Envoy per pod): apply
//! and read back a TrafficExtension, list both kinds, `deployer migrate` under steady traffic,
//! and bad input refused by the client and by the API server (Istio's CRD).
mod support;

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::mesh::{PodSpec, Sidecar, create_pod};
use support::stack::{Namespace, Stack, deployer, stack, text};

const PLUGIN: &str = "ctx";

fn ok(output: Output, what: &str) -> String {
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{what}: {stdout}\n{stderr}");
    stdout
}

fn push_filter(stack: &Stack, ns: &Namespace<'_>) -> String {
    let image = format!("{}/{}/ctx:v1", stack.registry, ns.name);
    ok(
        deployer(stack)
            .arg("push")
            .arg(support::wasm::filter_module())
            .arg(&image)
            .arg("--plain-http")
            .output()
            .unwrap(),
        "push",
    );
    image
}

/// Applies the filter as `kind` to app=web, logging each request's path.
fn apply(stack: &Stack, ns: &Namespace<'_>, image: &str, kind: &str) -> String {
    ok(
        deployer(stack)
            .args(["apply", PLUGIN, "-n", &ns.name, "--image", image])
            .args(["--plain-http", "--kind", kind, "--selector", "app=web"])
            .args(["--set", r#"headers=[":path"]"#])
            .output()
            .unwrap(),
        "apply",
    )
}

fn web_pod(name: &str) -> PodSpec<'_> {
    PodSpec {
        name,
        labels: &[("app", "web")],
        wasm_info: true,
        sidecar: true,
    }
}

/// The ECDS names Envoy holds for the plugin (`extensions.istio.io/trafficextension/...`).
fn ecds_names(sidecar: &Sidecar) -> Vec<String> {
    let body = sidecar.admin_get("/config_dump?resource=ecds_filters");
    let dump: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["ecds_filter"]["name"].as_str().map(str::to_string))
        .filter(|n| n.contains(&format!("/{}.{PLUGIN}", sidecar.namespace)))
        .collect()
}

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

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_traffic_extension_runs_the_filter_and_logs_one_line_per_request_under_its_own_name() {
    let stack = stack();
    let ns = stack.namespace("te-apply");
    let image = push_filter(stack, &ns);
    let out = apply(stack, &ns, &image, "te");
    assert!(
        out.contains("trafficextension.extensions.istio.io/ctx created"),
        "{out}"
    );
    create_pod(&ns, &web_pod("web"));
    let sidecar = Sidecar::ready(stack, &ns.name, "web");
    sidecar.wait_loaded(PLUGIN, "");
    // Istio's name for a native TrafficExtension: `<ns>.<name>`, no translation suffix
    // (pilot/pkg/model/extensions.go), in ECDS and as Envoy's plugin name.
    assert_eq!(
        ecds_names(&sidecar),
        vec![format!(
            "extensions.istio.io/trafficextension/{}.{PLUGIN}",
            ns.name
        )]
    );
    let config = sidecar.wasm_configs(PLUGIN).remove(0);
    assert_eq!(config["config"]["name"], format!("{}.{PLUGIN}", ns.name));

    const N: usize = 7;
    for i in 0..N {
        assert_eq!(sidecar.get(&format!("/te-{i}")), 200);
    }
    let stdout = eventually("N lines from deployer logs", || {
        let output = deployer(stack)
            .args(["logs", PLUGIN, "-n", &ns.name])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        let lines = stdout.matches("NewHttpContext").count();
        if lines == N {
            Ok(stdout)
        } else {
            Err(format!("{lines} lines: {stdout}{stderr}"))
        }
    });
    for i in 0..N {
        let wanted = format!(
            "wasm log {}.{PLUGIN}: NewHttpContext :path=/te-{i}\t",
            ns.name
        );
        assert_eq!(stdout.matches(&wanted).count(), 1, "{wanted:?} in {stdout}");
    }
    let output = deployer(stack)
        .args(["status", PLUGIN, "-n", &ns.name, "--plain-http"])
        .output()
        .unwrap();
    let report = ok(output, "status");
    assert!(
        report.starts_with(&format!("TrafficExtension {}/{PLUGIN}", ns.name)),
        "{report}"
    );
    assert!(
        report.contains(&format!("envoy name:    {}.{PLUGIN} ", ns.name)),
        "{report}"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn list_shows_both_kinds_and_auto_finds_the_traffic_extension() {
    let stack = stack();
    let ns = stack.namespace("te-list");
    let image = push_filter(stack, &ns);
    apply(stack, &ns, &image, "te");
    let out = ok(
        deployer(stack)
            .args([
                "apply",
                "old",
                "-n",
                &ns.name,
                "--image",
                &image,
                "--plain-http",
            ])
            .output()
            .unwrap(),
        "apply wp",
    );
    assert!(
        out.contains("wasmplugin.extensions.istio.io/old created"),
        "{out}"
    );
    let table = ok(
        deployer(stack)
            .args(["list", "-n", &ns.name])
            .output()
            .unwrap(),
        "list",
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["KIND", "NAME", "NAMESPACE"], "{table}");
    let mut kinds: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0], r[1])).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [("TrafficExtension", "ctx"), ("WasmPlugin", "old")],
        "{table}"
    );
    let only = ok(
        deployer(stack)
            .args(["list", "-n", &ns.name, "--kind", "te", "-o", "json"])
            .output()
            .unwrap(),
        "list te",
    );
    let rows: serde_json::Value = serde_json::from_str(&only).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{only}");
    assert_eq!(rows[0]["kind"], "TrafficExtension");

    // auto: no WasmPlugin `ctx`, so re-applying `ctx` configures the TrafficExtension.
    let out = ok(
        deployer(stack)
            .args([
                "apply",
                PLUGIN,
                "-n",
                &ns.name,
                "--image",
                &image,
                "--plain-http",
            ])
            .args(["--selector", "app=web", "--priority", "3"])
            .output()
            .unwrap(),
        "apply auto",
    );
    assert!(
        out.contains("trafficextension.extensions.istio.io/ctx configured"),
        "{out}"
    );
    let stored = ok(
        stack
            .kubectl()
            .args([
                "get",
                "trafficextension",
                PLUGIN,
                "-n",
                &ns.name,
                "-o",
                "json",
            ])
            .output()
            .unwrap(),
        "kubectl get",
    );
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["spec"]["priority"], 3);
    assert!(
        stored["spec"]["wasm"]["url"]
            .as_str()
            .unwrap()
            .contains("@sha256:")
    );
    let out = ok(
        deployer(stack)
            .args(["rollback", PLUGIN, "-n", &ns.name])
            .output()
            .unwrap(),
        "rollback",
    );
    assert!(
        out.starts_with("trafficextension.extensions.istio.io/ctx rolled back to revision 1"),
        "{out}"
    );
    let out = ok(
        deployer(stack)
            .args(["delete", PLUGIN, "-n", &ns.name])
            .output()
            .unwrap(),
        "delete",
    );
    assert!(
        out.contains("trafficextension.extensions.istio.io/ctx deleted"),
        "{out}"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn bad_input_is_refused_before_anything_is_sent_and_by_istios_crd() {
    let stack = stack();
    let ns = stack.namespace("te-bad");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("filter.lua");
    std::fs::write(
        &script,
        "function envoy_on_request(handle)\n  handle:logInfo('lua saw a request')\nend\n",
    )
    .unwrap();
    let refused = |args: &[&str], wanted: &str| {
        let output = deployer(stack).args(args).output().unwrap();
        let (stdout, stderr) = text(&output);
        assert!(!output.status.success(), "{args:?}: {stdout}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    };
    let lua = script.to_str().unwrap();
    refused(
        &["render", "x", "--lua", lua, "--kind", "wasmplugin"],
        "Lua runs only in a TrafficExtension",
    );
    refused(
        &["render", "x", "--lua", lua, "--image", "r.test/x:1"],
        "cannot be used with",
    );
    refused(&["render", "x", "--kind", "te"], "has neither");
    let both = dir.path().join("both.yaml");
    std::fs::write(
        &both,
        "apiVersion: extensions.istio.io/v1alpha1\nkind: TrafficExtension\nmetadata: {name: both}\nspec:\n  wasm: {url: oci://r.test/x:1}\n  lua: {inlineCode: 'function envoy_on_request(h) end'}\n",
    )
    .unwrap();
    refused(
        &["render", "-f", both.to_str().unwrap(), "--no-pin"],
        "exactly one of wasm or lua must be set, this TrafficExtension has both",
    );
    let big = dir.path().join("big.lua");
    let padding = "-- padding to make the script large\n".repeat(70 * 1024 / 36);
    std::fs::write(&big, format!("function envoy_on_request(h) end\n{padding}")).unwrap();
    refused(
        &["render", "x", "--lua", big.to_str().unwrap()],
        "at most 65536 (64 KiB)",
    );
    let silent = dir.path().join("silent.lua");
    std::fs::write(&silent, "local x = 1\n").unwrap();
    refused(
        &["render", "x", "--lua", silent.to_str().unwrap()],
        "defines neither envoy_on_request nor envoy_on_response",
    );

    // Istio's CRD (its CEL rule) refuses both as well when the client checks are skipped.
    refused(
        &[
            "apply",
            "-f",
            both.to_str().unwrap(),
            "-n",
            &ns.name,
            "--no-pin",
            "--skip-client-validation",
        ],
        "exactly one of wasm or lua must be set",
    );
    // A good Lua script is a TrafficExtension without a wasm part.
    let rendered = ok(
        deployer(stack)
            .args(["render", "lua", "--lua", lua, "-o", "json"])
            .output()
            .unwrap(),
        "render lua",
    );
    let rendered: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(rendered["kind"], "TrafficExtension");
    assert_eq!(
        rendered["spec"],
        serde_json::json!({"lua": {"inlineCode": std::fs::read_to_string(&script).unwrap()}})
    );
    let out = ok(
        deployer(stack)
            .args([
                "apply",
                "lua",
                "-n",
                &ns.name,
                "--lua",
                lua,
                "--dry-run=server",
            ])
            .output()
            .unwrap(),
        "apply lua",
    );
    assert!(
        out.contains("trafficextension.extensions.istio.io/lua created"),
        "{out}"
    );
}

/// Requests sent every 20 ms to `sidecar`, each with its own path `/m-<i>`, until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u16>>,
}

impl Traffic {
    fn start(sidecar: &Sidecar) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let target = Sidecar::ready(stack(), &sidecar.namespace, &sidecar.pod);
        let thread = std::thread::spawn(move || {
            let mut codes = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                codes.push(target.try_get(&format!("/m-{}", codes.len())));
                std::thread::sleep(Duration::from_millis(20));
            }
            codes
        });
        Traffic { stop, thread }
    }

    fn stop(self) -> Vec<u16> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// How many times each of `sent` requests was logged, per source (translated WasmPlugin name
/// or the TrafficExtension's), read from the sidecar's log.
fn logged(sidecar: &Sidecar, sent: usize) -> Vec<(usize, usize)> {
    let log = sidecar.log();
    let native = format!("wasm log {}.{PLUGIN}: ", sidecar.namespace);
    let translated = format!(
        "wasm log {}.{PLUGIN}~istio-translated-wasmplugin: ",
        sidecar.namespace
    );
    let mut counts = vec![(0, 0); sent];
    for line in log.lines() {
        let Some(path) = line
            .split(":path=/m-")
            .nth(1)
            .and_then(|rest| rest.split('\t').next())
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        if path >= sent {
            continue;
        }
        if line.contains(&translated) {
            counts[path].0 += 1;
        } else if line.contains(&native) {
            counts[path].1 += 1;
        }
    }
    counts
}

/// What one pod saw during a migration: the status code of every request sent to it, and how
/// each was logged (by the WasmPlugin, by the TrafficExtension).
struct Seen {
    pod: String,
    codes: Vec<u16>,
    counts: Vec<(usize, usize)>,
}

/// A WasmPlugin serving pods `web-a` and `web-b`, each under steady traffic, migrated with
/// `extra` flags; returns what each pod saw and migrate's JSON report.
fn migrate_under_traffic(
    stack: &Stack,
    ns: &Namespace<'_>,
    extra: &[&str],
) -> (Vec<Seen>, serde_json::Value) {
    let image = push_filter(stack, ns);
    apply(stack, ns, &image, "wp");
    let pods = ["web-a", "web-b"];
    for pod in pods {
        create_pod(ns, &web_pod(pod));
    }
    let sidecars: Vec<Sidecar> = pods
        .iter()
        .map(|pod| {
            let sidecar = Sidecar::ready(stack, &ns.name, pod);
            sidecar.wait_loaded(PLUGIN, "");
            sidecar
        })
        .collect();
    let annotation = |kind: &str| {
        let out = ok(
            stack
                .kubectl()
                .args(["get", kind, PLUGIN, "-n", &ns.name, "-o"])
                .arg("jsonpath={.metadata.annotations.wasm-deployer\\.io/revisions}")
                .output()
                .unwrap(),
            "kubectl get annotation",
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default()
    };
    let history = annotation("wasmplugin");
    assert!(history.is_array() || history.is_object(), "{history}");
    let traffic: Vec<Traffic> = sidecars.iter().map(Traffic::start).collect();
    std::thread::sleep(Duration::from_secs(1));
    let output = deployer(stack)
        .args(["migrate", PLUGIN, "-n", &ns.name, "-o", "json"])
        .args(extra)
        .output()
        .unwrap();
    // Steady traffic after the switch as well: nothing may fail or go unlogged then either.
    std::thread::sleep(Duration::from_secs(2));
    let codes: Vec<Vec<u16>> = traffic.into_iter().map(Traffic::stop).collect();
    let report = ok(output, "migrate");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let mut seen = Vec::new();
    for (sidecar, codes) in sidecars.iter().zip(codes) {
        // The last requests' lines may still be on their way to the log file.
        let counts = eventually("every request's line in the log", || {
            let counts = logged(sidecar, codes.len());
            let last = counts.last().copied().unwrap_or_default();
            if last.0 + last.1 > 0 {
                Ok(counts)
            } else {
                Err(format!("{} requests, the last not logged yet", codes.len()))
            }
        });
        assert!(
            ecds_names(sidecar)
                .iter()
                .all(|n| !n.ends_with("~istio-translated-wasmplugin")),
            "{:?}",
            ecds_names(sidecar)
        );
        seen.push(Seen {
            pod: sidecar.pod.clone(),
            codes,
            counts,
        });
    }
    // The revision history went with it.
    assert_eq!(annotation("trafficextension"), history);
    // One kind remains: the TrafficExtension.
    let table = ok(
        deployer(stack)
            .args(["list", "-n", &ns.name])
            .output()
            .unwrap(),
        "list",
    );
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("TrafficExtension"),
        "{table}"
    );
    assert_eq!(
        report["per_pod"].as_object().map(|p| p.len()),
        Some(2),
        "every selected sidecar is watched: {report}"
    );
    (seen, report)
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn migrate_make_before_break_fails_no_request_and_logs_every_request() {
    let stack = stack();
    let ns = stack.namespace("te-migrate");
    let (seen, report) = migrate_under_traffic(stack, &ns, &[]);
    let window = report["window_seconds"]
        .as_f64()
        .expect("a measured window");
    for Seen { pod, codes, counts } in &seen {
        assert!(codes.len() > 100, "{pod}: {} requests", codes.len());
        let failed = codes.iter().filter(|c| **c != 200).count();
        assert_eq!(failed, 0, "{pod}: failed requests: {codes:?}");
        let unlogged: Vec<usize> = (0..counts.len())
            .filter(|i| counts[*i].0 + counts[*i].1 == 0)
            .collect();
        assert!(
            unlogged.is_empty(),
            "{pod}: requests no filter saw: {unlogged:?}"
        );
        let twice: Vec<usize> = (0..counts.len())
            .filter(|i| counts[*i].0 >= 1 && counts[*i].1 >= 1)
            .collect();
        eprintln!(
            "make-before-break {pod}: {} requests, 0 failed, all logged, {} logged by both (requests {:?}..{:?}, ~{:.0} ms at 20 ms pacing); migrate measured {:.3}s here",
            codes.len(),
            twice.len(),
            twice.first(),
            twice.last(),
            twice.len() as f64 * 20.0,
            report["per_pod"][pod].as_f64().unwrap_or(-1.0),
        );
        assert!(
            !twice.is_empty(),
            "{pod}: make-before-break overlaps: some request passes both"
        );
        // Before the overlap only the WasmPlugin logs, after it only the TrafficExtension.
        assert_eq!(counts[0], (1, 0), "{pod}");
        assert_eq!(counts[counts.len() - 1], (0, 1), "{pod}");
    }
    eprintln!(
        "make-before-break: both ran {window:.3}s at most; every sidecar ran the TrafficExtension {:.3}s after the apply",
        report["switch_seconds"].as_f64().unwrap_or_default()
    );
    assert!(window > 0.0 && window < 30.0, "{report}");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn migrate_break_before_make_never_logs_a_request_twice_and_reports_the_gap() {
    let stack = stack();
    let ns = stack.namespace("te-bbm");
    let (seen, report) = migrate_under_traffic(stack, &ns, &["--break-before-make"]);
    for Seen { pod, codes, counts } in &seen {
        let failed = codes.iter().filter(|c| **c != 200).count();
        assert_eq!(failed, 0, "{pod}: failed requests: {codes:?}");
        let twice = counts.iter().filter(|(wp, te)| wp + te > 1).count();
        assert_eq!(twice, 0, "{pod}: {counts:?}");
        let skipped = counts.iter().filter(|(wp, te)| wp + te == 0).count();
        eprintln!(
            "break-before-make {pod}: {} requests, 0 failed, 0 logged twice, {skipped} skipped the filter; migrate measured a gap of {:.3}s here",
            codes.len(),
            report["per_pod"][pod].as_f64().unwrap_or(-1.0),
        );
    }
    assert!(report["window_seconds"].as_f64().is_some(), "{report}");
    assert_eq!(report["mode"], "break-before-make");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn migrate_dry_run_changes_nothing_and_a_refused_step_keeps_the_wasmplugin() {
    let stack = stack();
    let ns = stack.namespace("te-mdry");
    let image = push_filter(stack, &ns);
    apply(stack, &ns, &image, "wp");
    let out = ok(
        deployer(stack)
            .args(["migrate", PLUGIN, "-n", &ns.name, "--dry-run"])
            .output()
            .unwrap(),
        "migrate --dry-run",
    );
    assert!(out.contains("1. apply the TrafficExtension"), "{out}");
    assert!(out.contains("kind: TrafficExtension"), "{out}");
    let kinds = |stack: &Stack| {
        ok(
            stack
                .kubectl()
                .args([
                    "get",
                    "wasmplugins,trafficextensions",
                    "-n",
                    &ns.name,
                    "-o",
                    "name",
                ])
                .output()
                .unwrap(),
            "kubectl get",
        )
    };
    assert_eq!(kinds(stack).trim(), "wasmplugin.extensions.istio.io/ctx");
    // A user who may only read: the server-side dry run of the apply is refused, nothing moves.
    let output = deployer(stack)
        .args([
            "migrate",
            PLUGIN,
            "-n",
            &ns.name,
            "--context",
            "wasm-stack-dev",
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("forbidden"), "{stderr}");
    assert_eq!(kinds(stack).trim(), "wasmplugin.extensions.istio.io/ctx");
    // A TrafficExtension of that name with another spec is someone else's: refused, untouched.
    let other = ok(
        deployer(stack)
            .args([
                "render", PLUGIN, "--kind", "te", "--image", &image, "--no-pin",
            ])
            .args(["-n", &ns.name])
            .output()
            .unwrap(),
        "render",
    );
    let applied =
        support::stack::run_with_stdin(stack.kubectl().args(["apply", "-f", "-"]), &other);
    assert!(applied.status.success(), "{:?}", text(&applied));
    let output = deployer(stack)
        .args(["migrate", PLUGIN, "-n", &ns.name])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("already exists with another spec"),
        "{stderr}"
    );
    let both = kinds(stack);
    assert!(
        both.contains("wasmplugin.extensions.istio.io/ctx"),
        "{both}"
    );
}

/// One GET through the sidecar; the raw response head.
fn head(sidecar: &Sidecar, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect((sidecar.ip.as_str(), 8080)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn a_lua_traffic_extension_runs_in_the_sidecar_and_logs_shows_its_script_lines() {
    let stack = stack();
    let ns = stack.namespace("te-lua");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("filter.lua");
    std::fs::write(
        &script,
        "function envoy_on_response(handle)\n  handle:headers():add(\"x-lua\", \"yes\")\n  handle:logInfo(\"lua saw a response\")\nend\n",
    )
    .unwrap();
    let out = ok(
        deployer(stack)
            .args(["apply", "hdr", "-n", &ns.name, "--selector", "app=web"])
            .arg("--lua")
            .arg(&script)
            .output()
            .unwrap(),
        "apply --lua",
    );
    assert!(
        out.contains("trafficextension.extensions.istio.io/hdr created"),
        "{out}"
    );
    // Envoy's Lua lines are at info under the `lua` logger.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\n  annotations: {sidecar.istio.io/componentLogLevel: \"wasm:info,lua:info\"}\nspec:\n  containers:\n  - {name: app, image: example.test/app:1, ports: [{containerPort: 8080}]}\n  - {name: istio-proxy, image: auto}\n";
    let created = support::stack::run_with_stdin(ns.kubectl().args(["apply", "-f", "-"]), pod);
    assert!(created.status.success(), "{:?}", text(&created));
    let sidecar = Sidecar::ready(stack, &ns.name, "web");
    // Lua is inline in the listener (no ECDS, no module to fetch): the header shows it runs.
    eventually("the Lua filter's header", || {
        let head = head(&sidecar, "/lua");
        if head.to_ascii_lowercase().contains("x-lua: yes") {
            Ok(())
        } else {
            Err(head)
        }
    });
    let stdout = eventually("the script's line from deployer logs", || {
        let output = deployer(stack)
            .args(["logs", "hdr", "-n", &ns.name])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        if stdout.contains("script log: lua saw a response") {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{stderr}"))
        }
    });
    assert!(stdout.starts_with("[pod/web/istio-proxy] "), "{stdout}");
    let report = ok(
        deployer(stack)
            .args(["status", "hdr", "-n", &ns.name])
            .output()
            .unwrap(),
        "status",
    );
    assert!(report.contains("Image (inline Lua, no image)"), "{report}");
}
