//! `deployer local` against the real Envoy 1.40 and func-e installed by scripts/setup, with
//! the real filter module: what the lab answers, what it logs, how it fails, and that it
//! leaves no process behind.
mod support;

use std::time::Duration;

use support::envoy::{Lab, http_get, tcp_roundtrip, write_file};
use support::tools;

/// Log lines appear shortly after the response; this bounds the wait for them.
const LOG_WAIT: Duration = Duration::from_secs(10);
/// After the expected count is reached, how long to watch for extra lines.
const SETTLE: Duration = Duration::from_millis(500);

fn module() -> String {
    support::wasm::filter_module().display().to_string()
}

fn assert_nothing_left(lab: &Lab) {
    let left = lab.leftovers();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Stops the lab with `signal`: the deployer exits successfully and leaves no process behind.
fn stop_cleanly(lab: &mut Lab, signal: i32) {
    let status = lab.signal(signal);
    assert!(
        status.success(),
        "deployer after signal {signal}: {status}\n{}",
        lab.stderr.text()
    );
    assert_nothing_left(lab);
}

/// Exactly `count` lines containing `needle` are logged: they all arrive, and no more follow.
fn assert_logged_exactly(lab: &Lab, needle: &str, count: usize) {
    assert_eq!(
        lab.wait_for(needle, count, LOG_WAIT),
        count,
        "{}",
        lab.stdout.text()
    );
    std::thread::sleep(SETTLE);
    assert_eq!(lab.stdout.count(needle), count, "{}", lab.stdout.text());
}

/// `deployer local ARGS` must fail at once (no lab); returns its stderr.
fn local_failing(args: &[&str]) -> String {
    let output = tools::deployer().arg("local").args(args).output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn each_http_request_is_answered_and_logs_one_new_http_context() {
    let module = module();
    let mut lab = Lab::start(&["--wasm", &module]);
    assert!(
        lab.started.len() >= 2,
        "expected func-e and Envoy below the deployer, saw {:?}",
        lab.started
    );
    assert!(
        lab.stdout
            .text()
            .contains(&format!("curl -s http://127.0.0.1:{}/", lab.port)),
        "{}",
        lab.stdout.text()
    );

    const REQUESTS: usize = 5;
    for _ in 0..REQUESTS {
        let (status, body) = http_get(lab.port, "/");
        assert_eq!((status, body.as_str()), (200, "hello world\n"));
    }
    assert_logged_exactly(&lab, "NewHttpContext", REQUESTS);
    assert_eq!(lab.stdout.count("NewTcpContext"), 0);
    // Only the module's lines are streamed by default, not Envoy's own start-up chatter.
    assert_eq!(lab.stdout.count("[main]"), 0, "{}", lab.stdout.text());

    stop_cleanly(&mut lab, libc::SIGINT);
    assert!(
        std::fs::read_dir(lab.tmp.path()).unwrap().next().is_none(),
        "work dir not removed"
    );
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn each_tcp_connection_logs_one_new_tcp_context() {
    let module = module();
    let mut lab = Lab::start(&["--wasm", &module, "--tcp"]);

    const CONNECTIONS: usize = 3;
    for n in 0..CONNECTIONS {
        let message = format!("ping {n}\n");
        assert_eq!(
            tcp_roundtrip(lab.port, message.as_bytes()),
            message.as_bytes()
        );
    }
    assert_logged_exactly(&lab, "NewTcpContext", CONNECTIONS);
    assert_eq!(lab.stdout.count("NewHttpContext"), 0);

    stop_cleanly(&mut lab, libc::SIGINT);
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn sigterm_stops_the_lab_cleanly_too() {
    let module = module();
    let mut lab = Lab::start(&["--wasm", &module]);
    stop_cleanly(&mut lab, libc::SIGTERM);
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn a_yaml_plugin_configuration_reaches_the_filter_as_json() {
    let module = module();
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "plugin.yaml",
        "prefix: \"lab-yaml \"\nheaders: [\":path\"]\n",
    );
    let mut lab = Lab::start(&["--wasm", &module, "--config", config.to_str().unwrap()]);
    assert_eq!(http_get(lab.port, "/from-yaml").0, 200);
    assert_eq!(
        lab.wait_for("lab-yaml", 1, LOG_WAIT),
        1,
        "{}",
        lab.stdout.text()
    );
    assert!(
        lab.stdout.text().contains("/from-yaml"),
        "{}",
        lab.stdout.text()
    );
    stop_cleanly(&mut lab, libc::SIGINT);
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn envoy_refusing_the_plugin_configuration_fails_with_the_filters_message() {
    let module = module();
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "plugin.json", r#"{"colour": "red"}"#);
    let mut lab = Lab::spawn(
        &["--wasm", &module, "--config", config.to_str().unwrap()],
        &[],
    );
    let status = lab.finish(Duration::from_secs(60));
    assert!(!status.success(), "deployer accepted a bad configuration");
    let stderr = lab.stderr.text();
    assert!(stderr.contains("Envoy refused to start"), "{stderr}");
    // The filter's own line (logged through proxy_log), naming the offending field.
    assert!(
        stderr.lines().any(|line| line.contains("wasm log")
            && line.contains("unknown field")
            && line.contains("colour")),
        "{stderr}"
    );
    assert_eq!(lab.stdout.count("lab ready"), 0);
    assert_nothing_left(&lab);
}

#[test]
fn a_port_in_use_is_named_before_anything_starts() {
    let module = module();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let stderr = local_failing(&["--wasm", &module, "--port", &port]);
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("--port"),
        "{stderr}"
    );
    assert!(!stderr.contains("starting"), "started anyway: {stderr}");
}

#[test]
fn a_missing_module_is_named() {
    let stderr = local_failing(&[
        "--wasm",
        "/nonexistent/filter.wasm",
        "--port",
        &tools::free_port().to_string(),
    ]);
    assert!(
        stderr.contains("/nonexistent/filter.wasm") && stderr.contains("--wasm"),
        "{stderr}"
    );
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn a_file_that_is_not_wasm_is_refused_with_envoys_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = write_file(dir.path(), "notes.wasm", "not a module\n");
    let mut lab = Lab::spawn(&["--wasm", text.to_str().unwrap()], &[]);
    assert!(!lab.finish(Duration::from_secs(60)).success());
    let stderr = lab.stderr.text();
    assert!(
        stderr.contains("Envoy refused to start") && stderr.contains("Wasm"),
        "{stderr}"
    );
    assert_nothing_left(&lab);
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn print_config_shows_a_bootstrap_envoy_accepts() {
    let module = module();
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_file(dir.path(), "plugin.yaml", "prefix: printed\n");
    for (mode, wasm_filter) in [
        (None, "envoy.filters.http.wasm"),
        (Some("--tcp"), "envoy.filters.network.wasm"),
    ] {
        let mut args = vec![
            "local",
            "--print-config",
            "--port",
            "18555",
            "--wasm",
            &module,
        ];
        args.extend(["--config", plugin.to_str().unwrap()]);
        args.extend(mode);
        let output = tools::deployer().args(&args).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let yaml = String::from_utf8(output.stdout).unwrap();
        let config: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let listener = &config["static_resources"]["listeners"][0];
        assert_eq!(
            listener["address"]["socket_address"]["port_value"].as_u64(),
            Some(18555),
            "{yaml}"
        );
        assert!(yaml.contains(wasm_filter), "{yaml}");
        assert!(yaml.contains(&module), "{yaml}");
        assert!(yaml.contains("envoy.wasm.runtime.v8"), "{yaml}");
        assert!(
            yaml.contains(r#"{"prefix":"printed"}"#),
            "plugin config as JSON: {yaml}"
        );
        assert!(config["admin"].is_mapping(), "{yaml}");

        // The printed bootstrap is what the lab runs: Envoy itself must accept it.
        let path = write_file(dir.path(), "envoy.yaml", &yaml);
        let validate = std::process::Command::new(tools::require("envoy"))
            .args(["--mode", "validate", "--disable-hot-restart", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            validate.status.success(),
            "envoy --mode validate:\n{}",
            String::from_utf8_lossy(&validate.stderr)
        );
    }
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn without_func_e_the_lab_runs_envoy_directly_and_says_so() {
    let module = module();
    let envoy = tools::require("envoy");
    let empty_cache = tempfile::tempdir().unwrap();
    let mut lab = Lab::start_with(
        &["--wasm", &module, "--envoy", envoy.to_str().unwrap()],
        &[
            ("WASM_DEPLOYER_CACHE", empty_cache.path().to_str().unwrap()),
            ("PATH", "/usr/bin:/bin"),
        ],
    );
    assert!(
        lab.stderr.text().contains("func-e not found"),
        "{}",
        lab.stderr.text()
    );
    assert_eq!(http_get(lab.port, "/").0, 200);
    assert_eq!(lab.wait_for("NewHttpContext", 1, LOG_WAIT), 1);
    stop_cleanly(&mut lab, libc::SIGINT);
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn all_logs_shows_envoys_own_lines() {
    let module = module();
    let mut lab = Lab::start(&["--wasm", &module, "--all-logs"]);
    assert!(
        lab.stderr
            .wait_for("starting main dispatch loop", 1, LOG_WAIT)
            == 1,
        "{}",
        lab.stderr.text()
    );
    stop_cleanly(&mut lab, libc::SIGINT);
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn by_default_the_lab_builds_and_loads_the_bundled_filter() {
    // Built once by the shared fixture, so the lab's own build is a warm no-op.
    let built = support::wasm::filter_module();
    let mut lab = Lab::start(&[]);
    assert!(
        lab.stderr.text().contains(&built.display().to_string()),
        "{}",
        lab.stderr.text()
    );
    assert_eq!(http_get(lab.port, "/").0, 200);
    assert_eq!(
        lab.wait_for("NewHttpContext", 1, LOG_WAIT),
        1,
        "{}",
        lab.stdout.text()
    );
    stop_cleanly(&mut lab, libc::SIGINT);
}

#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn envoy_not_ready_in_time_is_stopped_and_reported() {
    let module = module();
    let mut lab = Lab::spawn(&["--wasm", &module, "--ready-timeout", "1ms"], &[]);
    assert!(!lab.finish(Duration::from_secs(60)).success());
    let stderr = lab.stderr.text();
    assert!(
        stderr.contains("did not become ready within 1ms"),
        "{stderr}"
    );
    assert_nothing_left(&lab);
}
