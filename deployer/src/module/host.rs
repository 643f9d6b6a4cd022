//! The functions Envoy's proxy-wasm host links into a module, with their exact signatures.
//! Envoy's V8 runtime links every function import by `module.name` against this table and
//! fails the whole module on a name it lacks ("Failed to load Wasm module due to a missing
//! import") or a signature that differs ("... an import type mismatch"), so a module is
//! loadable only if each of its function imports is here, with this type.
//!
//! Source: proxy-wasm-cpp-host `include/proxy-wasm/exports.h` (the C++ signatures: `Word` is
//! i32 on wasm32, `int64_t`/`uint64_t` are i64, `void` returns nothing) and
//! `WasmBase::registerCallbacks` in `src/wasm.cc` (which names are registered, under which
//! import module, and which depend on the module's ABI version), as built into Envoy 1.40.
//! `tests/inspect.rs` loads one module importing every entry into the real Envoy 1.40, and
//! mutated ones it must refuse.

/// Which ABI versions a host function is registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    Any,
    Only(&'static [&'static str]),
}

/// One host function: `params` and `result` in wasm value types, one letter each
/// (`i` = i32, `I` = i64).
#[derive(Debug, Clone)]
pub struct HostFunction {
    pub module: &'static str,
    pub name: &'static str,
    params: &'static str,
    result: Option<char>,
    pub abi: Abi,
}

impl HostFunction {
    /// The signature as `inspect` prints imports: `(i32, i64) -> (i32)`.
    pub fn signature(&self) -> String {
        let types: Vec<&str> = self.params.chars().map(value_type).collect();
        let result = self.result.map(value_type).unwrap_or_default();
        format!("({}) -> ({result})", types.join(", "))
    }
}

fn value_type(letter: char) -> &'static str {
    if letter == 'I' { "i64" } else { "i32" }
}

const fn env(name: &'static str, params: &'static str) -> HostFunction {
    HostFunction {
        module: "env",
        name,
        params,
        result: Some('i'),
        abi: Abi::Any,
    }
}

const fn env_abi(
    name: &'static str,
    params: &'static str,
    abi: &'static [&'static str],
) -> HostFunction {
    HostFunction {
        abi: Abi::Only(abi),
        ..env(name, params)
    }
}

/// `FOR_ALL_HOST_FUNCTIONS` registered as `env.proxy_<name>`, the ABI-specific ones, and the
/// two emscripten shims registered under `env` without prefix.
const ENV: &[HostFunction] = &[
    env("proxy_log", "iii"),
    env("proxy_get_status", "iii"),
    env("proxy_set_property", "iiii"),
    env("proxy_get_property", "iiii"),
    env("proxy_send_local_response", "iiiiiiii"),
    env("proxy_get_shared_data", "iiiii"),
    env("proxy_set_shared_data", "iiiii"),
    env("proxy_register_shared_queue", "iii"),
    env("proxy_resolve_shared_queue", "iiiii"),
    env("proxy_dequeue_shared_queue", "iii"),
    env("proxy_enqueue_shared_queue", "iii"),
    env("proxy_get_header_map_value", "iiiii"),
    env("proxy_add_header_map_value", "iiiii"),
    env("proxy_replace_header_map_value", "iiiii"),
    env("proxy_remove_header_map_value", "iii"),
    env("proxy_get_header_map_pairs", "iii"),
    env("proxy_set_header_map_pairs", "iii"),
    env("proxy_get_header_map_size", "ii"),
    env("proxy_get_buffer_status", "iii"),
    env("proxy_get_buffer_bytes", "iiiii"),
    env("proxy_set_buffer_bytes", "iiiii"),
    env("proxy_http_call", "iiiiiiiiii"),
    env("proxy_grpc_call", "iiiiiiiiiiii"),
    env("proxy_grpc_stream", "iiiiiiiii"),
    env("proxy_grpc_close", "i"),
    env("proxy_grpc_cancel", "i"),
    env("proxy_grpc_send", "iiii"),
    env("proxy_set_tick_period_milliseconds", "i"),
    env("proxy_get_current_time_nanoseconds", "i"),
    env("proxy_define_metric", "iiii"),
    env("proxy_increment_metric", "iI"),
    env("proxy_record_metric", "iI"),
    env("proxy_get_metric", "ii"),
    env("proxy_set_effective_context", "i"),
    env("proxy_done", ""),
    env("proxy_call_foreign_function", "iiiiii"),
    env_abi("proxy_get_configuration", "ii", &["0.1.0"]),
    env_abi("proxy_continue_request", "", &["0.1.0"]),
    env_abi("proxy_continue_response", "", &["0.1.0"]),
    env_abi("proxy_clear_route_cache", "", &["0.1.0"]),
    env_abi("proxy_continue_stream", "i", &["0.2.0", "0.2.1"]),
    env_abi("proxy_close_stream", "i", &["0.2.0", "0.2.1"]),
    env_abi("proxy_get_log_level", "i", &["0.2.1"]),
    env("pthread_equal", "ii"),
    HostFunction {
        result: None,
        ..env("emscripten_notify_memory_growth", "i")
    },
];

