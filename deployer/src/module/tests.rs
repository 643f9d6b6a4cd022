//! Host rules checked against small modules written in the text format.
use super::{Problem, Report, inspect};

const LOADABLE: &str = r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "_initialize"))
)"#;

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test module is valid WAT")
}

fn report(text: &str) -> Report {
    inspect(&wat(text))
}

fn codes(report: &Report) -> Vec<&'static str> {
    report.problems.iter().map(Problem::code).collect()
}

/// LOADABLE with one line replaced.
fn variant(from: &str, to: &str) -> Report {
    assert!(LOADABLE.contains(from), "{from} is in the base module");
    report(&LOADABLE.replace(from, to))
}

#[test]
fn minimal_module_is_loadable() {
    let report = report(LOADABLE);
    assert!(report.loadable(), "{:?}", report.problems);
    assert_eq!(report.abi_version.as_deref(), Some("0.2.1"));
    assert_eq!(report.wasi, vec!["wasi_snapshot_preview1".to_string()]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.sha256.len(), 64);
    let allocator = report
        .exports
        .iter()
        .find(|e| e.name == "proxy_on_memory_allocate")
        .expect("export listed");
    assert_eq!(allocator.signature.as_deref(), Some("(i32) -> (i32)"));
    assert!(
        allocator.meaning.contains("allocat"),
        "{}",
        allocator.meaning
    );
    let memory = report
        .exports
        .iter()
        .find(|e| e.name == "memory")
        .expect("memory listed");
    assert_eq!(memory.kind, "memory");
    let log = report
        .imports
        .iter()
        .find(|i| i.name == "proxy_log")
        .expect("import listed");
    assert_eq!((log.module.as_str(), log.kind), ("env", "func"));
    assert_eq!(log.signature.as_deref(), Some("(i32, i32, i32) -> (i32)"));
}

