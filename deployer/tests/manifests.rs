//! manifests/examples and manifests/demo with the real kubectl (and its kustomize), statically
//! and against the local stack's kube-apiserver with the WasmPlugin CRD.
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::helm::{documents, kubectl, only};
use support::stack::stack;
use support::tools::{repo_root, run_ok};

fn examples() -> Vec<(String, Value)> {
    let dir = repo_root().join("manifests/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("manifests/examples exists")
        .map(|entry| entry.expect("read manifests/examples").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let docs = documents(&std::fs::read_to_string(&path).expect("read example"));
            assert_eq!(docs.len(), 1, "{name} holds one resource");
            (name, docs.into_iter().next().unwrap())
        })
        .collect()
}

fn example(name: &str) -> Value {
    examples()
        .into_iter()
        .find(|(file, _)| file == name)
        .unwrap_or_else(|| panic!("manifests/examples/{name} is missing"))
        .1
}

#[test]
fn examples_are_namespace_free_wasmplugins() {
    let all = examples();
    assert!(all.len() >= 3, "{all:?}");
    for (name, plugin) in &all {
        assert_eq!(
            plugin["apiVersion"], "extensions.istio.io/v1alpha1",
            "{name}"
        );
        assert_eq!(plugin["kind"], "WasmPlugin", "{name}");
        // `kubectl apply -n NS -f` refuses a file naming another namespace.
        assert!(
            plugin["metadata"].get("namespace").is_none(),
            "{name} must not pin a namespace"
        );
        assert!(plugin["spec"]["url"].is_string(), "{name} has a url");
    }
}

#[test]
fn examples_cover_selector_gateway_and_network() {
    let selector = example("context-logger-selector.yaml");
    assert_eq!(
        selector["spec"]["selector"],
        json!({"matchLabels": {"app": "httpbin"}})
    );

    let gateway = example("context-logger-gateway.yaml");
    assert_eq!(
        gateway["spec"]["targetRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "ingress"}])
    );
    assert!(gateway["spec"].get("selector").is_none());

    let network = example("context-logger-network.yaml");
    assert_eq!(network["spec"]["type"], "NETWORK");
    assert_eq!(
        network["spec"]["match"][0]["ports"],
        json!([{"number": 8080}])
    );
}

fn kustomize(dir: &Path) -> Vec<Value> {
    documents(&run_ok(kubectl().arg("kustomize").arg(dir), None))
}

/// A pod (or pod template) whose filter lines `deployer logs` can read: the sidecar logs wasm
/// at info, and there is an istio-proxy container to read them from.
fn assert_wasm_logs_readable(pod: &Value) {
    assert_eq!(
        pod["metadata"]["annotations"]["sidecar.istio.io/componentLogLevel"],
        "wasm:info"
    );
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(containers.contains(&"istio-proxy"), "{containers:?}");
}

#[test]
#[ignore = "tier tools: runs kubectl kustomize; scripts/test runs it"]
fn demo_kustomization_renders_namespace_app_and_plugin() {
    let docs = kustomize(&repo_root().join("manifests/demo"));
    let namespace = only(&docs, "Namespace");
    assert_eq!(namespace["metadata"]["name"], "wasm-demo");
    assert_eq!(
        namespace["metadata"]["labels"]["istio-injection"],
        "enabled"
    );
    for doc in docs.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(doc["metadata"]["namespace"], "wasm-demo", "{doc}");
    }

    let deployment = only(&docs, "Deployment");
    let pod = &deployment["spec"]["template"];
    assert_wasm_logs_readable(pod);

    let service = only(&docs, "Service");
    let plugin = only(&docs, "WasmPlugin");
    // The plugin and the Service both select the Deployment's pods.
    let pod_labels = pod["metadata"]["labels"].as_object().unwrap();
    for selector in [
        &plugin["spec"]["selector"]["matchLabels"],
        &service["spec"]["selector"],
    ] {
        for (key, value) in selector.as_object().expect("a label map") {
            assert_eq!(
                pod_labels.get(key),
                Some(value),
                "pod labels {pod_labels:?} lack {key}={value}"
            );
        }
    }
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn examples_pass_server_dry_run_and_apply_as_written() {
    let stack = stack();
    let namespace = stack.namespace("examples");
    let dir = repo_root().join("manifests/examples");
    let dry = run_ok(
        namespace
            .kubectl()
            .args(["apply", "--dry-run=server", "-f"])
            .arg(&dir),
        None,
    );
    for (name, plugin) in examples() {
        let line = format!(
            "wasmplugin.extensions.istio.io/{} created (server dry run)",
            plugin["metadata"]["name"].as_str().unwrap()
        );
        assert!(dry.contains(&line), "{name}: {dry}");
    }

    run_ok(namespace.kubectl().args(["apply", "-f"]).arg(&dir), None);
    for (name, plugin) in examples() {
        let stored = run_ok(
            namespace.kubectl().args([
                "get",
                "wasmplugin",
                plugin["metadata"]["name"].as_str().unwrap(),
                "-o",
                "json",
            ]),
            None,
        );
        let stored: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            stored["spec"], plugin["spec"],
            "{name}: the API server kept the spec as written"
        );
    }
}

