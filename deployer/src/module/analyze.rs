//! Parses and validates a module with wasmparser, then applies the host's loading rules.
use sha2::{Digest, Sha256};
use wasmparser::{
    BinaryReaderError, CompositeInnerType, ExternalKind, FuncType, Parser, Payload, TypeRef,
    Validator, WasmFeatures, types::Types,
};

use super::report::{Export, Import, Problem, Report};
use super::{abi, host};

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Inspects module bytes the way a proxy-wasm host would load them. Never fails: a file that
/// is not a loadable module yields a report whose `problems` say why.
pub fn inspect(bytes: &[u8]) -> Report {
    let mut report = Report {
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        abi_version: None,
        wasi: Vec::new(),
        exports: Vec::new(),
        imports: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(problem) = header_problem(bytes) {
        report.problems.push(problem);
        return report;
    }
    // Validation first: V8 compiles (and so validates) the whole module before linking it.
    // V8 also accepts the legacy exception-handling encoding emscripten emits for C++.
    let features = WasmFeatures::default() | WasmFeatures::LEGACY_EXCEPTIONS;
    let types = match Validator::new_with_features(features).validate_all(bytes) {
        Ok(types) => types,
        Err(err) => {
            report
                .problems
                .push(parse_problem(&err, bytes.len() as u64));
            return report;
        }
    };
    if let Err(err) = collect(bytes, &types, &mut report) {
        report
            .problems
            .push(parse_problem(&err, bytes.len() as u64));
        return report;
    }
    apply_host_rules(&mut report);
    report
}

fn header_problem(bytes: &[u8]) -> Option<Problem> {
    if bytes.is_empty() {
        return Some(Problem::Empty);
    }
    if !bytes.starts_with(WASM_MAGIC) {
        return Some(not_wasm(bytes));
    }
    if bytes.len() < 8 {
        return Some(Problem::Truncated {
            offset: bytes.len() as u64,
            size: bytes.len() as u64,
            message: "the 8-byte header is incomplete".into(),
        });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
    if layer == 1 {
        return Some(Problem::Component);
    }
    if version != 1 || layer != 0 {
        return Some(Problem::UnsupportedVersion {
            version: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        });
    }
    None
}

fn not_wasm(bytes: &[u8]) -> Problem {
    let head = &bytes[..bytes.len().min(64)];
    let valid = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut at byte 64 is still text.
        Err(err) => std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or_default(),
    };
    let text = !valid.is_empty()
        && valid.len() + 4 >= head.len()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    if text {
        let first_line = valid.lines().next().unwrap_or_default();
        let mut starts_with: String = first_line.chars().take(32).collect();
        if first_line.chars().count() > 32 {
            starts_with.push('…');
        }
        Problem::NotWasm {
            starts_with: starts_with.escape_debug().to_string(),
            text: true,
        }
    } else {
        let starts_with = bytes
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        Problem::NotWasm {
            starts_with,
            text: false,
        }
    }
}

fn parse_problem(err: &BinaryReaderError, size: u64) -> Problem {
    let message = err.message().to_string();
    if message.contains("unexpected end") || err.offset() >= size {
        Problem::Truncated {
            offset: err.offset(),
            size,
            message,
        }
    } else {
        Problem::Malformed {
            offset: err.offset(),
            message,
        }
    }
}

fn collect(bytes: &[u8], types: &Types, report: &mut Report) -> Result<(), BinaryReaderError> {
    // Imported functions come first in the function index space.
    let mut imported_functions = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    let signature = match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => {
                            let signature = function_signature(types, imported_functions);
                            imported_functions += 1;
                            signature
                        }
                        _ => None,
                    };
                    report.imports.push(Import {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                        kind: type_ref_kind(&import.ty),
                        signature,
                    });
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    let kind = external_kind(export.kind);
                    let signature = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            function_signature(types, export.index)
                        }
                        _ => None,
                    };
                    report.exports.push(Export {
                        name: export.name.to_string(),
                        kind,
                        signature,
                        meaning: String::new(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn function_signature(types: &Types, index: u32) -> Option<String> {
    let types = types.as_ref();
    if index >= types.function_count() {
        return None;
    }
    match &types[types.core_function_at(index)].composite_type.inner {
        CompositeInnerType::Func(func) => Some(format_signature(func)),
        _ => None,
    }
}

fn format_signature(func: &FuncType) -> String {
    let list = |types: &[wasmparser::ValType]| {
        types
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(func.params()), list(func.results()))
}

/// The signature the host calls `name` with: all arguments and the result are i32 words.
fn expected_signature(params: usize, returns: bool) -> String {
    format!(
        "({}) -> ({})",
        vec!["i32"; params].join(", "),
        if returns { "i32" } else { "" }
    )
}

fn external_kind(kind: ExternalKind) -> &'static str {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

fn type_ref_kind(ty: &TypeRef) -> &'static str {
    match ty {
        TypeRef::Func(_) | TypeRef::FuncExact(_) => "func",
        TypeRef::Table(_) => "table",
        TypeRef::Memory(_) => "memory",
        TypeRef::Global(_) => "global",
        TypeRef::Tag(_) => "tag",
    }
}

fn apply_host_rules(report: &mut Report) {
    let func_exports: Vec<&Export> = report
        .exports
        .iter()
        .filter(|export| export.kind == "func")
        .collect();

    // The first recognised marker in export order decides, as in the host.
    report.abi_version = func_exports
        .iter()
        .find_map(|export| abi::abi_version(&export.name))
        .map(str::to_string);
    if report.abi_version.is_none() {
        match func_exports
            .iter()
            .find(|export| export.name.starts_with(abi::ABI_MARKER_PREFIX))
        {
            Some(export) => report.problems.push(Problem::UnknownAbiVersion {
                export: export.name.clone(),
            }),
            None => report.problems.push(Problem::MissingAbiVersion),
        }
    }

    if !func_exports
        .iter()
        .any(|export| abi::ALLOCATORS.contains(&export.name.as_str()))
    {
        report.problems.push(Problem::NoAllocator);
    }

    let memory = report.exports.iter().any(|export| export.kind == "memory")
        || report.imports.iter().any(|import| import.kind == "memory");
    if !memory {
        report.problems.push(Problem::NoMemory);
    }

    let has_initialize = func_exports
        .iter()
        .any(|export| export.name == "_initialize");
    let mut bad_signatures = Vec::new();
    for export in &func_exports {
        let Some(callback) = abi::callback(&export.name) else {
            continue;
        };
        if !abi::host_calls(callback.name, has_initialize) {
            continue;
        }
        let expected = expected_signature(
            abi::expected_params(callback, report.abi_version.as_deref()),
            callback.returns,
        );
        if export.signature.as_deref() != Some(expected.as_str()) {
            bad_signatures.push(Problem::BadSignature {
                name: export.name.clone(),
                expected,
                found: export.signature.clone().unwrap_or_else(|| "unknown".into()),
            });
        }
    }
    report.problems.extend(bad_signatures);

    for import in &report.imports {
        match import.kind {
            // Envoy creates the memory or table the module asks for.
            "memory" | "table" => {}
            "func" => {
                let found = import.signature.clone().unwrap_or_else(|| "unknown".into());
                match host::lookup(&import.module, &import.name, report.abi_version.as_deref()) {
                    host::Lookup::Provided(expected) if expected != found => {
                        report.problems.push(Problem::ImportSignature {
                            module: import.module.clone(),
                            name: import.name.clone(),
                            expected,
                            found,
                        });
                    }
                    host::Lookup::Provided(_) => {}
                    host::Lookup::OtherAbi(versions) => {
                        report.problems.push(Problem::MissingHostFunction {
                            module: import.module.clone(),
                            name: import.name.clone(),
                            note: format!(
                                " (Envoy provides it only to modules of ABI {}; this one declares {})",
                                versions.join(", "),
                                report.abi_version.as_deref().unwrap_or("none")
                            ),
                        });
                    }
                    host::Lookup::Missing if known_module(&import.module) => {
                        report.problems.push(Problem::MissingHostFunction {
                            module: import.module.clone(),
                            name: import.name.clone(),
                            note: String::new(),
                        });
                    }
                    host::Lookup::Missing => report.problems.push(Problem::UnsupportedImport {
                        module: import.module.clone(),
                        name: import.name.clone(),
                        kind: import.kind,
                    }),
                }
            }
            // Globals and tags: the V8 runtime links neither.
            _ => report.problems.push(Problem::UnsupportedImport {
                module: import.module.clone(),
                name: import.name.clone(),
                kind: import.kind,
            }),
        }
    }

    let mut wasi: Vec<String> = report
        .imports
        .iter()
        .filter(|import| abi::WASI_MODULES.contains(&import.module.as_str()))
        .map(|import| import.module.clone())
        .collect();
    wasi.sort();
    wasi.dedup();
    report.wasi = wasi;

    // Envoy skips callbacks a module does not export: with none of these it sees no traffic.
    let sees_traffic = func_exports
        .iter()
        .any(|export| abi::TRAFFIC_CALLBACKS.contains(&export.name.as_str()));
    if report.abi_version.is_some() && !sees_traffic {
        report.warnings.push(format!(
            "exports none of {}: Envoy loads it, but it never sees a stream or connection",
            abi::TRAFFIC_CALLBACKS.join(", ")
        ));
    }

    for export in &mut report.exports {
        export.meaning = match abi::callback(&export.name) {
            Some(callback) if export.kind == "func" => callback.meaning.to_string(),
            _ => abi::other_meaning(&export.name, export.kind),
        };
    }
}

fn known_module(module: &str) -> bool {
    module == abi::HOST_MODULE || abi::WASI_MODULES.contains(&module)
}
