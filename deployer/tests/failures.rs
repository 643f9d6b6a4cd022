//! The failure paths users hit (issue 11): credentials never printed, registries that never
//! answer, modules Envoy or Istio would refuse, YAML that reads back differently, all through
//! the real `deployer` binary (and the real Envoy, helm and stack where they are the judge).
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use support::tools;

const CANARY: &str = "c4nary-S3cret";
const NUMERIC_CANARY: &str = "918273645501";

/// A registry address that accepts connections and never says a word (`answer_v2`: except
/// `200 {}` to `GET /v2/`, so the client gets past its probe and hangs on the next request).
/// Counts accepted connections.
struct SilentRegistry {
    address: String,
    accepted: Arc<AtomicUsize>,
}

impl SilentRegistry {
    fn start(answer_v2: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("local addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || hold(stream, answer_v2));
            }
        });
        Self { address, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads requests and answers none (or only `/v2/`), keeping the connection open until the
/// client gives up.
fn hold(stream: TcpStream, answer_v2: bool) {
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if answer_v2 && line.starts_with("GET /v2/ ") {
            // Skip the rest of the head, then answer.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let _ = writer.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            );
        }
    }
}

struct Workspace {
    dir: tempfile::TempDir,
}

struct Run {
    ok: bool,
    output: String,
    elapsed: Duration,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("docker")).expect("docker dir");
        std::fs::create_dir_all(dir.path().join("bin")).expect("bin dir");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn docker_config(&self, text: &str) {
        std::fs::write(self.path("docker/config.json"), text).expect("write docker config");
    }

    /// A `docker-credential-<name>` program on the deployer's PATH.
    fn helper(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path("bin").join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod helper");
    }

    /// A small module Envoy loads (the `inspect` checks pass), for push.
    fn module(&self) -> PathBuf {
        let path = self.path("plugin.wasm");
        std::fs::write(
            &path,
            wat::parse_str(loadable_module(&[], "0_2_1")).unwrap(),
        )
        .expect("write module");
        path
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
            .args(args)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("PATH", path)
            .env("CI", "1")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("run deployer");
        Run {
            ok: output.status.success(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            elapsed: started.elapsed(),
        }
    }
}

fn assert_no_secret(run: &Run, what: &str) {
    let base64 = base64::engine::general_purpose::STANDARD;
    for secret in [
        CANARY.to_string(),
        NUMERIC_CANARY.to_string(),
        base64.encode(format!("user:{CANARY}")),
        base64.encode(format!("user:{NUMERIC_CANARY}")),
    ] {
        assert!(
            !run.output.contains(&secret),
            "{what}: the output holds the secret {secret}:\n{}",
            run.output
        );
    }
}