/// `FOR_ALL_WASI_FUNCTIONS` with their cpp-host signatures, registered under both
/// `wasi_snapshot_preview1` and `wasi_unstable`. Some differ from the WASI specification
/// (`path_link`, `path_symlink`): Envoy links what cpp-host declares, so those are listed.
const WASI: &[(&str, &str, Option<char>)] = &[
    ("fd_write", "iiii", Some('i')),
    ("fd_read", "iiii", Some('i')),
    ("fd_seek", "iIii", Some('i')),
    ("fd_close", "i", Some('i')),
    ("fd_fdstat_get", "ii", Some('i')),
    ("fd_fdstat_set_flags", "ii", Some('i')),
    ("fd_fdstat_set_rights", "iII", Some('i')),
    ("environ_get", "ii", Some('i')),
    ("environ_sizes_get", "ii", Some('i')),
    ("args_get", "ii", Some('i')),
    ("args_sizes_get", "ii", Some('i')),
    ("clock_time_get", "iIi", Some('i')),
    ("clock_res_get", "ii", Some('i')),
    ("fd_advise", "iIIi", Some('i')),
    ("fd_allocate", "iII", Some('i')),
    ("fd_datasync", "i", Some('i')),
    ("fd_filestat_set_size", "iI", Some('i')),
    ("fd_filestat_set_times", "iIIi", Some('i')),
    ("fd_pread", "iiiIi", Some('i')),
    ("fd_pwrite", "iiiIi", Some('i')),
    ("fd_readdir", "iiiIi", Some('i')),
    ("fd_renumber", "ii", Some('i')),
    ("fd_sync", "i", Some('i')),
    ("fd_tell", "ii", Some('i')),
    ("path_create_directory", "iii", Some('i')),
    ("path_filestat_set_times", "iiiiIIi", Some('i')),
    ("path_link", "iiiiii", Some('i')),
    ("path_readlink", "iiiiii", Some('i')),
    ("path_remove_directory", "iii", Some('i')),
    ("path_rename", "iiiiii", Some('i')),
    ("path_symlink", "iiii", Some('i')),
    ("path_unlink_file", "iii", Some('i')),
    ("sock_accept", "iii", Some('i')),
    ("sock_recv", "iiiiii", Some('i')),
    ("sock_send", "iiiii", Some('i')),
    ("sock_shutdown", "ii", Some('i')),
    ("random_get", "ii", Some('i')),
    ("sched_yield", "", Some('i')),
    ("poll_oneoff", "iiii", Some('i')),
    ("proc_exit", "i", None),
    ("path_open", "iiiiiIIii", Some('i')),
    ("fd_prestat_get", "ii", Some('i')),
    ("fd_prestat_dir_name", "iii", Some('i')),
    ("path_filestat_get", "iiiii", Some('i')),
    ("fd_filestat_get", "ii", Some('i')),
];

pub const WASI_MODULES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable"];

/// Every function Envoy links, for any ABI version.
pub fn functions() -> Vec<HostFunction> {
    let mut all = ENV.to_vec();
    for module in WASI_MODULES {
        for &(name, params, result) in WASI {
            all.push(HostFunction {
                module,
                name,
                params,
                result,
                abi: Abi::Any,
            });
        }
    }
    all
}

/// What the host has for an import.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Linked, with this signature.
    Provided(String),
    /// Registered only for other ABI versions than the module's.
    OtherAbi(&'static [&'static str]),
    Missing,
}

/// Looks `module.name` up for a module of ABI `abi` (`None`: unknown, so any ABI's functions
/// count; the missing marker is reported on its own).
pub fn lookup(module: &str, name: &str, abi: Option<&str>) -> Lookup {
    let found = if module == "env" {
        ENV.iter()
            .find(|f| f.name == name)
            .map(|f| (f.signature(), f.abi))
    } else if WASI_MODULES.contains(&module) {
        WASI.iter()
            .find(|(n, _, _)| *n == name)
            .map(|&(name, params, result)| {
                let function = HostFunction {
                    module: "",
                    name,
                    params,
                    result,
                    abi: Abi::Any,
                };
                (function.signature(), Abi::Any)
            })
    } else {
        None
    };
    match found {
        None => Lookup::Missing,
        Some((signature, Abi::Any)) => Lookup::Provided(signature),
        Some((signature, Abi::Only(versions))) => match abi {
            Some(abi) if !versions.contains(&abi) => Lookup::OtherAbi(versions),
            _ => Lookup::Provided(signature),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_read_like_inspect_prints_them() {
        assert_eq!(
            lookup("env", "proxy_log", Some("0.2.1")),
            Lookup::Provided("(i32, i32, i32) -> (i32)".into())
        );
        assert_eq!(
            lookup("wasi_unstable", "proc_exit", None),
            Lookup::Provided("(i32) -> ()".into())
        );
        assert_eq!(
            lookup("wasi_snapshot_preview1", "clock_time_get", None),
            Lookup::Provided("(i32, i64, i32) -> (i32)".into())
        );
        assert_eq!(lookup("env", "proxy_loX", None), Lookup::Missing);
        assert_eq!(lookup("other", "proxy_log", None), Lookup::Missing);
        assert_eq!(
            lookup("env", "proxy_get_log_level", Some("0.2.0")),
            Lookup::OtherAbi(&["0.2.1"])
        );
        assert_eq!(
            lookup("env", "proxy_get_configuration", Some("0.2.1")),
            Lookup::OtherAbi(&["0.1.0"])
        );
    }

    #[test]
    fn names_are_unique_per_module() {
        let all = functions();
        for (i, f) in all.iter().enumerate() {
            assert!(
                !all[..i]
                    .iter()
                    .any(|g| g.module == f.module && g.name == f.name),
                "{}.{} twice",
                f.module,
                f.name
            );
        }
        assert_eq!(all.len(), ENV.len() + 2 * WASI.len());
    }
}
