//! `deployer inspect` verdicts on the real built filter and on files Envoy would refuse.
mod support;

use std::path::{Path, PathBuf};

use support::{tools, wasm};

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

fn inspect(args: &[&str], module: &Path) -> Run {
    let output = tools::deployer()
        .arg("inspect")
        .args(args)
        .arg(module)
        .output()
        .expect("run inspect");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn inspect_json(module: &Path) -> (bool, serde_json::Value) {
    let run = inspect(&["-o", "json"], module);
    let value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|err| panic!("{err}: {}", run.stdout));
    (run.success, value)
}

/// The verdict is "not loadable", failing the command, for the reason `why`.
fn assert_not_loadable(run: &Run, why: &str) {
    assert!(!run.success);
    assert!(
        run.stdout.contains("loadable by Envoy: no"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(why), "{}", run.stdout);
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

#[test]
fn built_filter_is_loadable() {
    let run = inspect(&[], &wasm::filter_module());
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "ABI      proxy-wasm 0.2.1",
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "allocator",
        "WASI     ",
        "loadable by Envoy: yes",
    ] {
        assert!(
            run.stdout.contains(expected),
            "`{expected}` not in:\n{}",
            run.stdout
        );
    }
}

#[test]
fn built_filter_json_report() {
    let module = wasm::filter_module();
    let (success, report) = inspect_json(&module);
    assert!(success);
    assert_eq!(report["loadable"], true);
    assert_eq!(report["abi_version"], "0.2.1");
    assert_eq!(report["source"], module.display().to_string());
    assert_eq!(
        report["size"],
        std::fs::metadata(&module).expect("stat").len()
    );
    assert_eq!(report["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(report["problems"], serde_json::json!([]));
    // `wasi` names exactly the WASI modules among the imports (whether the filter needs WASI
    // depends on the toolchain's std).
    let mut wasi_imports: Vec<&str> = report["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .filter_map(|import| import["module"].as_str())
        .filter(|module| module.starts_with("wasi_"))
        .collect();
    wasi_imports.dedup();
    assert_eq!(report["wasi"], serde_json::json!(wasi_imports));
    let marker = report["exports"]
        .as_array()
        .and_then(|exports| {
            exports
                .iter()
                .find(|e| e["name"] == "proxy_abi_version_0_2_1")
        })
        .unwrap_or_else(|| panic!("no ABI marker in {report}"));
    assert_eq!(marker["kind"], "func");
    assert!(
        marker["meaning"]
            .as_str()
            .is_some_and(|m| m.contains("0.2.1")),
        "{marker}"
    );
}

#[test]
fn truncated_module_is_not_loadable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(wasm::filter_module()).expect("read module");
    let truncated = write(dir.path(), "truncated.wasm", &bytes[..bytes.len() / 2]);
    assert_not_loadable(
        &inspect(&[], &truncated),
        "truncated: parsing stops at byte",
    );

    let (success, report) = inspect_json(&truncated);
    assert!(!success);
    assert_eq!(report["problems"][0]["kind"], "truncated", "{report}");
    assert!(
        report["problems"][0]["offset"].as_u64().is_some(),
        "{report}"
    );
}

#[test]
fn text_file_is_not_wasm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = write(dir.path(), "filter.wasm", b"<html>404 Not Found</html>\n");
    assert_not_loadable(
        &inspect(&[], &text),
        "not WebAssembly at all: a text file starting with \"<html>404",
    );
    let (_, report) = inspect_json(&text);
    assert_eq!(report["problems"][0]["kind"], "not_wasm");
}

#[test]
fn wasm_without_abi_marker_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = wasm::fixture_module("no-abi", dir.path());
    let run = inspect(&[], &module);
    assert_not_loadable(&run, "no proxy_abi_version_* export");
    assert!(run.stdout.contains("ABI      none"), "{}", run.stdout);

    let (success, report) = inspect_json(&module);
    assert!(!success);
    assert_eq!(report["loadable"], false);
    assert_eq!(
        report["problems"][0]["kind"], "missing_abi_version",
        "{report}"
    );
    assert_eq!(report["wasi"], serde_json::json!([]));
}

#[test]
fn minimal_hand_written_module_is_loadable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = wasm::fixture_module("minimal", dir.path());
    let run = inspect(&[], &module);
    assert!(run.success, "{}", run.stdout);
    assert!(
        run.stdout.contains("WASI     no WASI imports"),
        "{}",
        run.stdout
    );
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.wasm");
    let run = inspect(&[], &missing);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains(&format!("cannot read module {}", missing.display())),
        "{}",
        run.stderr
    );
}
