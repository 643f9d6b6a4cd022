//! The local stack itself: the API server is up with the WasmPlugin CRD established, the CRD
//! validates the way Istio's does (checked by the real API server with server-side dry runs),
//! RBAC tells the two identities apart, kwok runs pods on its fake node and serves their logs
//! from files, and the registry answers.
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::stack::{self, kubectl_ok, run_with_stdin, stack};

const GOOD_SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn plugin(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: {name}\nspec:\n{}",
        spec.lines()
            .map(|line| format!("  {line}\n"))
            .collect::<String>()
    )
}

/// `kubectl apply --dry-run=server` of `manifest` in `namespace`: (success, stdout + stderr).
fn server_dry_run(ns: &stack::Namespace<'_>, manifest: &str) -> (bool, String) {
    let output = run_with_stdin(
        ns.kubectl().args(["apply", "--dry-run=server", "-f", "-"]),
        manifest,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn stack_is_up_with_the_wasmplugin_crd_established() {
    let stack = stack();
    let established = kubectl_ok(stack.kubectl().args([
        "get",
        "crd",
        "wasmplugins.extensions.istio.io",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]));
    assert_eq!(established, "True");
    let resources = kubectl_ok(stack.kubectl().args([
        "api-resources",
        "--api-group",
        "extensions.istio.io",
        "-o",
        "name",
    ]));
    // Istio's own CRDs: WasmPlugin and its successor TrafficExtension.
    assert_eq!(
        resources.trim(),
        "trafficextensions.extensions.istio.io\nwasmplugins.extensions.istio.io"
    );
    let version = kubectl_ok(stack.kubectl().args(["get", "--raw", "/version"]));
    assert!(
        version.contains("\"gitVersion\": \"v1.35."),
        "API server version: {version}"
    );

    let status = stack::run_script(&["status"]);
    assert!(
        status.status.success(),
        "scripts/stack status: {}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn up_again_is_quick_and_prints_the_same_environment() {
    let stack = stack();
    let started = Instant::now();
    let output = stack::run_script(&["up"]);
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let again = stack::parse_env(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(again.kubeconfig, stack.kubeconfig);
    assert_eq!(again.registry, stack.registry);
    assert_eq!(again.apiserver, stack.apiserver);
    assert!(
        elapsed < Duration::from_secs(5),
        "`scripts/stack up` on a running stack took {elapsed:?}"
    );

    let env = stack::run_script(&["env"]);
    assert_eq!(
        String::from_utf8_lossy(&env.stdout),
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn the_crd_accepts_a_full_valid_wasmplugin() {
    let stack = stack();
    let ns = stack.namespace("crd-valid");
    let manifest = plugin(
        "full",
        &format!(
            r#"selector:
  matchLabels: {{app: httpbin, version: v1}}
url: oci://127.0.0.1:5000/filters/context-logger@sha256:{GOOD_SHA}
sha256: {GOOD_SHA}
imagePullPolicy: IfNotPresent
imagePullSecret: registry-creds
pluginConfig: {{level: info, nested: {{list: [1, 2, 3]}}}}
pluginName: context_logger
phase: STATS
priority: -10
failStrategy: FAIL_OPEN
vmConfig:
  env:
  - {{name: POD_NAME, valueFrom: HOST}}
  - {{name: MODE, valueFrom: INLINE, value: debug}}
match:
- mode: SERVER
  ports: [{{number: 8080}}, {{number: 65535}}]
type: HTTP"#
        ),
    );
    let (ok, text) = server_dry_run(&ns, &manifest);
    assert!(ok, "a valid WasmPlugin was rejected:\n{text}");
    assert!(
        text.contains("wasmplugin.extensions.istio.io/full created (server dry run)"),
        "{text}"
    );

    for (name, spec) in [
        (
            "targets",
            "targetRefs:\n- {group: gateway.networking.k8s.io, kind: Gateway, name: gw}\nurl: oci://r/x:1",
        ),
        (
            "target",
            "targetRef: {kind: Service, name: web}\nurl: https://example.test/plugin.wasm",
        ),
        (
            "bare",
            "url: registry.test/filters/x:v1\nsha256: \"\"\ntype: NETWORK",
        ),
        (
            "file",
            "url: file:///opt/plugin.wasm\nfailStrategy: FAIL_RELOAD",
        ),
        (
            "signed",
            "url: oci://r/x:1\nverificationKey: \"-----BEGIN PUBLIC KEY-----\"",
        ),
    ] {
        let (ok, text) = server_dry_run(&ns, &plugin(name, spec));
        assert!(ok, "{name} was rejected:\n{text}");
    }
    // Server dry runs store nothing.
    let stored = kubectl_ok(ns.kubectl().args(["get", "wasmplugins", "-o", "name"]));
    assert_eq!(stored.trim(), "");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn the_crd_rejects_what_istio_rejects() {
    let stack = stack();
    let ns = stack.namespace("crd-invalid");
    let seventeen: String = (0..17)
        .map(|i| format!("- {{kind: Gateway, group: gateway.networking.k8s.io, name: g{i}}}\n"))
        .collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad-sha", "url: oci://r/x:1\nsha256: abc123".into(), "spec.sha256"),
        ("upper-sha", format!("url: oci://r/x:1\nsha256: {}", GOOD_SHA.to_uppercase()), "spec.sha256"),
        (
            "selector-and-target",
            "url: oci://r/x:1\nselector: {matchLabels: {app: a}}\ntargetRef: {kind: Service, name: a}".into(),
            "only one of targetRefs or selector can be set",
        ),
        (
            "target-and-targets",
            "url: oci://r/x:1\ntargetRef: {kind: Service, name: a}\ntargetRefs: [{kind: Service, name: b}]".into(),
            "only one of targetRefs or selector can be set",
        ),
        ("ftp-url", "url: ftp://example.test/plugin.wasm".into(), "url must have schema one of [http, https, file, oci]"),
        ("no-url", "phase: AUTHN".into(), "spec.url: Required value"),
        ("empty-url", "url: \"\"".into(), "spec.url"),
        ("bad-phase", "url: oci://r/x:1\nphase: LATE".into(), "spec.phase: Unsupported value"),
        ("bad-policy", "url: oci://r/x:1\nimagePullPolicy: Never".into(), "spec.imagePullPolicy: Unsupported value"),
        ("bad-fail", "url: oci://r/x:1\nfailStrategy: FAIL_SOMETIMES".into(), "spec.failStrategy: Unsupported value"),
        ("bad-type", "url: oci://r/x:1\ntype: UDP".into(), "spec.type: Unsupported value"),
        ("wildcard-value", "url: oci://r/x:1\nselector: {matchLabels: {app: \"web*\"}}".into(), "wildcard not allowed in label value match"),
        ("wildcard-key", "url: oci://r/x:1\nselector: {matchLabels: {\"a*\": web}}".into(), "wildcard not allowed in label key match"),
        ("long-value", format!("url: oci://r/x:1\nselector: {{matchLabels: {{app: {}}}}}", "v".repeat(64)), "spec.selector.matchLabels.app"),
        ("seventeen-targets", format!("url: oci://r/x:1\ntargetRefs:\n{seventeen}"), "must have at most 16 items"),
        ("port-zero", "url: oci://r/x:1\nmatch: [{ports: [{number: 0}]}]".into(), "spec.match[0].ports[0].number"),
        ("port-too-big", "url: oci://r/x:1\nmatch: [{ports: [{number: 65536}]}]".into(), "spec.match[0].ports[0].number"),
        ("bad-mode", "url: oci://r/x:1\nmatch: [{mode: BOTH}]".into(), "spec.match[0].mode: Unsupported value"),
        ("host-with-value", "url: oci://r/x:1\nvmConfig: {env: [{name: A, valueFrom: HOST, value: x}]}".into(), "value may only be set when valueFrom is INLINE"),
        ("config-not-object", "url: oci://r/x:1\npluginConfig: [1, 2]".into(), "spec.pluginConfig"),
        ("priority-not-int", "url: oci://r/x:1\npriority: high".into(), "spec.priority"),
        ("target-without-name", "url: oci://r/x:1\ntargetRef: {kind: Service}".into(), "spec.targetRef.name: Required value"),
        ("cross-namespace-target", "url: oci://r/x:1\ntargetRefs: [{kind: Service, name: a, namespace: other}]".into(), "cross namespace referencing is not currently supported"),
        ("duplicate-env", "url: oci://r/x:1\nvmConfig: {env: [{name: A, value: x}, {name: A, value: z}]}".into(), "spec.vmConfig.env[1]: Duplicate value"),
        ("duplicate-port", "url: oci://r/x:1\nmatch: [{ports: [{number: 80}, {number: 80}]}]".into(), "spec.match[0].ports[1]: Duplicate value"),
    ];
    let mut failures = Vec::new();
    for (name, spec, expected) in &cases {
        let (ok, text) = server_dry_run(&ns, &plugin(name, spec));
        if ok || !text.contains(expected) {
            failures.push(format!(
                "{name}: accepted={ok}, expected an error containing {expected:?}, got:\n{text}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn rbac_tells_admin_and_dev_apart() {
    let stack = stack();
    let ns = stack.namespace("rbac");
    let can = |command: &mut std::process::Command| kubectl_ok(command).trim().to_string();
    assert_eq!(
        can(stack.kubectl().args([
            "auth",
            "can-i",
            "create",
            "wasmplugins.extensions.istio.io",
            "-n",
            &ns.name
        ])),
        "yes"
    );
    let dev = stack
        .kubectl_as_dev()
        .args([
            "auth",
            "can-i",
            "create",
            "wasmplugins.extensions.istio.io",
            "-n",
            &ns.name,
        ])
        .output()
        .expect("run kubectl");
    assert_eq!(String::from_utf8_lossy(&dev.stdout).trim(), "no");
    // Reading core resources works (the `view` role); writing WasmPlugins is forbidden.
    kubectl_ok(stack.kubectl_as_dev().args(["get", "pods", "-n", &ns.name]));
    let output = run_with_stdin(
        stack
            .kubectl_as_dev()
            .args(["apply", "-n", &ns.name, "-f", "-"]),
        &plugin("p", "url: oci://r/x:1"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("forbidden") && stderr.contains("User \"stack-dev\""),
        "{stderr}"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn kwok_node_is_ready_and_pods_run_with_logs_served_from_files() {
    let stack = stack();
    let ready = kubectl_ok(stack.kubectl().args([
        "get",
        "node",
        &stack.node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]));
    assert_eq!(ready, "True");

    let ns = stack.namespace("kwok");
    // The scheduler places the pod on the kwok node; kwok marks it Running.
    kubectl_ok(ns.kubectl().args([
        "run",
        "web",
        "--image=example.test/httpbin:1",
        "--restart=Never",
    ]));
    kubectl_ok(ns.kubectl().args([
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "--timeout=60s",
        "pod/web",
    ]));
    let node =
        kubectl_ok(
            ns.kubectl()
                .args(["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"]),
        );
    assert_eq!(node, stack.node);

    // kwok's Logs resource maps the container to a file on this machine; `kubectl logs` reaches
    // kwok through the API server's node proxy.
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("web.log");
    std::fs::write(
        &log,
        "2026-01-01T00:00:00.000000000Z stdout F first line\n\
         2026-01-01T00:00:01.000000000Z stdout F wasm log demo.context-logger context_logger: NewHttpContext\n",
    )
    .expect("write log");
    ns.serve_logs("web", "web", &log);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = ns
            .kubectl()
            .args(["logs", "web", "-c", "web"])
            .output()
            .expect("run kubectl");
        let text = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && text.contains("NewHttpContext") {
            assert_eq!(
                text,
                "first line\nwasm log demo.context-logger context_logger: NewHttpContext\n"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl logs never served the file: {text}{}\nkwok log: {}",
            String::from_utf8_lossy(&output.stderr),
            stack.dir.join("logs/kwok.log").display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn registry_answers_the_distribution_api() {
    let stack = stack();
    let mut stream = TcpStream::connect(&stack.registry).expect("connect to the stack's registry");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        stack.registry
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{response}"
    );
}
