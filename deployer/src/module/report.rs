//! The result of inspecting a module: what it exports and imports, and the loadability verdict.
use std::fmt;

use serde::Serialize;
use serde::ser::SerializeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub size: u64,
    pub sha256: String,
    /// Proxy-wasm ABI version from the `proxy_abi_version_*` marker, e.g. "0.2.1".
    pub abi_version: Option<String>,
    /// WASI import modules the module links (empty: no WASI imports).
    pub wasi: Vec<String>,
    pub exports: Vec<Export>,
    pub imports: Vec<Import>,
    /// Why Envoy would refuse the module; empty when it is loadable.
    pub problems: Vec<Problem>,
    /// Things that load but probably do not do what the author meant.
    pub warnings: Vec<String>,
}

impl Report {
    /// Envoy's proxy-wasm host would load and start this module.
    pub fn loadable(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn exports_name(&self, name: &str) -> bool {
        self.exports.iter().any(|export| export.name == name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub name: String,
    /// func, memory, global, table or tag.
    pub kind: &'static str,
    /// For functions, e.g. "(i32, i32) -> i32".
    pub signature: Option<String>,
    pub meaning: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub kind: &'static str,
    pub signature: Option<String>,
}

/// One reason Envoy would refuse the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Empty,
    NotWasm {
        starts_with: String,
        text: bool,
    },
    Component,
    UnsupportedVersion {
        version: u32,
    },
    Truncated {
        offset: u64,
        size: u64,
        message: String,
    },
    Malformed {
        offset: u64,
        message: String,
    },
    MissingAbiVersion,
    UnknownAbiVersion {
        export: String,
    },
    NoAllocator,
    NoMemory,
    BadSignature {
        name: String,
        expected: String,
        found: String,
    },
    UnsupportedImport {
        module: String,
        name: String,
        kind: &'static str,
    },
    /// A function import from `env` or WASI that Envoy does not register.
    MissingHostFunction {
        module: String,
        name: String,
        note: String,
    },
    /// A host function imported with another type than Envoy gives it.
    ImportSignature {
        module: String,
        name: String,
        expected: String,
        found: String,
    },
}

impl Problem {
    /// Stable identifier for scripts (`-o json`).
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Empty => "empty",
            Problem::NotWasm { .. } => "not_wasm",
            Problem::Component => "component",
            Problem::UnsupportedVersion { .. } => "unsupported_version",
            Problem::Truncated { .. } => "truncated",
            Problem::Malformed { .. } => "malformed",
            Problem::MissingAbiVersion => "missing_abi_version",
            Problem::UnknownAbiVersion { .. } => "unknown_abi_version",
            Problem::NoAllocator => "no_allocator",
            Problem::NoMemory => "no_memory",
            Problem::BadSignature { .. } => "bad_signature",
            Problem::UnsupportedImport { .. } => "unsupported_import",
            Problem::MissingHostFunction { .. } => "missing_host_function",
            Problem::ImportSignature { .. } => "import_signature",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => write!(f, "the file is empty"),
            Problem::NotWasm {
                starts_with,
                text: true,
            } => {
                write!(
                    f,
                    "not WebAssembly at all: a text file starting with \"{starts_with}\" (a module starts with \\0asm)"
                )
            }
            Problem::NotWasm {
                starts_with,
                text: false,
            } => {
                write!(
                    f,
                    "not WebAssembly at all: it starts with bytes {starts_with}, not \\0asm"
                )
            }
            Problem::Component => write!(
                f,
                "a WebAssembly component, not a core module: proxy-wasm hosts load core modules (build for wasm32-wasip1, not wasip2)"
            ),
            Problem::UnsupportedVersion { version } => {
                write!(
                    f,
                    "WebAssembly binary version {version} (hosts load version 1)"
                )
            }
            Problem::Truncated {
                offset,
                size,
                message,
            } => write!(
                f,
                "truncated: parsing stops at byte {offset} of {size} ({message}); was the download or copy cut short?"
            ),
            Problem::Malformed { offset, message } => {
                write!(f, "malformed module at byte {offset}: {message}")
            }
            Problem::MissingAbiVersion => write!(
                f,
                "no proxy_abi_version_* export: not a proxy-wasm module (Envoy: \"Missing or unknown Proxy-Wasm ABI version\")"
            ),
            Problem::UnknownAbiVersion { export } => write!(
                f,
                "unknown ABI version export {export}: Envoy knows proxy_abi_version_0_1_0, 0_2_0 and 0_2_1"
            ),
            Problem::NoAllocator => write!(
                f,
                "no allocator export (proxy_on_memory_allocate or malloc): the host cannot pass data into the module"
            ),
            Problem::NoMemory => write!(
                f,
                "no memory export: the host cannot read or write the module's memory"
            ),
            Problem::BadSignature {
                name,
                expected,
                found,
            } => write!(
                f,
                "{name} has signature {found}, the host calls it as {expected} (Envoy: \"Bad function signature\")"
            ),
            Problem::UnsupportedImport { module, name, kind } => {
                let hint = if *kind == "func" {
                    "Envoy provides env (proxy-wasm), wasi_snapshot_preview1 and wasi_unstable only"
                } else {
                    "Envoy links only function, memory and table imports"
                };
                write!(f, "imports {kind} {module}.{name}: {hint}")
            }
            Problem::MissingHostFunction { module, name, note } => write!(
                f,
                "imports {module}.{name}, which Envoy does not provide{note} (Envoy: \"Failed to load Wasm module due to a missing import\")"
            ),
            Problem::ImportSignature {
                module,
                name,
                expected,
                found,
            } => write!(
                f,
                "imports {module}.{name} as {found}, but Envoy provides it as {expected} (Envoy: \"import type mismatch\")"
            ),
        }
    }
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let offset = match self {
            Problem::Truncated { offset, .. } | Problem::Malformed { offset, .. } => Some(*offset),
            _ => None,
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", self.code())?;
        map.serialize_entry("message", &self.to_string())?;
        if let Some(offset) = offset {
            map.serialize_entry("offset", &offset)?;
        }
        map.end()
    }
}
