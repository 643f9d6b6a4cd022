//! `deployer build` with the real toolchain: the bundled filter, another crate via
//! --manifest-path, and the errors a user meets (missing crate, unknown package, compile error).
mod support;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use support::{tools, wasm};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The command failed; its stderr, to check the reason.
fn failed_stderr(output: &std::process::Output) -> String {
    assert!(!output.status.success());
    stderr_of(output)
}

/// `deployer build ARGS --manifest-path <this workspace>/Cargo.toml`.
fn build_in_workspace(args: &[&str]) -> std::process::Output {
    tools::deployer()
        .arg("build")
        .args(args)
        .arg("--manifest-path")
        .arg(tools::repo_root().join("Cargo.toml"))
        .output()
        .expect("run build")
}

/// Copies the tiny-filter fixture crate into a temp dir (cargo writes Cargo.lock next to it).
fn tiny_filter_crate() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-filter");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir src");
    for file in ["Cargo.toml", "src/lib.rs"] {
        std::fs::copy(source.join(file), dir.path().join(file)).expect("copy fixture");
    }
    let manifest = dir.path().join("Cargo.toml");
    (dir, manifest)
}

/// Builds of other crates share the workspace's wasm target dir, so std (built from source
/// on the Debian route) is compiled once for all tests.
fn shared_target_dir() -> PathBuf {
    tools::repo_root().join("target")
}

#[test]
fn build_json_describes_a_loadable_filter() {
    let built = wasm::build_filter_json();
    assert_eq!(built["package"], "context-logger");
    assert_eq!(built["target"], "wasm32-wasip1");
    assert_eq!(built["profile"], "wasm-release");
    assert_eq!(built["abi_version"], "0.2.1");
    assert_eq!(built["loadable"], true, "{built}");
    assert!(
        matches!(built["toolchain"].as_str(), Some("rustup" | "debian")),
        "{built}"
    );

    let module = PathBuf::from(built["module"].as_str().expect("module path"));
    assert_eq!(module.extension().and_then(|e| e.to_str()), Some("wasm"));
    assert!(
        module.starts_with(shared_target_dir().join("wasm-build")),
        "builds go to target/wasm-build/<toolchain>, away from the host build's lock: {}",
        module.display()
    );
    let bytes = std::fs::read(&module).expect("read module");
    assert_eq!(built["size"], bytes.len() as u64);
    assert_eq!(built["sha256"], hex::encode(Sha256::digest(&bytes)));
    assert!(built["seconds"].as_f64().is_some());
}

#[test]
fn built_filter_exports_the_abi_marker() {
    let module = wasm::filter_module();
    let output = tools::deployer()
        .args(["inspect", "-o", "json"])
        .arg(&module)
        .output()
        .expect("run inspect");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let exports: Vec<&str> = report["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for name in [
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "memory",
    ] {
        assert!(exports.contains(&name), "{name} missing from {exports:?}");
    }
}

#[test]
fn build_text_output_names_path_size_sha256_and_abi() {
    let module = wasm::filter_module();
    let output = build_in_workspace(&["-p", "context-logger"]);
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{}\n{stdout}", stderr_of(&output));
    let sha256 = hex::encode(Sha256::digest(std::fs::read(&module).expect("read module")));
    for expected in [
        format!("module   {}", module.display()),
        format!("sha256   {sha256}"),
        "ABI      proxy-wasm 0.2.1".to_string(),
        "loadable by Envoy: yes".to_string(),
        "bytes".to_string(),
    ] {
        assert!(stdout.contains(&expected), "`{expected}` not in:\n{stdout}");
    }
    // Not a terminal: cargo's own progress stays out of the output.
    assert!(
        !stderr_of(&output).contains("Compiling"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn manifest_path_builds_another_crate() {
    let (dir, _manifest) = tiny_filter_crate();
    // Relative to where the user stands, as typed.
    let output = tools::deployer()
        .current_dir(dir.path().parent().expect("temp dir has a parent"))
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .args(["build", "-o", "json", "--manifest-path"])
        .arg(Path::new(dir.path().file_name().expect("temp dir name")).join("Cargo.toml"))
        .output()
        .expect("run build");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let built: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(built["package"], "tiny-filter");
    assert_eq!(built["loadable"], true, "{built}");
    assert!(
        built["module"]
            .as_str()
            .is_some_and(|path| path.ends_with("tiny_filter.wasm")),
        "{built}"
    );
}

#[test]
fn manifest_path_to_a_missing_crate_fails_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-crate/Cargo.toml");
    let output = tools::deployer()
        .args(["build", "--manifest-path"])
        .arg(&missing)
        .output()
        .expect("run build");
    let stderr = failed_stderr(&output);
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(stdout_of(&output).is_empty());
}

#[test]
fn unknown_package_lists_the_workspace_packages() {
    let stderr = failed_stderr(&build_in_workspace(&["-p", "no-such-filter"]));
    assert!(
        stderr.contains("no package `no-such-filter`") && stderr.contains("context-logger"),
        "{stderr}"
    );
}

#[test]
fn crate_without_cdylib_is_refused() {
    let stderr = failed_stderr(&build_in_workspace(&["-p", "deployer"]));
    assert!(
        stderr.contains("builds no cdylib") && stderr.contains("crate-type"),
        "{stderr}"
    );
}

#[test]
fn compile_error_shows_the_compiler_message() {
    let (dir, manifest) = tiny_filter_crate();
    std::fs::write(
        dir.path().join("src/lib.rs"),
        "pub fn broken() -> u32 {\n    \"not a number\"\n}\n",
    )
    .expect("write broken lib");
    let output = tools::deployer()
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .args(["build", "-o", "json", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("run build");
    let stderr = failed_stderr(&output);
    assert!(
        stderr.contains("cargo build of `tiny-filter` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mismatched types") && stderr.contains("lib.rs"),
        "{stderr}"
    );
    assert!(stdout_of(&output).is_empty(), "no JSON for a failed build");
}
