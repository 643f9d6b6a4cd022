//! Wasm modules for tests: the real filter built by the real `deployer build` (once per test
//! process), and small hand-written modules from `tests/fixtures/*.wat`.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The filter (package `context-logger`) built to wasm32-wasip1 by `deployer build -o json`.
/// The first caller in a test process builds it (a warm build takes under a second); a build
/// failure fails the test with cargo's error.
pub fn filter_module() -> PathBuf {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(build_filter).clone()
}

/// `deployer build -o json` of the bundled filter, parsed.
pub fn build_filter_json() -> serde_json::Value {
    let manifest = super::tools::repo_root().join("Cargo.toml");
    let output = super::tools::deployer()
        .args([
            "build",
            "-o",
            "json",
            "-p",
            "context-logger",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .expect("run deployer build");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`deployer build` of the filter failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("build -o json printed no JSON ({err}):\n{stdout}"))
}

fn build_filter() -> PathBuf {
    let built = build_filter_json();
    let module = PathBuf::from(
        built["module"]
            .as_str()
            .unwrap_or_else(|| panic!("no module path in {built}")),
    );
    assert!(
        module.is_file(),
        "deployer build reported {} but it does not exist",
        module.display()
    );
    module
}

/// A hand-written module from `tests/fixtures/<name>.wat`, compiled into `dir`.
pub fn fixture_module(name: &str, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.wat"));
    let bytes = wat::parse_file(&source)
        .unwrap_or_else(|err| panic!("compile {}: {err}", source.display()));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
    path
}

/// A small module Envoy's proxy-wasm host would load (ABI marker, allocator, memory, one
/// callback); `label` goes into its data, so each test file's module has its own digest.
pub fn loadable_module(label: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (memory (export "memory") 1)
             (func (export "proxy_abi_version_0_2_1"))
             (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
             (func (export "proxy_on_context_create") (param i32 i32))
             (data (i32.const 0) "{label}"))"#
    ))
    .expect("valid wat")
}