/// A kustomization in a temp dir that puts manifests/demo in `namespace`: the demo as shipped,
/// isolated per test run (kustomize renames the Namespace object too).
fn demo_overlay(namespace: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = repo_root().join("manifests/demo");
    // kustomize only accepts relative paths to a base.
    let depth = dir.path().components().count() - 1;
    let base = format!(
        "{}{}",
        "../".repeat(depth),
        demo.strip_prefix("/").unwrap().display()
    );
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("namespace: {namespace}\nresources:\n  - {base}\n"),
    )
    .expect("write kustomization.yaml");
    dir
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn demo_applies_with_kubectl_apply_k_and_its_pod_runs() {
    let stack = stack();
    let namespace = stack.namespace("demo");
    let ns = namespace.name.as_str();

    // The shipped kustomization as `kubectl apply -k` reads it (client-side: the real
    // wasm-demo namespace is left alone so parallel runs do not collide).
    let client = run_ok(
        stack
            .kubectl()
            .args(["apply", "--dry-run=client", "-k"])
            .arg(repo_root().join("manifests/demo")),
        None,
    );
    assert!(client.contains("namespace/wasm-demo"), "{client}");
    assert!(
        client.contains("wasmplugin.extensions.istio.io/context-logger"),
        "{client}"
    );

    let overlay = demo_overlay(ns);
    let apply_overlay = || {
        run_ok(
            stack.kubectl().arg("apply").arg("-k").arg(overlay.path()),
            None,
        )
    };
    let applied = apply_overlay();
    for object in [
        "serviceaccount/httpbin",
        "service/httpbin",
        "deployment.apps/httpbin",
        "wasmplugin.extensions.istio.io/context-logger",
    ] {
        assert!(applied.contains(object), "{object} not applied: {applied}");
    }
    // GitOps re-applies: nothing changes the second time.
    let again = apply_overlay();
    assert!(
        again.lines().all(|line| line.ends_with("unchanged")),
        "second apply changed something: {again}"
    );

    let labels = run_ok(
        stack.kubectl().args([
            "get",
            "namespace",
            ns,
            "-o",
            "jsonpath={.metadata.labels.istio-injection}",
        ]),
        None,
    );
    assert_eq!(labels, "enabled");

    // The controller-manager makes the pod, kwok runs it: the plugin's selector finds it, with
    // the log-level annotation and the istio-proxy container the logs are read from.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pod = loop {
        let pods: Value = serde_json::from_str(&run_ok(
            namespace
                .kubectl()
                .args(["get", "pods", "-l", "app=httpbin", "-o", "json"]),
            None,
        ))
        .unwrap();
        let running = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pod| pod["status"]["phase"] == "Running")
            .cloned();
        if let Some(pod) = running {
            break pod;
        }
        let why: Vec<&Value> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|pod| pod["status"]["conditions"].as_array().into_iter().flatten())
            .filter(|condition| condition["status"] != "True")
            .collect();
        assert!(
            Instant::now() < deadline,
            "no Running httpbin pod after 60s (is the kwok node schedulable?): {why:#?}\nkwok log: {}",
            stack.dir.join("logs/kwok.log").display()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_wasm_logs_readable(&pod);
    let plugin: Value = serde_json::from_str(&run_ok(
        namespace
            .kubectl()
            .args(["get", "wasmplugin", "context-logger", "-o", "json"]),
        None,
    ))
    .unwrap();
    for (key, value) in plugin["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&pod["metadata"]["labels"][key], value);
    }
}
