//! manifests/examples and manifests/demo with the real kubectl (and its kustomize), statically
//! and against the local stack's kube-apiserver with the WasmPlugin CRD.
mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::helm::{documents, kubectl, only, run_ok};
use support::tools::repo_root;

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

#[test]
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
