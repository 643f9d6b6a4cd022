//! The real `helm` (built from its Go module by `scripts/setup helm`) and `kubectl`, run on the
//! repository's chart and manifests, plus parsing of the multi-document YAML they print.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// Runs `command` with `stdin` fed in; returns its output whatever the exit status.
pub fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    let description = format!("{command:?}");
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {description}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("write to {description}: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {description}: {e}"))
}

/// Runs `command` and returns its stdout; panics with its stderr when it fails.
pub fn run_ok(command: &mut Command, stdin: Option<&str>) -> String {
    let description = format!("{command:?}");
    let output = run(command, stdin);
    assert!(
        output.status.success(),
        "{description} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
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
    documents(&run_ok(&mut command, None))
}