/// Docker configs users really end up with that are wrong in a way that used to print the
/// credential: a bare-string auths entry, numeric passwords and tokens, a syntax error next
/// to the secret.
fn hostile_docker_configs(registry: &str) -> Vec<(&'static str, String)> {
    let base64 = base64::engine::general_purpose::STANDARD;
    vec![
        (
            "bare string entry",
            format!(
                r#"{{"auths": {{"{registry}": "{}"}}}}"#,
                base64.encode(format!("user:{CANARY}"))
            ),
        ),
        (
            "numeric password",
            format!(
                r#"{{"auths": {{"{registry}": {{"username": "user", "password": {NUMERIC_CANARY}}}}}}}"#
            ),
        ),
        (
            "numeric identity token",
            format!(r#"{{"auths": {{"{registry}": {{"identitytoken": {NUMERIC_CANARY}}}}}}}"#),
        ),
        (
            "array auth",
            format!(r#"{{"auths": {{"{registry}": {{"auth": ["{CANARY}"]}}}}}}"#),
        ),
        (
            "unquoted password",
            format!(r#"{{"auths": {{"{registry}": {{"password": {CANARY}}}}}}}"#),
        ),
        (
            "truncated",
            format!(
                r#"{{"auths": {{"{registry}": {{"auth": "{}"#,
                base64.encode(format!("user:{CANARY}"))
            ),
        ),
    ]
}

/// Every command that reads the docker config, with each hostile config: it fails, names the
/// file, and never prints the credential in any form.
#[test]
fn credentials_never_reach_the_output() {
    let registry = SilentRegistry::start(false);
    let workspace = Workspace::new();
    let module = workspace.module();
    let image = format!("{}/filters/logger:v1", registry.address);
    let module_arg = module.to_str().unwrap().to_string();
    let oci_image = format!("oci://{image}");
    let quick = ["--plain-http", "--timeout", "2s", "--attempts", "1"];
    let commands: Vec<Vec<&str>> = vec![
        vec!["pull", &oci_image, "-O", "out.wasm"],
        vec!["push", &module_arg, &image],
        vec!["inspect", &oci_image],
        vec!["render", "ctx", "--image", &image],
        vec!["apply", "ctx", "--image", &image, "--dry-run=client"],
        vec![
            "apply",
            "ctx",
            "--image",
            &image,
            "--no-pin",
            "--pull-secret-from-docker-config",
            "--dry-run=client",
        ],
    ];
    let mut runs = 0;
    for (case, config) in hostile_docker_configs(&registry.address) {
        workspace.docker_config(&config);
        for command in &commands {
            let mut args = command.clone();
            args.extend_from_slice(&quick);
            let run = workspace.run(&args);
            let what = format!("{case}: deployer {}", command.join(" "));
            assert!(!run.ok, "{what} succeeded:\n{}", run.output);
            assert!(
                run.output.contains("config.json"),
                "{what}:\n{}",
                run.output
            );
            assert_no_secret(&run, &what);
            runs += 1;
        }
    }
    assert_eq!(runs, 36);
    assert_eq!(
        registry.accepted(),
        0,
        "a broken docker config is refused before any registry request"
    );
}

/// A credential helper that fails saying the secret (helpers echo their store's answers).
#[test]
fn credential_helper_output_is_not_echoed() {
    let registry = SilentRegistry::start(false);
    let workspace = Workspace::new();
    workspace.helper(
        "leaky",
        &format!("echo \"keyring said: password={CANARY}\" >&2; echo '{CANARY}'; exit 1"),
    );
    workspace.docker_config(&format!(
        r#"{{"credHelpers": {{"{}": "leaky"}}}}"#,
        registry.address
    ));
    let image = format!("oci://{}/f:v1", registry.address);
    let run = workspace.run(&["pull", &image, "-O", "x.wasm", "--plain-http"]);
    assert!(!run.ok);
    assert!(
        run.output.contains("docker-credential-leaky") && run.output.contains("not shown"),
        "{}",
        run.output
    );
    assert_no_secret(&run, "failing helper");
}

/// `status` reads the plugin from the cluster, then the image with the docker config.
#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn status_never_prints_credentials() {
    let stack = support::stack::stack();
    let namespace = stack.namespace("failures-status");
    let registry = SilentRegistry::start(false);
    let manifest = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: ctx\nspec:\n  url: oci://{}/f:v1\n",
        registry.address
    );
    let output =
        support::stack::run_with_stdin(namespace.kubectl().args(["apply", "-f", "-"]), &manifest);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let workspace = Workspace::new();
    let env: Vec<(&str, String)> = stack.env().into_iter().collect();
    for (case, config) in hostile_docker_configs(&registry.address) {
        workspace.docker_config(&config);
        let run = workspace.run_with(
            &[
                "status",
                "ctx",
                "-n",
                &namespace.name,
                "--plain-http",
                "--timeout",
                "2s",
                "--attempts",
                "1",
            ],
            &env,
        );
        assert!(!run.ok, "{case}: {}", run.output);
        assert!(
            run.output.contains("config.json"),
            "{case}:\n{}",
            run.output
        );
        assert_no_secret(&run, &format!("status, {case}"));
    }
}

/// Bounded by `attempts x timeout + backoff` (+ process start), wherever the registry stops
/// answering: at the first request or after it.
#[test]
fn a_registry_that_never_answers_fails_in_bounded_time() {
    let workspace = Workspace::new();
    let module = workspace.module();
    let module_arg = module.to_str().unwrap().to_string();
    for answer_v2 in [false, true] {
        let registry = SilentRegistry::start(answer_v2);
        let image = format!("{}/filters/logger:v1", registry.address);
        let oci_image = format!("oci://{image}");
        let commands: Vec<Vec<&str>> = vec![
            vec!["pull", &oci_image, "-O", "out.wasm"],
            vec!["push", &module_arg, &image],
            vec!["inspect", &oci_image],
            vec!["render", "ctx", "--image", &image],
            vec!["apply", "ctx", "--image", &image, "--dry-run=client"],
        ];
        // The commands run at once: each waits ~2 s on the silent registry, and one after the
        // other they made this the slowest test of the default tier (22 s).
        let runs: Vec<(Vec<&str>, Run)> = std::thread::scope(|scope| {
            let running: Vec<_> = commands
                .into_iter()
                .map(|command| {
                    let workspace = &workspace;
                    scope.spawn(move || {
                        let mut args = command.clone();
                        args.extend_from_slice(&[
                            "--plain-http",
                            "--timeout",
                            "1s",
                            "--attempts",
                            "2",
                            "--retry-backoff",
                            "100ms",
                        ]);
                        let run = workspace.run(&args);
                        (command, run)
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|thread| thread.join().expect("a command's thread"))
                .collect()
        });
        for (command, run) in runs {
            let what = format!("deployer {} (answers /v2/: {answer_v2})", command.join(" "));
            assert!(!run.ok, "{what} succeeded");
            // 2 x 1 s + 0.1 s backoff, plus start-up and a busy machine's slack.
            assert!(
                run.elapsed < Duration::from_secs(6),
                "{what} took {:?}:\n{}",
                run.elapsed,
                run.output
            );
            assert!(
                run.output.contains(&format!(
                    "registry {} did not answer within 1 s",
                    registry.address
                )),
                "{what}:\n{}",
                run.output
            );
            assert!(
                run.output.contains("2 attempt(s)"),
                "{what}:\n{}",
                run.output
            );
        }
        assert!(registry.accepted() > 0);
    }
}

#[test]
fn the_default_timeout_is_documented() {
    let run = Workspace::new().run(&["pull", "--help"]);
    assert!(run.ok);
    assert!(
        run.output.contains("--timeout <DURATION>"),
        "{}",
        run.output
    );
    assert!(run.output.contains("[default: 30s]"), "{}", run.output);
    let run = Workspace::new().run(&[
        "pull",
        "oci://127.0.0.1:1/x:v1",
        "-O",
        "x.wasm",
        "--timeout",
        "0",
    ]);
    assert!(!run.ok);
    assert!(
        run.output.contains("must be greater than 0"),
        "{}",
        run.output
    );
}

/// Over Istio's 256 MiB: refused by size, without reading the file or opening a connection.
#[test]
fn push_refuses_modules_over_istios_limit_without_a_request() {
    let registry = SilentRegistry::start(false);
    let workspace = Workspace::new();
    let path = workspace.path("huge.wasm");
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(b"\0asm\x01\0\0\0").expect("write header");
    // Sparse: costs no disk.
    file.set_len(256 * 1024 * 1024 + 1).expect("grow");
    drop(file);
    let image = format!("{}/f:v1", registry.address);
    let run = workspace.run(&["push", path.to_str().unwrap(), &image, "--plain-http"]);
    assert!(!run.ok);
    assert!(
        run.output
            .contains("268435457 bytes, over Istio's 256 MiB limit"),
        "{}",
        run.output
    );
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(registry.accepted(), 0, "no registry request");
}

/// Strings YAML 1.1 (kubectl, helm, PyYAML) or 1.2 readers take for something else when
/// written plain, as `--set` values (apply sends them as strings) and as keys.
const TRICKY: &[&str] = &[
    "yes",
    "Yes",
    "no",
    "on",
    "OFF",
    "y",
    "N",
    "true",
    "Null",
    "~",
    "",
    "1_000",
    "0x1F",
    "0o17",
    "017",
    "1:20",
    "1e3",
    "1.",
    ".inf",
    "-.Inf",
    ".NaN",
    "2001-12-14",
    "<<",
    "=",
    "- x",
    "a: b",
    "a #c",
    "#c",
    "[a]",
    "{a}",
    "*ref",
    "&a",
    "!t",
    "%d",
    "@at",
    "|",
    ">",
    "'q'",
    "trailing ",
    " lead",
    "x\u{2028}y",
    "nel\u{85}",
];

fn render(workspace: &Workspace, extra: &[&str], format: &str) -> String {
    let mut args = vec![
        "render",
        "ctx",
        "--image",
        "oci://127.0.0.1:5000/f:v1",
        "--no-pin",
        "-o",
        format,
    ];
    args.extend_from_slice(extra);
    let run = workspace.run(&args);
    assert!(run.ok, "{}", run.output);
    run.output
}

fn set_args() -> Vec<String> {
    let mut sets = Vec::new();
    // `--set=...`: a value starting with `-` is not taken for a flag.
    for (i, text) in TRICKY.iter().enumerate() {
        sets.push(format!("--set=v{i}={text}"));
        // Keys: no dots (a dot is a path in --set).
        if !text.is_empty() && !text.contains(['.', '=']) {
            sets.push(format!("--set={text}=k{i}"));
        }
    }
    sets.push("--set=big=1e300".into());
    sets
}

/// PyYAML is a YAML 1.1 reader (`yes` is a boolean, `1_000` an int, `1:20` is 80).
fn pyyaml_to_json(yaml: &str) -> serde_json::Value {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the test reads the YAML with PyYAML, a YAML 1.1 reader: apt-get install python3-yaml)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "PyYAML (apt-get install python3-yaml) could not read:\n{yaml}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json from python")
}

#[test]
#[ignore = "tier tools: runs python3 with PyYAML (apt-get install python3-yaml); scripts/test runs it"]
fn rendered_yaml_reads_back_as_apply_sends_it() {
    let workspace = Workspace::new();
    let sets = set_args();
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    for extra in [vec![], vec!["--helm-values"]] {
        let mut args = sets.clone();
        args.extend_from_slice(&extra);
        let sent: serde_json::Value =
            serde_json::from_str(&render(&workspace, &args, "json")).expect("render -o json");
        let yaml = render(&workspace, &args, "yaml");
        let yaml_1_2: serde_json::Value = serde_yaml::from_str(&yaml).expect("serde_yaml reads it");
        assert_eq!(yaml_1_2, sent, "YAML 1.2 reader:\n{yaml}");
        assert_eq!(pyyaml_to_json(&yaml), sent, "YAML 1.1 reader:\n{yaml}");
        let config = if extra.is_empty() {
            &sent["spec"]["pluginConfig"]
        } else {
            &sent["pluginConfig"]
        };
        assert_eq!(config["v0"], "yes");
        assert_eq!(config["yes"], "k0");
        assert_eq!(config["v11"], "1_000");
    }
}

/// Numbers compared by value: Go prints the float 1000.0 as `1000`.
fn numbers_as_f64(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Number(n) => serde_json::json!(n.as_f64()),
        serde_json::Value::Array(items) => items.iter().map(numbers_as_f64).collect(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}

/// helm reads values files with sigs.k8s.io/yaml (YAML 1.1 booleans): a probe chart that
/// prints `.Values` as JSON shows what helm understood, which must be what `render -o json`
/// shows. (A probe, not charts/wasm-plugin: that chart's toYaml output is a second writer.)
#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn helm_reads_rendered_values_as_sent() {
    let workspace = Workspace::new();
    let sets = set_args();
    let mut args: Vec<&str> = sets.iter().map(String::as_str).collect();
    args.push("--helm-values");
    let sent: serde_json::Value =
        serde_json::from_str(&render(&workspace, &args, "json")).expect("json");
    let values = workspace.path("values.yaml");
    std::fs::write(&values, render(&workspace, &args, "yaml")).expect("write values");
    let chart = workspace.path("probe");
    std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    )
    .expect("Chart.yaml");
    std::fs::write(
        chart.join("templates/values.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  values: {{ .Values | toJson | quote }}\n",
    )
    .expect("template");
    let output = support::helm::helm()
        .args(["template", "probe"])
        .arg(&chart)
        .arg("-f")
        .arg(&values)
        .output()
        .expect("run helm");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let documents = support::helm::documents(&String::from_utf8_lossy(&output.stdout));
    let config_map = support::helm::only(&documents, "ConfigMap");
    let read: serde_json::Value =
        serde_json::from_str(config_map["data"]["values"].as_str().expect("values"))
            .expect("helm's toJson");
    assert_eq!(numbers_as_f64(&read), numbers_as_f64(&sent));
}

/// A module with the ABI marker `abi` (`0_2_1`), importing `imports` (WAT import fields).
fn loadable_module(imports: &[String], abi: &str) -> String {
    // ABI 0.1.0 passed no end_of_stream flag to the header callbacks.
    let header_params = if abi == "0_1_0" {
        "i32 i32"
    } else {
        "i32 i32 i32"
    };
    format!(
        r#"(module
  {}
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_{abi}"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param {header_params}) (result i32) i32.const 0)
)"#,
        imports.join("\n  ")
    )
}

fn wat_type(signature: &str) -> String {
    // "(i32, i64) -> (i32)" -> "(param i32 i64) (result i32)"
    let (params, result) = signature.split_once(" -> ").expect("signature");
    let list = |part: &str| part.trim_matches(['(', ')']).replace(',', "");
    let mut wat = String::new();
    if !list(params).is_empty() {
        wat += &format!("(param {})", list(params));
    }
    if !list(result).is_empty() {
        wat += &format!(" (result {})", list(result));
    }
    wat
}

/// What the real Envoy 1.40 says about a module: `Ok` once it serves with the module loaded,
/// `Err(log)` when it refuses it.
fn envoy_loads(dir: &Path, name: &str, wasm: &[u8]) -> Result<(), String> {
    let module = dir.join(format!("{name}.wasm"));
    std::fs::write(&module, wasm).expect("write module");
    let config = format!(
        r#"static_resources:
  listeners:
  - name: probe
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: probe
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 200}}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: probe
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: {}}}}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#,
        module.display()
    );
    let mut child = Command::new(tools::require("envoy"))
        .args([
            "--config-yaml",
            &config,
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "-l",
            "info",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start envoy");
    let mut stderr = child.stderr.take().expect("piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buffer) {
            if n == 0 {
                break;
            }
            log.push_str(&String::from_utf8_lossy(&buffer[..n]));
            let _ = sender.send(log.clone());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = String::new();
    let verdict = loop {
        if let Ok(latest) = receiver.recv_timeout(Duration::from_millis(50)) {
            log = latest;
        }
        if log.contains("starting main dispatch loop") {
            break Ok(());
        }
        if let Ok(Some(_)) = child.try_wait() {
            while let Ok(latest) = receiver.recv_timeout(Duration::from_millis(200)) {
                log = latest;
            }
            break Err(log.clone());
        }
        if Instant::now() > deadline {
            break Err(format!("envoy neither started nor exited in 60 s:\n{log}"));
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

fn inspect_verdict(dir: &Path, name: &str) -> (bool, String) {
    let output = tools::deployer()
        .args(["inspect"])
        .arg(dir.join(format!("{name}.wasm")))
        .output()
        .expect("run inspect");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// `inspect`'s import verdicts agree with the real Envoy: a module importing every host
/// function of the table (with the table's types) loads, and mutated ones that inspect
/// refuses, Envoy refuses with the reason inspect gives.
#[test]
#[ignore = "tier envoy: runs Envoy (scripts/setup envoy func-e); scripts/test runs it"]
fn import_verdicts_match_real_envoy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = deployer::module::host::functions();
    let all_imports = |abi: &str| -> Vec<String> {
        table
            .iter()
            .filter(|f| match f.abi {
                deployer::module::host::Abi::Any => true,
                deployer::module::host::Abi::Only(versions) => {
                    versions.contains(&abi.replace('_', ".").as_str())
                }
            })
            .map(|f| {
                format!(
                    r#"(import "{}" "{}" (func {}))"#,
                    f.module,
                    f.name,
                    wat_type(&f.signature())
                )
            })
            .collect()
    };
    let mut cases: Vec<(String, String, Option<&str>)> = Vec::new();
    for abi in ["0_1_0", "0_2_0", "0_2_1"] {
        cases.push((
            format!("every-host-function-{abi}"),
            loadable_module(&all_imports(abi), abi),
            None,
        ));
    }
    let one = |import: &str, abi: &str| loadable_module(&[import.to_string()], abi);
    let mutants = [
        (
            "unknown-name",
            one(
                r#"(import "env" "proxy_loX" (func (param i32 i32 i32) (result i32)))"#,
                "0_2_1",
            ),
            "missing import",
        ),
        (
            "proxy-log-two-params",
            one(
                r#"(import "env" "proxy_log" (func (param i32 i32) (result i32)))"#,
                "0_2_1",
            ),
            "mismatch",
        ),
        (
            "fd-write-returns-i64",
            one(
                r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i64)))"#,
                "0_2_1",
            ),
            "mismatch",
        ),
        (
            // The WASI specification's 7 parameters; cpp-host declares 6.
            "path-link-per-wasi-spec",
            one(
                r#"(import "wasi_snapshot_preview1" "path_link" (func (param i32 i32 i32 i32 i32 i32 i32) (result i32)))"#,
                "0_2_1",
            ),
            "mismatch",
        ),
        (
            "log-level-in-abi-0-2-0",
            one(
                r#"(import "env" "proxy_get_log_level" (func (param i32) (result i32)))"#,
                "0_2_0",
            ),
            "missing import",
        ),
    ];
    for (name, text, envoy_says) in mutants {
        cases.push((name.to_string(), text, Some(envoy_says)));
    }
    for (name, text, refusal) in &cases {
        let wasm = wat::parse_str(text).unwrap_or_else(|err| panic!("{name}: {err}"));
        let envoy = envoy_loads(dir.path(), name, &wasm);
        let (inspect_ok, report) = inspect_verdict(dir.path(), name);
        match refusal {
            None => {
                assert!(
                    envoy.is_ok(),
                    "Envoy refused {name}:\n{}",
                    envoy.unwrap_err()
                );
                assert!(inspect_ok, "inspect refused {name}:\n{report}");
            }
            Some(envoy_says) => {
                let log = envoy.err().unwrap_or_else(|| panic!("Envoy loaded {name}"));
                assert!(
                    log.contains(&format!("due to a {envoy_says}"))
                        || log.contains(&format!("due to an import type {envoy_says}")),
                    "{name}: Envoy said:\n{log}"
                );
                assert!(!inspect_ok, "inspect approved {name}:\n{report}");
                assert!(report.contains(envoy_says), "{name}:\n{report}");
            }
        }
    }
}

/// `deployer apply` against the stack's API server, in `namespace`.
fn apply_on_stack(
    stack: &support::stack::Stack,
    workspace: &Workspace,
    namespace: &str,
    extra: &[&str],
) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command
        .args(["apply", "ctx", "--no-pin", "-n", namespace])
        .args(extra)
        .current_dir(workspace.dir.path())
        .env("DOCKER_CONFIG", workspace.path("docker"))
        .envs(stack.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().expect("start deployer apply")
}

fn finished_ok(child: std::process::Child) -> String {
    let output = child.wait_with_output().expect("wait for deployer");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

fn revisions(namespace: &support::stack::Namespace<'_>) -> Vec<serde_json::Value> {
    let output = namespace
        .kubectl()
        .args(["get", "wasmplugin", "ctx", "-o", "json"])
        .output()
        .expect("kubectl get");
    let object: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let annotation = object["metadata"]["annotations"]["wasm-deployer.io/revisions"]
        .as_str()
        .expect("history annotation");
    serde_json::from_str(annotation).expect("history is JSON")
}

/// Applies racing on one plugin each get their revision into the history (the write carries
/// the resourceVersion it read, and is retried when someone wrote in between).
#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn concurrent_applies_keep_every_revision() {
    let stack = support::stack::stack();
    let namespace = stack.namespace("failures-race");
    let workspace = Workspace::new();
    let image = ["--image", "127.0.0.1:5000/f:v1"];
    let first = apply_on_stack(
        stack,
        &workspace,
        &namespace.name,
        &[&image[..], &["--set=i=0"]].concat(),
    );
    finished_ok(first);
    const WRITERS: usize = 6;
    let children: Vec<_> = (1..=WRITERS)
        .map(|i| {
            let set = format!("--set=i={i}");
            apply_on_stack(
                stack,
                &workspace,
                &namespace.name,
                &[image[0], image[1], &set],
            )
        })
        .collect();
    for child in children {
        finished_ok(child);
    }
    let history = revisions(&namespace);
    let numbers: Vec<u64> = history
        .iter()
        .map(|r| r["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=WRITERS as u64 + 1).collect::<Vec<_>>());
    let mut values: Vec<u64> = history
        .iter()
        .map(|r| r["spec"]["pluginConfig"]["i"].as_u64().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (0..=WRITERS as u64).collect::<Vec<_>>(),
        "a revision was lost"
    );
}

/// Moving the image to another registry ends with a pull Secret that holds only the new
/// registry's entry (the old one is kept only while the plugin still points at it).
#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn pull_secret_follows_the_plugin_to_a_new_registry() {
    let stack = support::stack::stack();
    let namespace = stack.namespace("failures-secret");
    let workspace = Workspace::new();
    workspace.docker_config(
        r#"{"auths": {"127.0.0.1:5001": {"auth": "dTpwMQ=="}, "127.0.0.1:5002": {"auth": "dTpwMg=="}}}"#,
    );
    let registries = || {
        let output = namespace
            .kubectl()
            .args([
                "get",
                "secret",
                "ctx-pull",
                "-o",
                "jsonpath={.data.\\.dockerconfigjson}",
            ])
            .output()
            .expect("kubectl get secret");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(output.stdout.trim_ascii())
            .expect("base64 data");
        let config: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        config["auths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    for registry in ["127.0.0.1:5001", "127.0.0.1:5002"] {
        let image = format!("{registry}/f:v1");
        let child = apply_on_stack(
            stack,
            &workspace,
            &namespace.name,
            &["--image", &image, "--pull-secret-from-docker-config"],
        );
        let output = finished_ok(child);
        assert!(output.contains("secret/ctx-pull applied"), "{output}");
        assert_eq!(registries(), [registry]);
    }
}