#[test]
fn missing_abi_marker_is_refused() {
    let report = variant(r#"(func (export "proxy_abi_version_0_2_1"))"#, "");
    assert_eq!(codes(&report), ["missing_abi_version"]);
    assert_eq!(report.abi_version, None);
}

#[test]
fn unknown_abi_marker_is_refused() {
    let report = variant(
        r#""proxy_abi_version_0_2_1""#,
        r#""proxy_abi_version_9_9_9""#,
    );
    assert_eq!(codes(&report), ["unknown_abi_version"]);
    assert!(
        report.problems[0]
            .to_string()
            .contains("proxy_abi_version_9_9_9")
    );
}

#[test]
fn abi_marker_must_be_a_function() {
    let report = variant(
        r#"(func (export "proxy_abi_version_0_2_1"))"#,
        r#"(global (export "proxy_abi_version_0_2_1") i32 (i32.const 0))"#,
    );
    assert_eq!(codes(&report), ["missing_abi_version"]);
}

#[test]
fn older_abi_versions_are_recognised() {
    let report = variant(
        r#""proxy_abi_version_0_2_1""#,
        r#""proxy_abi_version_0_2_0""#,
    );
    assert_eq!(report.abi_version.as_deref(), Some("0.2.0"));
    assert!(report.loadable());
}

#[test]
fn no_allocator_is_refused_and_malloc_is_enough() {
    let report = variant(r#""proxy_on_memory_allocate""#, r#""allocate""#);
    assert_eq!(codes(&report), ["no_allocator"]);
    let report = variant(r#""proxy_on_memory_allocate""#, r#""malloc""#);
    assert!(report.loadable(), "{:?}", report.problems);
    let malloc = report
        .exports
        .iter()
        .find(|e| e.name == "malloc")
        .expect("malloc listed");
    assert!(malloc.meaning.contains("older"), "{}", malloc.meaning);
}

#[test]
fn memory_must_be_exported_or_imported() {
    let report = variant(r#"(memory (export "memory") 1)"#, "(memory 1)");
    assert_eq!(codes(&report), ["no_memory"]);
    let report = variant(r#"(memory (export "memory") 1)"#, "");
    assert_eq!(codes(&report), ["no_memory"]);
    let imported = LOADABLE
        .replace(r#"(memory (export "memory") 1)"#, "")
        .replace("(module", r#"(module (import "env" "memory" (memory 1))"#);
    assert!(super::inspect(&wat(&imported)).loadable());
}

#[test]
fn callback_with_wrong_signature_is_refused() {
    let report = variant(
        r#"(func (export "proxy_on_context_create") (param i32 i32))"#,
        r#"(func (export "proxy_on_context_create") (param i32))"#,
    );
    assert_eq!(codes(&report), ["bad_signature"]);
    let message = report.problems[0].to_string();
    assert!(
        message.contains("(i32, i32) -> ()") && message.contains("(i32) -> ()"),
        "{message}"
    );
}

#[test]
fn header_callbacks_follow_the_abi_version() {
    let two_params =
        r#"(func (export "proxy_on_request_headers") (param i32 i32) (result i32) i32.const 0)"#;
    let report = variant(
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)"#,
        two_params,
    );
    assert_eq!(codes(&report), ["bad_signature"]);
    let abi_0_1 = LOADABLE
        .replace(
            r#"(param i32 i32 i32) (result i32) i32.const 0)"#,
            "(param i32 i32) (result i32) i32.const 0)",
        )
        .replace("proxy_abi_version_0_2_1", "proxy_abi_version_0_1_0");
    assert!(super::inspect(&wat(&abi_0_1)).loadable());
}

#[test]
fn start_is_checked_only_for_commands() {
    // With _initialize the host never looks at _start, so its shape does not matter.
    let report = variant(
        r#"(func (export "_initialize"))"#,
        r#"(func (export "_initialize")) (func (export "_start") (param i32))"#,
    );
    assert!(report.loadable(), "{:?}", report.problems);
    let report = variant(
        r#"(func (export "_initialize"))"#,
        r#"(func (export "_start") (param i32))"#,
    );
    assert_eq!(codes(&report), ["bad_signature"]);
}

#[test]
fn imports_outside_env_and_wasi_are_refused() {
    let report = variant(
        r#""wasi_snapshot_preview1" "fd_write""#,
        r#""wasi:io/streams" "write""#,
    );
    assert_eq!(codes(&report), ["unsupported_import"]);
    assert!(report.wasi.is_empty());
    let global = LOADABLE.replace("(module", r#"(module (import "env" "offset" (global i32))"#);
    assert_eq!(
        codes(&super::inspect(&wat(&global))),
        ["unsupported_import"]
    );
}

/// Envoy links imports by exact name and type: anything it does not register, under `env`
/// or WASI, fails the module, however plausible the name.
#[test]
fn imports_envoy_does_not_provide_are_refused() {
    for replacement in [
        r#""env" "proxy_loX""#,
        r#""env" "__cxa_throw""#,
        r#""wasi_snapshot_preview1" "fd_write_v2""#,
        r#""wasi_unstable" "sock_open""#,
    ] {
        let report = variant(r#""env" "proxy_log""#, replacement);
        assert_eq!(codes(&report), ["missing_host_function"], "{replacement}");
        assert!(!report.loadable());
        assert!(
            report.problems[0].to_string().contains("missing import"),
            "{}",
            report.problems[0]
        );
    }
}

#[test]
fn host_functions_with_another_type_are_refused() {
    // proxy_log is (i32, i32, i32) -> (i32); fd_write (i32, i32, i32, i32) -> (i32).
    for (name, import) in [
        (
            "env.proxy_log",
            r#"(import "env" "proxy_log" (func $log (param i32 i32) (result i32)))"#,
        ),
        (
            "env.proxy_log",
            r#"(import "env" "proxy_log" (func $log (param i32 i32 i32)))"#,
        ),
        (
            "env.proxy_log",
            r#"(import "env" "proxy_log" (func $log (param i32 i32 i64) (result i32)))"#,
        ),
    ] {
        let module = LOADABLE.replace(
            r#"(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))"#,
            import,
        );
        let report = super::inspect(&wat(&module));
        assert_eq!(codes(&report), ["import_signature"], "{import}");
        let message = report.problems[0].to_string();
        assert!(
            message.contains(name) && message.contains("(i32, i32, i32) -> (i32)"),
            "{message}"
        );
    }
    let wasi = variant(
        r#""wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))"#,
        r#""wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i64))"#,
    );
    assert_eq!(codes(&wasi), ["import_signature"]);
}

#[test]
fn abi_specific_host_functions_follow_the_abi() {
    let with = |import: &str| {
        LOADABLE.replace(
            "(module",
            &format!("(module (import \"env\" \"{import}\" (func (param i32) (result i32)))"),
        )
    };
    // LOADABLE declares ABI 0.2.1: proxy_get_log_level is there, 0.1.0's get_configuration not.
    assert!(super::inspect(&wat(&with("proxy_get_log_level"))).loadable());
    let report = super::inspect(&wat(&with("proxy_continue_stream")));
    assert!(report.loadable(), "{:?}", codes(&report));
    let old = LOADABLE
        .replace("proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0")
        .replace(
            "(module",
            r#"(module (import "env" "proxy_get_log_level" (func (param i32) (result i32)))"#,
        );
    let report = super::inspect(&wat(&old));
    assert_eq!(codes(&report), ["missing_host_function"]);
    assert!(
        report.problems[0]
            .to_string()
            .contains("only to modules of ABI 0.2.1")
    );
}

#[test]
fn emscripten_shims_are_linked() {
    let module = LOADABLE.replace(
        "(module",
        r#"(module (import "env" "emscripten_notify_memory_growth" (func (param i32))) (import "env" "pthread_equal" (func (param i32 i32) (result i32)))"#,
    );
    let report = super::inspect(&wat(&module));
    assert!(report.loadable(), "{:?}", codes(&report));
}

#[test]
fn no_traffic_callbacks_is_a_warning() {
    // Without proxy_on_context_create the host still calls the stream callbacks it finds.
    let report = variant(
        r#"(func (export "proxy_on_context_create") (param i32 i32))"#,
        "",
    );
    assert!(report.loadable());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let report = report_without_traffic();
    assert!(report.loadable());
    assert!(
        report.warnings[0].contains("never sees a stream"),
        "{}",
        report.warnings[0]
    );
}

fn report_without_traffic() -> Report {
    report(
        &LOADABLE
            .replace(r#"(func (export "proxy_on_context_create") (param i32 i32))"#, "")
            .replace(r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)"#, ""),
    )
}

#[test]
fn unwasm_inputs_say_what_they_are() {
    let text = inspect(b"hello world\nthis is not wasm\n");
    assert_eq!(codes(&text), ["not_wasm"]);
    assert!(
        text.problems[0]
            .to_string()
            .contains("text file starting with \"hello world\""),
        "{}",
        text.problems[0]
    );
    let elf = inspect(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    assert!(
        elf.problems[0].to_string().contains("7f 45 4c 46"),
        "{}",
        elf.problems[0]
    );
    assert_eq!(codes(&inspect(b"")), ["empty"]);
    let component = inspect(b"\0asm\x0d\x00\x01\x00");
    assert_eq!(codes(&component), ["component"]);
}

#[test]
fn truncated_module_names_the_offset() {
    let bytes = wat(LOADABLE);
    let cut = bytes.len() / 2;
    let report = inspect(&bytes[..cut]);
    assert_eq!(codes(&report), ["truncated"]);
    match &report.problems[0] {
        Problem::Truncated { offset, size, .. } => {
            assert_eq!(*size, cut as u64);
            assert!(*offset <= cut as u64);
        }
        other => panic!("expected truncated, got {other:?}"),
    }
    assert_eq!(codes(&inspect(&bytes[..6])), ["truncated"]);
}

#[test]
fn json_report_has_stable_fields() {
    let report = variant(r#"(func (export "proxy_abi_version_0_2_1"))"#, "");
    let json = serde_json::to_value(&report).expect("report serializes");
    assert_eq!(json["problems"][0]["kind"], "missing_abi_version");
    assert!(json["problems"][0]["message"].as_str().is_some());
    assert_eq!(json["abi_version"], serde_json::Value::Null);
    assert!(
        json["exports"]
            .as_array()
            .is_some_and(|exports| !exports.is_empty())
    );
}

#[test]
fn legacy_exception_handling_validates() {
    // emscripten's C++ exceptions; V8 (Envoy's default runtime) accepts them.
    let report = variant(
        r#"(func (export "_initialize"))"#,
        r#"(func (export "_initialize")) (tag $oops) (func try nop catch $oops end)"#,
    );
    assert!(report.loadable(), "{:?}", report.problems);
}
