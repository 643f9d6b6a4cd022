//! The real `helm` (built from its Go module by `scripts/setup helm`) and `kubectl`, run on the
//! repository's chart and manifests, plus parsing of the multi-document YAML they print.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use super::tools;

pub fn chart_dir() -> PathBuf {
    tools::repo_root().join("charts").join("wasm-plugin")
}

/// `helm` with its config, cache and data directories under cargo's per-target temp dir, so a
/// test run neither reads nor writes the user's helm state (repositories, plugins, registry
/// logins).
pub fn helm() -> Command {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut command = Command::new(tools::require("helm"));
    command
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_KUBECONTEXT");
    command
}

pub fn kubectl() -> Command {
    Command::new(tools::require("kubectl"))
}

/// Every non-empty document of a multi-document YAML stream, as JSON values.
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|e| panic!("parse YAML: {e}\n{yaml}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

/// The one document of `kind` in `documents`; panics when there is not exactly one.
pub fn only<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let mut matching = documents.iter().filter(|d| d["kind"] == kind);
    let first = matching
        .next()
        .unwrap_or_else(|| panic!("no {kind} in {documents:#?}"));
    assert!(
        matching.next().is_none(),
        "more than one {kind} in {documents:#?}"
    );
    first
}

/// `helm template RELEASE charts/wasm-plugin -n NAMESPACE ARGS...`, parsed.
pub fn template(release: &str, namespace: &str, args: &[&str]) -> Vec<Value> {
    let chart = chart_dir();
    let mut command = helm();
    command
        .arg("template")
        .arg(release)
        .arg(&chart)
        .args(["--namespace", namespace])
        .args(args);
    documents(&tools::run_ok(&mut command, None))
}
