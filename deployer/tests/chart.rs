//! charts/wasm-plugin with the real helm: lint, template, the values schema, and (against the
//! local stack's kube-apiserver with the WasmPlugin CRD) server dry-run, install / upgrade /
//! uninstall, and agreement with `deployer render`.
mod support;

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};
use support::helm::{chart_dir, documents, helm, only, template};
use support::stack::{Namespace, Stack, stack};
use support::tools::{deployer, run, run_ok};

fn ci_values() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .expect("charts/wasm-plugin/ci exists")
        .map(|entry| entry.expect("read charts/wasm-plugin/ci").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected example values files in charts/wasm-plugin/ci, found {files:?}"
    );
    files
}

fn chart_yaml() -> Value {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("read Chart.yaml");
    serde_yaml::from_str(&text).expect("Chart.yaml is YAML")
}

#[test]
fn app_version_follows_the_workspace_version() {
    // deployer takes `version.workspace = true`, so its package version is the workspace's.
    let workspace = env!("CARGO_PKG_VERSION");
    let chart = chart_yaml();
    assert_eq!(
        chart["appVersion"], workspace,
        "Chart.yaml appVersion must equal [workspace.package] version"
    );
    assert_eq!(
        chart["version"], workspace,
        "Chart.yaml version is released with the workspace"
    );
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn lint_passes_for_default_and_example_values() {
    let chart = chart_dir();
    run_ok(helm().args(["lint", "--strict"]).arg(&chart), None);
    for values in ci_values() {
        let out = run_ok(
            helm()
                .args(["lint", "--strict"])
                .arg(&chart)
                .arg("-f")
                .arg(&values),
            None,
        );
        assert!(
            out.contains("0 chart(s) failed"),
            "{}: {out}",
            values.display()
        );
    }
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn default_values_render_the_bundled_filter() {
    let docs = template("context-logger", "demo", &[]);
    assert_eq!(docs.len(), 1, "only the WasmPlugin by default: {docs:#?}");
    let plugin = only(&docs, "WasmPlugin");
    assert_eq!(plugin["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(plugin["metadata"]["name"], "context-logger");
    assert_eq!(plugin["metadata"]["namespace"], "demo");
    assert_eq!(
        plugin["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(
        plugin["metadata"]["labels"]["app.kubernetes.io/version"],
        env!("CARGO_PKG_VERSION")
    );
    // Empty values are left out so Istio's defaults apply.
    assert_eq!(
        plugin["spec"],
        json!({"url": "oci://localhost:5000/context-logger:0.1.0"})
    );
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn every_spec_field_is_rendered_with_its_type() {
    let values = chart_dir().join("ci/full-values.yaml");
    let docs = template("release", "edge", &["-f", values.to_str().unwrap()]);
    let plugin = only(&docs, "WasmPlugin");
    assert_eq!(
        plugin["metadata"]["name"], "full",
        "`name` overrides the release name"
    );
    assert_eq!(plugin["metadata"]["labels"]["team"], "edge");
    assert_eq!(
        plugin["metadata"]["labels"]["app.kubernetes.io/instance"],
        "release"
    );
    assert_eq!(
        plugin["metadata"]["annotations"],
        json!({"example.com/owner": "edge-team"})
    );
    let expected = json!({
        "url": "https://files.example.com/filters/context-logger.wasm",
        "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "imagePullPolicy": "Always",
        "imagePullSecret": "full-pull",
        "selector": {"matchLabels": {"app": "httpbin", "version": "v1"}},
        "pluginName": "context-logger",
        "pluginConfig": {
            "greeting": "hello",
            "limit": 1000000,
            "ratio": 0.5,
            "enabled": true,
            "tags": ["a", "b"],
            "nested": {"key": "value"}
        },
        "phase": "STATS",
        "priority": -2147483648i64,
        "failStrategy": "FAIL_RELOAD",
        "type": "HTTP",
        "match": [
            {"mode": "CLIENT_AND_SERVER", "ports": [{"number": 1}, {"number": 65535}]},
            {"mode": "CLIENT"}
        ],
        "vmConfig": {"env": [
            {"name": "LOG_PREFIX", "value": "demo"},
            {"name": "POD_NAME", "valueFrom": "HOST"}
        ]}
    });
    assert_eq!(plugin["spec"], expected);
}

fn decoded_docker_config(secret: &Value) -> Value {
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let encoded = secret["data"][".dockerconfigjson"]
        .as_str()
        .expect("data/.dockerconfigjson is a string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect(".dockerconfigjson is base64");
    serde_json::from_slice(&bytes).expect(".dockerconfigjson is JSON")
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn pull_secret_is_created_from_credentials_and_referenced() {
    let values = chart_dir().join("ci/full-values.yaml");
    let docs = template("release", "edge", &["-f", values.to_str().unwrap()]);
    let secret = only(&docs, "Secret");
    assert_eq!(secret["metadata"]["name"], "full-pull");
    assert_eq!(
        secret["metadata"]["namespace"], "edge",
        "Istio reads pull Secrets from the plugin's namespace"
    );
    let config = decoded_docker_config(secret);
    let entry = &config["auths"]["files.example.com"];
    assert_eq!(entry["username"], "ci");
    assert_eq!(entry["password"], "not-a-real-password");
    let auth = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str().unwrap())
        .unwrap();
    assert_eq!(auth, b"ci:not-a-real-password");
    assert_eq!(
        only(&docs, "WasmPlugin")["spec"]["imagePullSecret"],
        "full-pull"
    );
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn pull_secret_from_a_docker_config_document_takes_the_referenced_name() {
    let values = chart_dir().join("ci/dockerconfig-values.yaml");
    let docs = template("plugin", "edge", &["-f", values.to_str().unwrap()]);
    let secret = only(&docs, "Secret");
    assert_eq!(secret["metadata"]["name"], "registry-creds");
    assert_eq!(
        decoded_docker_config(secret),
        json!({"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}})
    );
    assert_eq!(
        only(&docs, "WasmPlugin")["spec"]["imagePullSecret"],
        "registry-creds"
    );
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn example_values_render_their_attachment() {
    let render = |file: &str| {
        let path = chart_dir().join("ci").join(file);
        only(
            &template("r", "ns", &["-f", path.to_str().unwrap()]),
            "WasmPlugin",
        )["spec"]
            .clone()
    };
    let selector = render("selector-values.yaml");
    assert_eq!(
        selector["selector"],
        json!({"matchLabels": {"app": "httpbin"}})
    );
    assert!(
        selector["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@sha256:{}", selector["sha256"].as_str().unwrap()))
    );

    let gateway = render("gateway-values.yaml");
    assert_eq!(
        gateway["targetRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "ingress"}])
    );
    assert_eq!(gateway["priority"], 100);
    assert!(gateway.get("selector").is_none());

    let network = render("network-values.yaml");
    assert_eq!(network["type"], "NETWORK");
    assert_eq!(
        network["match"],
        json!([{"mode": "SERVER", "ports": [{"number": 8080}]}])
    );
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn values_from_set_flags_keep_their_types() {
    let docs = template(
        "p",
        "ns",
        &[
            "--set",
            "priority=7",
            "--set-json",
            r#"pluginConfig={"port":8080,"name":"x","on":true}"#,
            "--set",
            "selector.matchLabels.app=web",
        ],
    );
    let spec = &only(&docs, "WasmPlugin")["spec"];
    assert_eq!(spec["priority"], 7);
    assert_eq!(
        spec["pluginConfig"],
        json!({"port": 8080, "name": "x", "on": true})
    );
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(spec["priority"], 7);
}

/// One bad value: helm args that set it, and what helm's error must say.
struct BadValue {
    what: &'static str,
    args: &'static [&'static str],
    expect: &'static [&'static str],
}

const BAD_VALUES: &[BadValue] = &[
    BadValue {
        what: "phase not in the enum",
        args: &["--set", "phase=AUTH"],
        expect: &["/phase", "AUTHN"],
    },
    BadValue {
        what: "failStrategy not in the enum",
        args: &["--set", "failStrategy=FAIL_SOMETIMES"],
        expect: &["/failStrategy", "FAIL_OPEN"],
    },
    BadValue {
        what: "type in lower case",
        args: &["--set", "type=network"],
        expect: &["/type", "NETWORK"],
    },
    BadValue {
        what: "imagePullPolicy not in the enum",
        args: &["--set", "imagePullPolicy=Never"],
        expect: &["/imagePullPolicy", "IfNotPresent"],
    },
    BadValue {
        what: "sha256 too short",
        args: &["--set", "sha256=abc123"],
        expect: &["/sha256", "a-f0-9"],
    },
    BadValue {
        what: "sha256 with the sha256: prefix",
        args: &[
            "--set",
            "sha256=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        expect: &["/sha256"],
    },
    BadValue {
        what: "sha256 in upper case",
        args: &[
            "--set",
            "sha256=0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
        ],
        expect: &["/sha256"],
    },
    BadValue {
        what: "both selector and targetRefs",
        args: &[
            "--set",
            "selector.matchLabels.app=httpbin",
            "--set-json",
            r#"targetRefs=[{"group":"gateway.networking.k8s.io","kind":"Gateway","name":"ingress"}]"#,
        ],
        expect: &["/targetRefs", "empty when selector is set"],
    },
    BadValue {
        what: "both selector and targetRef",
        args: &[
            "--set",
            "selector.matchLabels.app=httpbin",
            "--set",
            "targetRef.kind=Gateway,targetRef.name=gw",
        ],
        expect: &["/targetRef", "empty when selector is set"],
    },
    BadValue {
        what: "both targetRef and targetRefs",
        args: &[
            "--set",
            "targetRef.kind=Gateway,targetRef.name=gw",
            "--set-json",
            r#"targetRefs=[{"kind":"Gateway","name":"other"}]"#,
        ],
        expect: &["/targetRefs", "empty when targetRef is set"],
    },
    BadValue {
        what: "more than 16 targetRefs",
        args: &[
            "--set-json",
            r#"targetRefs=[{"kind":"Service","name":"s0"},{"kind":"Service","name":"s1"},{"kind":"Service","name":"s2"},{"kind":"Service","name":"s3"},{"kind":"Service","name":"s4"},{"kind":"Service","name":"s5"},{"kind":"Service","name":"s6"},{"kind":"Service","name":"s7"},{"kind":"Service","name":"s8"},{"kind":"Service","name":"s9"},{"kind":"Service","name":"s10"},{"kind":"Service","name":"s11"},{"kind":"Service","name":"s12"},{"kind":"Service","name":"s13"},{"kind":"Service","name":"s14"},{"kind":"Service","name":"s15"},{"kind":"Service","name":"s16"}]"#,
        ],
        expect: &["/targetRefs"],
    },
    BadValue {
        what: "targetRef without a name",
        args: &["--set-json", r#"targetRefs=[{"kind":"Gateway"}]"#],
        expect: &["/targetRefs/0", "name"],
    },
    BadValue {
        what: "url with an unknown scheme",
        args: &["--set", "url=ftp://example.com/filter.wasm"],
        expect: &["/url", "(oci|https?|file)://"],
    },
    BadValue {
        what: "url with a space",
        args: &["--set", "url=oci://r/a b"],
        expect: &["/url"],
    },
    BadValue {
        what: "empty url",
        args: &["--set", "url="],
        expect: &["/url"],
    },
    BadValue {
        what: "priority above int32",
        args: &["--set", "priority=2147483648"],
        expect: &["/priority", "maximum"],
    },
    BadValue {
        what: "priority below int32",
        args: &["--set", "priority=-2147483649"],
        expect: &["/priority", "minimum"],
    },
    BadValue {
        what: "priority not a number",
        args: &["--set-string", "priority=high"],
        expect: &["/priority"],
    },
    BadValue {
        what: "port 0",
        args: &[
            "--set-json",
            r#"match=[{"mode":"SERVER","ports":[{"number":0}]}]"#,
        ],
        expect: &["/match/0/ports/0/number"],
    },
    BadValue {
        what: "port above 65535",
        args: &["--set-json", r#"match=[{"ports":[{"number":65536}]}]"#],
        expect: &["/match/0/ports/0/number", "maximum"],
    },
    BadValue {
        what: "match mode not in the enum",
        args: &["--set-json", r#"match=[{"mode":"INBOUND"}]"#],
        expect: &["/match/0/mode", "CLIENT_AND_SERVER"],
    },
    BadValue {
        what: "wildcard label value",
        args: &["--set", "selector.matchLabels.app=*"],
        expect: &["/selector/matchLabels/app"],
    },
    BadValue {
        what: "label value over 63 characters",
        args: &[
            "--set",
            "selector.matchLabels.app=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ],
        expect: &["/selector/matchLabels/app"],
    },
    BadValue {
        what: "pluginConfig not a map",
        args: &["--set-json", r#"pluginConfig=["a","b"]"#],
        expect: &["/pluginConfig"],
    },
    BadValue {
        what: "env valueFrom not in the enum",
        args: &[
            "--set-json",
            r#"vmConfig={"env":[{"name":"A","valueFrom":"FILE"}]}"#,
        ],
        expect: &["/vmConfig/env/0/valueFrom", "HOST"],
    },
    BadValue {
        what: "HOST env with a value",
        args: &[
            "--set-json",
            r#"vmConfig={"env":[{"name":"A","valueFrom":"HOST","value":"x"}]}"#,
        ],
        expect: &["/vmConfig/env/0/value"],
    },
    BadValue {
        what: "env without a name",
        args: &["--set-json", r#"vmConfig={"env":[{"value":"x"}]}"#],
        expect: &["/vmConfig/env/0", "name"],
    },
    BadValue {
        what: "pull Secret without credentials",
        args: &[
            "--set",
            "pullSecret.create=true,pullSecret.registry=registry.example.com",
        ],
        expect: &["/pullSecret/username"],
    },
    BadValue {
        what: "misspelt key",
        args: &["--set", "pluginconfig.a=b"],
        expect: &["pluginconfig"],
    },
    BadValue {
        what: "TrafficExtension with both url and lua",
        args: &[
            "--set",
            "kind=TrafficExtension",
            "--set",
            "lua.inlineCode=function envoy_on_request(h) end",
        ],
        expect: &["/lua/inlineCode", "exactly one of wasm (url) or lua"],
    },
    BadValue {
        what: "TrafficExtension with neither url nor lua",
        args: &["--set", "kind=TrafficExtension", "--set", "url="],
        expect: &["/url", "exactly one of wasm or lua"],
    },
    BadValue {
        what: "Lua in a WasmPlugin",
        args: &[
            "--set",
            "url=",
            "--set",
            "lua.inlineCode=function envoy_on_request(h) end",
        ],
        expect: &["/lua/inlineCode", "Lua runs only in a TrafficExtension"],
    },
    BadValue {
        what: "TrafficExtension with the deprecated targetRef",
        args: &[
            "--set",
            "kind=TrafficExtension",
            "--set",
            "targetRef.kind=Service",
            "--set",
            "targetRef.name=web",
        ],
        expect: &["/targetRef", "only targetRefs"],
    },
    BadValue {
        what: "kind neither WasmPlugin nor TrafficExtension",
        args: &["--set", "kind=EnvoyFilter"],
        expect: &["/kind", "TrafficExtension"],
    },
    BadValue {
        what: "bad WasmPlugin name",
        args: &["--set", "name=My_Plugin"],
        expect: &["/name"],
    },
];

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn schema_rejects_bad_values_with_a_clear_error() {
    let chart = chart_dir();
    let mut failures = Vec::new();
    for case in BAD_VALUES {
        let output = run(
            helm().args(["template", "bad"]).arg(&chart).args(case.args),
            None,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            failures.push(format!("{}: accepted", case.what));
            continue;
        }
        if !stderr.contains("values don't meet the specifications of the schema") {
            failures.push(format!("{}: not a schema error: {stderr}", case.what));
            continue;
        }
        for fragment in case.expect {
            if !stderr.contains(fragment) {
                failures.push(format!("{}: error lacks {fragment:?}: {stderr}", case.what));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn lint_reports_bad_values_too() {
    let output = run(
        helm()
            .arg("lint")
            .arg(chart_dir())
            .args(["--set", "phase=NOPE"]),
        None,
    );
    assert!(!output.status.success(), "helm lint accepted phase=NOPE");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("/phase"), "{stdout}");
}

/// `helm` talking to the stack's API server as stack-admin, in `namespace`.
fn helm_in(stack: &Stack, namespace: &Namespace) -> Command {
    let mut command = helm();
    command.arg("--kubeconfig").arg(&stack.kubeconfig).args([
        "--kube-context",
        &stack.context,
        "--namespace",
        &namespace.name,
    ]);
    command
}

fn get_json(namespace: &Namespace, what: &[&str]) -> Value {
    let out = run_ok(
        namespace.kubectl().args(["get", "-o", "json"]).args(what),
        None,
    );
    serde_json::from_str(&out).expect("kubectl -o json prints JSON")
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn rendered_yaml_passes_server_dry_run_with_the_crd() {
    let stack = stack();
    let namespace = stack.namespace("chart-dry-run");
    let mut inputs: Vec<Option<PathBuf>> = vec![None];
    inputs.extend(ci_values().into_iter().map(Some));
    for values in inputs {
        let mut args = Vec::new();
        if let Some(path) = &values {
            args = vec!["-f".to_string(), path.display().to_string()];
        }
        let mut command = helm();
        command
            .arg("template")
            .arg("plugin")
            .arg(chart_dir())
            .args(["--namespace", &namespace.name])
            .args(&args);
        let yaml = run_ok(&mut command, None);
        let out = run_ok(
            namespace
                .kubectl()
                .args(["apply", "--dry-run=server", "-f", "-"]),
            Some(&yaml),
        );
        assert!(
            out.contains("wasmplugin.extensions.istio.io/"),
            "{values:?}: {out}"
        );
        assert!(out.contains("(server dry run)"), "{values:?}: {out}");
    }
    let listed = get_json(&namespace, &["wasmplugins,secrets"]);
    assert_eq!(
        listed["items"],
        json!([]),
        "a server dry run created objects"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn install_upgrade_and_uninstall_against_the_api_server() {
    let stack = stack();
    let namespace = stack.namespace("chart-install");
    let chart = chart_dir();
    let ns = namespace.name.clone();

    let out = run_ok(
        helm_in(stack, &namespace)
            .args(["install", "context-logger"])
            .arg(&chart)
            .args(["--set", "selector.matchLabels.app=web,pluginName=root"]),
        None,
    );
    let notes = out
        .split("NOTES:")
        .nth(1)
        .unwrap_or_else(|| panic!("no NOTES in {out}"));
    for line in [
        format!("deployer status context-logger -n {ns}"),
        format!("kubectl get pods -n {ns} -l app=web"),
        format!(r#"kubectl logs <pod> -n {ns} -c istio-proxy | grep "wasm log""#),
        format!(r#""wasm log {ns}.context-logger root:""#),
        r#"sidecar.istio.io/componentLogLevel: "wasm:info""#.to_string(),
    ] {
        assert!(notes.contains(&line), "NOTES lack {line:?}:\n{notes}");
    }
    let plugin = get_json(&namespace, &["wasmplugin", "context-logger"]);
    assert_eq!(
        plugin["spec"],
        json!({
            "url": "oci://localhost:5000/context-logger:0.1.0",
            "selector": {"matchLabels": {"app": "web"}},
            "pluginName": "root"
        })
    );
    let first_version = plugin["metadata"]["resourceVersion"].clone();

    // A bad value fails before anything is sent: the resource keeps its revision.
    let bad = run(
        helm_in(stack, &namespace)
            .args(["upgrade", "context-logger"])
            .arg(&chart)
            .args(["--set", "phase=LATE"]),
        None,
    );
    assert!(!bad.status.success(), "upgrade with phase=LATE succeeded");
    assert_eq!(
        get_json(&namespace, &["wasmplugin", "context-logger"])["metadata"]["resourceVersion"],
        first_version
    );

    run_ok(
        helm_in(stack, &namespace).args(["upgrade", "context-logger"]).arg(&chart).args([
            "--reuse-values",
            "--set",
            "phase=AUTHZ,priority=10",
            "--set",
            "pullSecret.create=true,pullSecret.registry=registry.example.com,pullSecret.username=u,pullSecret.password=p",
        ]),
        None,
    );
    let plugin = get_json(&namespace, &["wasmplugin", "context-logger"]);
    assert_eq!(plugin["spec"]["phase"], "AUTHZ");
    assert_eq!(plugin["spec"]["priority"], 10);
    assert_eq!(
        plugin["spec"]["pluginName"], "root",
        "--reuse-values keeps the install's values"
    );
    assert_eq!(plugin["spec"]["imagePullSecret"], "context-logger-pull");
    let secret = get_json(&namespace, &["secret", "context-logger-pull"]);
    assert_eq!(
        decoded_docker_config(&secret)["auths"]["registry.example.com"]["username"],
        "u"
    );

    let releases: Value = serde_json::from_str(&run_ok(
        helm_in(stack, &namespace).args(["list", "-o", "json"]),
        None,
    ))
    .expect("helm list -o json");
    assert_eq!(releases[0]["name"], "context-logger");
    assert_eq!(releases[0]["revision"], "2");
    assert_eq!(releases[0]["status"], "deployed");
    assert_eq!(releases[0]["app_version"], env!("CARGO_PKG_VERSION"));

    run_ok(
        helm_in(stack, &namespace).args(["uninstall", "context-logger", "--wait"]),
        None,
    );
    let left = get_json(
        &namespace,
        &[
            "wasmplugins,secrets",
            "-l",
            "app.kubernetes.io/instance=context-logger",
        ],
    );
    assert_eq!(left["items"], json!([]), "uninstall left {left}");
}

/// Compares two WasmPlugin specs key by key and names every field that differs.
fn assert_same_spec(what: &str, cli: &Value, chart: &Value) {
    let (Some(cli_fields), Some(chart_fields)) = (cli.as_object(), chart.as_object()) else {
        panic!("{what}: specs are not objects: {cli} / {chart}");
    };
    let mut keys: Vec<&String> = cli_fields.keys().chain(chart_fields.keys()).collect();
    keys.sort();
    keys.dedup();
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|key| cli_fields.get(*key) != chart_fields.get(*key))
        .map(|key| {
            format!(
                "  {key}: cli {:?} / chart {:?}",
                cli_fields.get(key),
                chart_fields.get(key)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{what}: the CLI and the chart disagree on\n{}",
        differences.join("\n")
    );
}

fn cli_render(args: &[&str]) -> Value {
    let out = deployer()
        .arg("render")
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("run deployer render");
    assert!(
        out.status.success(),
        "deployer render {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("deployer render -o json prints JSON")
}

fn chart_render(release: &str, values: &Value) -> Value {
    chart_render_kind(release, values, "WasmPlugin")
}

fn chart_render_kind(release: &str, values: &Value, kind: &str) -> Value {
    let mut command = helm();
    command.arg("template").arg(release).arg(chart_dir()).args([
        "--namespace",
        "default",
        "-f",
        "-",
    ]);
    let docs = documents(&run_ok(&mut command, Some(&values.to_string())));
    only(&docs, kind).clone()
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn chart_renders_the_same_traffic_extension_as_the_cli() {
    let url = format!("oci://127.0.0.1:5000/ctx@sha256:{DIGEST}");
    let lua = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(lua.path(), "function envoy_on_response(h) end\n").unwrap();
    let lua_path = lua.path().display().to_string();
    let cases: Vec<(&str, Vec<&str>, Value)> = vec![
        (
            "wasm",
            vec![
                "te",
                "--kind",
                "te",
                "--image",
                &url,
                "--selector",
                "app=web",
                "--phase",
                "unspecified",
                "--priority",
                "3",
                "--plugin-name",
                "root",
                "--set",
                "a=1",
                "--fail-strategy",
                "fail-open",
                "--match",
                "server:8080",
            ],
            json!({
                "kind": "TrafficExtension", "name": "te", "url": url, "sha256": DIGEST,
                "selector": {"matchLabels": {"app": "web"}}, "phase": "UNSPECIFIED_PHASE",
                "priority": 3, "pluginName": "root", "pluginConfig": {"a": 1},
                "failStrategy": "FAIL_OPEN", "match": [{"mode": "SERVER", "ports": [{"number": 8080}]}]
            }),
        ),
        (
            "lua",
            vec!["lua", "--lua", &lua_path, "--selector", "app=web"],
            json!({
                "kind": "TrafficExtension", "name": "lua", "url": "",
                "selector": {"matchLabels": {"app": "web"}},
                "lua": {"inlineCode": "function envoy_on_response(h) end\n"}
            }),
        ),
    ];
    for (what, flags, values) in cases {
        let cli = cli_render(&flags);
        assert_eq!(cli["kind"], "TrafficExtension", "{what}");
        let chart = chart_render_kind("release", &values, "TrafficExtension");
        assert_same_spec(what, &cli["spec"], &chart["spec"]);
        // And the values `--helm-values` prints reproduce it.
        let mut with_values = flags.clone();
        with_values.push("--helm-values");
        let printed = cli_render(&with_values);
        assert_eq!(printed["kind"], "TrafficExtension", "{what}: {printed}");
        let mut printed = printed;
        if what == "lua" {
            // The chart's url default is a wasm image: a Lua values file empties it.
            printed["url"] = json!("");
        }
        let again = chart_render_kind("release", &printed, "TrafficExtension");
        assert_same_spec(what, &cli["spec"], &again["spec"]);
    }
}

const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The same plugin as CLI flags and as the chart values a user would write from values.yaml.
fn equivalent_inputs() -> Vec<(&'static str, Vec<String>, Value)> {
    let image = format!("127.0.0.1:5000/ctx@sha256:{DIGEST}");
    let url = format!("oci://{image}");
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        (
            "every field",
            strings(&[
                "everything",
                "--image",
                &image,
                "--sha256",
                DIGEST,
                "--selector",
                "app=web,version=v1",
                "--plugin-name",
                "root",
                "--phase",
                "authz",
                "--priority",
                "-5",
                "--fail-strategy",
                "fail-open",
                "--pull-policy",
                "always",
                "--pull-secret",
                "creds",
                "--type",
                "http",
                "--match",
                "server:8080,9090",
                "--match",
                "client",
                "--env",
                "A=1",
                "--env",
                "HOST_VAR",
                "--set",
                "greeting=hi",
                "--set",
                "limits.max=5",
                "--set",
                "on=true",
                "--no-pin",
            ]),
            json!({
                "name": "everything", "url": url, "sha256": DIGEST,
                "selector": {"matchLabels": {"app": "web", "version": "v1"}},
                "pluginName": "root", "phase": "AUTHZ", "priority": -5, "failStrategy": "FAIL_OPEN",
                "imagePullPolicy": "Always", "imagePullSecret": "creds", "type": "HTTP",
                "match": [{"mode": "SERVER", "ports": [{"number": 8080}, {"number": 9090}]}, {"mode": "CLIENT"}],
                "vmConfig": {"env": [{"name": "A", "valueFrom": "INLINE", "value": "1"}, {"name": "HOST_VAR", "valueFrom": "HOST"}]},
                "pluginConfig": {"greeting": "hi", "limits": {"max": 5}, "on": true}
            }),
        ),
        (
            "a gateway by targetRefs",
            strings(&[
                "gateway",
                "--image",
                "oci://registry.example.com/wasm/context-logger:0.1.0",
                "--no-pin",
                "--target-ref",
                "Gateway.gateway.networking.k8s.io/ingress",
                "--phase",
                "authn",
                "--priority",
                "100",
            ]),
            json!({
                "name": "gateway", "url": "oci://registry.example.com/wasm/context-logger:0.1.0",
                "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "ingress"}],
                "phase": "AUTHN", "priority": 100
            }),
        ),
        (
            "a NETWORK filter",
            strings(&[
                "tcp",
                "--image",
                "oci://registry.example.com/wasm/context-logger:0.1.0",
                "--no-pin",
                "--type",
                "network",
                "--selector",
                "app=db",
                "--match",
                "server:5432",
                "--fail-strategy",
                "fail-close",
            ]),
            json!({
                "name": "tcp", "url": "oci://registry.example.com/wasm/context-logger:0.1.0", "type": "NETWORK",
                "selector": {"matchLabels": {"app": "db"}}, "match": [{"mode": "SERVER", "ports": [{"number": 5432}]}],
                "failStrategy": "FAIL_CLOSE"
            }),
        ),
        (
            "a module over https",
            strings(&[
                "http",
                "--image",
                "https://files.example.com/f.wasm",
                "--sha256",
                DIGEST,
                "--priority",
                "0",
            ]),
            json!({"name": "http", "url": "https://files.example.com/f.wasm", "sha256": DIGEST, "priority": 0}),
        ),
    ]
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn chart_and_cli_render_the_same_spec_for_the_same_inputs() {
    for (what, flags, values) in equivalent_inputs() {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let cli = cli_render(&flags);
        let chart = chart_render("release", &values);
        assert_eq!(cli["metadata"]["name"], chart["metadata"]["name"], "{what}");
        assert_same_spec(what, &cli["spec"], &chart["spec"]);
    }
}

#[test]
#[ignore = "tier tools: runs helm (scripts/setup helm); scripts/test runs it"]
fn helm_values_from_the_cli_reproduce_its_spec() {
    let mut inputs: Vec<(String, Vec<String>)> = equivalent_inputs()
        .into_iter()
        .map(|(what, flags, _)| (what.to_string(), flags))
        .collect();
    // Files a user already has: every example manifest, as `deployer render -f` reads it.
    for entry in std::fs::read_dir(support::tools::repo_root().join("manifests/examples")).unwrap()
    {
        let path = entry.unwrap().path();
        inputs.push((
            path.display().to_string(),
            vec!["-f".into(), path.display().to_string(), "--no-pin".into()],
        ));
    }
    for (what, flags) in inputs {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let cli = cli_render(&flags);
        let mut with_values = flags.clone();
        with_values.push("--helm-values");
        let values = cli_render(&with_values);
        // A values file a user can keep: the schema must accept it as it is.
        let chart = chart_render("any-release", &values);
        assert_eq!(
            cli["metadata"]["name"], chart["metadata"]["name"],
            "{what}: `name` carries the plugin's name"
        );
        for (key, value) in cli["metadata"]["labels"].as_object().into_iter().flatten() {
            assert_eq!(
                &chart["metadata"]["labels"][key], value,
                "{what}: label {key}"
            );
        }
        assert_same_spec(&what, &cli["spec"], &chart["spec"]);
    }
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn cli_apply_and_helm_install_store_the_same_spec() {
    let stack = stack();
    let cli_namespace = stack.namespace("chart-vs-cli-a");
    let helm_namespace = stack.namespace("chart-vs-cli-b");
    let (_, flags, _) = equivalent_inputs().into_iter().next().expect("a case");
    let applied = deployer()
        .arg("apply")
        .args(&flags)
        .args(["-n", &cli_namespace.name])
        .envs(stack.env())
        .output()
        .expect("run deployer apply");
    assert!(
        applied.status.success(),
        "deployer apply: {}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let mut with_values: Vec<&str> = flags.iter().map(String::as_str).collect();
    with_values.push("--helm-values");
    let values = cli_render(&with_values);
    run_ok(
        helm_in(stack, &helm_namespace)
            .args(["install", "from-cli"])
            .arg(chart_dir())
            .args(["-f", "-"]),
        Some(&values.to_string()),
    );
    // What the API server stored (after its defaulting and pruning), not what was sent.
    let from_cli = get_json(&cli_namespace, &["wasmplugin", "everything"]);
    let from_chart = get_json(&helm_namespace, &["wasmplugin", "everything"]);
    assert_same_spec(
        "stored by the API server",
        &from_cli["spec"],
        &from_chart["spec"],
    );
}

/// Bad values that are the chart's own rules, not the CRD's: the API server would take them.
const CHART_ONLY: &[&str] = &[
    // the template turns a non-number into 0 once the schema is skipped
    "priority not a number",
    "url with a space",
    "pull Secret without credentials",
    "misspelt key",
    // Istio's CRD declares priority `format: int32`, which the API server does not enforce;
    // istiod then cannot read the object. The chart refuses such values: stricter is safer.
    "priority above int32",
    "priority below int32",
    // TrafficExtension has no `targetRef`: the API server prunes the unknown field (a warning,
    // not an error), so the plugin would silently select every pod.
    "TrafficExtension with the deprecated targetRef",
];

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn the_crd_rejects_what_the_schema_rejects() {
    // With the chart's schema skipped, Istio's own CRD (what the stack installs) refuses the same
    // specs, except the chart-only rules listed above.
    for what in CHART_ONLY {
        assert!(
            BAD_VALUES.iter().any(|case| case.what == *what),
            "no bad value named {what:?}"
        );
    }
    let stack = stack();
    let namespace = stack.namespace("chart-vs-crd");
    let mut accepted = Vec::new();
    for case in BAD_VALUES
        .iter()
        .filter(|case| !CHART_ONLY.contains(&case.what))
    {
        let mut command = helm();
        command
            .args(["template", "bad"])
            .arg(chart_dir())
            .args(["--skip-schema-validation", "--namespace", &namespace.name])
            .args(case.args);
        let yaml = run_ok(&mut command, None);
        let output = run(
            namespace
                .kubectl()
                .args(["apply", "--dry-run=server", "-f", "-"]),
            Some(&yaml),
        );
        if output.status.success() {
            accepted.push(format!("{}:\n{yaml}", case.what));
        }
    }
    assert!(
        accepted.is_empty(),
        "the API server accepted values the schema rejects:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn values_yaml_documents_every_schema_key() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).expect("read schema"),
    )
    .expect("values.schema.json is JSON");
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).expect("read values.yaml");
    let values: Value = serde_yaml::from_str(&text).expect("values.yaml is YAML");
    let lines: Vec<&str> = text.lines().collect();
    // Each key the schema knows has a default in values.yaml, with a comment right above it
    // (or above the block it opens). `global` belongs to helm.
    let mut missing = Vec::new();
    let mut check = |path: String, key: &str, indent: usize, values: &Value| {
        if values.get(key).is_none() {
            missing.push(format!("{path}: no default"));
            return;
        }
        let prefix = format!("{}{key}:", " ".repeat(indent));
        let Some(at) = lines.iter().position(|line| line.starts_with(&prefix)) else {
            missing.push(format!("{path}: not found as {prefix:?}"));
            return;
        };
        if at == 0 || !lines[at - 1].trim_start().starts_with('#') {
            missing.push(format!("{path}: no comment above it"));
        }
    };
    for (key, property) in schema["properties"].as_object().unwrap() {
        if key == "global" {
            continue;
        }
        check(key.clone(), key, 0, &values);
        if key == "pullSecret" {
            for nested in property["properties"].as_object().unwrap().keys() {
                check(format!("{key}.{nested}"), nested, 2, &values[key]);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "values.yaml lacks:\n{}",
        missing.join("\n")
    );
}
