//! What a proxy-wasm host (Envoy's proxy-wasm-cpp-host) looks for in a module: the ABI version
//! marker, the allocator, the callbacks it calls with their exact signatures, and the import
//! modules it links. Signatures matter: the host refuses a module whose callback has the right
//! name but the wrong type ("Bad function signature"), so they are checked, not just listed.

/// ABI marker exports the host recognises; the first one found in export order decides.
pub const ABI_VERSIONS: &[(&str, &str)] = &[
    ("proxy_abi_version_0_1_0", "0.1.0"),
    ("proxy_abi_version_0_2_0", "0.2.0"),
    ("proxy_abi_version_0_2_1", "0.2.1"),
];

pub const ABI_MARKER_PREFIX: &str = "proxy_abi_version_";

/// Import modules a proxy-wasm host links; anything else fails with "missing import".
pub const HOST_MODULE: &str = "env";
pub const WASI_MODULES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable"];

/// A function the host may call, with its signature in i32 words (wasm32 pointers and sizes).
pub struct Callback {
    pub name: &'static str,
    pub params: usize,
    pub returns: bool,
    pub meaning: &'static str,
}

const fn cb(name: &'static str, params: usize, returns: bool, meaning: &'static str) -> Callback {
    Callback {
        name,
        params,
        returns,
        meaning,
    }
}

/// Allocators, in the order the host tries them: `malloc` wins when both are exported.
pub const ALLOCATORS: &[&str] = &["malloc", "proxy_on_memory_allocate"];

pub const CALLBACKS: &[Callback] = &[
    cb(
        "malloc",
        1,
        true,
        "allocator (older SDKs, emscripten, TinyGo): the host allocates guest memory with it; preferred over proxy_on_memory_allocate",
    ),
    cb(
        "proxy_on_memory_allocate",
        1,
        true,
        "allocator: the host allocates guest memory with it to pass headers, bodies and configuration",
    ),
    cb(
        "_initialize",
        0,
        false,
        "WASI reactor initializer: called once when the VM starts (runs constructors)",
    ),
    cb(
        "_start",
        0,
        false,
        "WASI command entry point: called once when the VM starts, only when there is no _initialize",
    ),
    cb(
        "main",
        2,
        true,
        "called after _initialize when both exist, for early SDK set-up",
    ),
    cb(
        "proxy_on_vm_start",
        2,
        true,
        "VM started: receives the vm_config.configuration size; false fails the VM",
    ),
    cb(
        "proxy_on_validate_configuration",
        2,
        true,
        "validates a plugin configuration before it is applied",
    ),
    cb(
        "proxy_on_configure",
        2,
        true,
        "plugin configured: receives the plugin configuration size; false makes Envoy reject it",
    ),
    cb(
        "proxy_on_context_create",
        2,
        false,
        "a new context: root (per plugin), HTTP stream or TCP connection",
    ),
    cb(
        "proxy_on_tick",
        1,
        false,
        "timer tick set with proxy_set_tick_period_milliseconds",
    ),
    cb("proxy_on_queue_ready", 2, false, "a shared queue has data"),
    cb(
        "proxy_on_new_connection",
        1,
        true,
        "network filter: new TCP connection",
    ),
    cb(
        "proxy_on_downstream_data",
        3,
        true,
        "network filter: bytes from the client",
    ),
    cb(
        "proxy_on_upstream_data",
        3,
        true,
        "network filter: bytes from the upstream",
    ),
    cb(
        "proxy_on_downstream_connection_close",
        2,
        false,
        "network filter: client side closed",
    ),
    cb(
        "proxy_on_upstream_connection_close",
        2,
        false,
        "network filter: upstream side closed",
    ),
    cb(
        "proxy_on_request_headers",
        3,
        true,
        "HTTP filter: request headers",
    ),
    cb(
        "proxy_on_request_body",
        3,
        true,
        "HTTP filter: request body chunk",
    ),
    cb(
        "proxy_on_request_trailers",
        2,
        true,
        "HTTP filter: request trailers",
    ),
    cb(
        "proxy_on_request_metadata",
        2,
        true,
        "HTTP filter: request metadata",
    ),
    cb(
        "proxy_on_response_headers",
        3,
        true,
        "HTTP filter: response headers",
    ),
    cb(
        "proxy_on_response_body",
        3,
        true,
        "HTTP filter: response body chunk",
    ),
    cb(
        "proxy_on_response_trailers",
        2,
        true,
        "HTTP filter: response trailers",
    ),
    cb(
        "proxy_on_response_metadata",
        2,
        true,
        "HTTP filter: response metadata",
    ),
    cb(
        "proxy_on_http_call_response",
        5,
        false,
        "answer to an outgoing proxy_http_call",
    ),
    cb(
        "proxy_on_grpc_receive_initial_metadata",
        3,
        false,
        "outgoing gRPC call: initial metadata",
    ),
    cb(
        "proxy_on_grpc_receive_trailing_metadata",
        3,
        false,
        "outgoing gRPC call: trailing metadata",
    ),
    cb(
        "proxy_on_grpc_receive",
        3,
        false,
        "outgoing gRPC call: a message",
    ),
    cb(
        "proxy_on_grpc_close",
        3,
        false,
        "outgoing gRPC call: closed",
    ),
    cb(
        "proxy_on_grpc_create_initial_metadata",
        3,
        false,
        "outgoing gRPC call: add initial metadata",
    ),
    cb(
        "proxy_on_foreign_function",
        3,
        false,
        "the host calls a module-defined foreign function",
    ),
    cb(
        "proxy_on_done",
        1,
        true,
        "context is finishing; false defers until proxy_done",
    ),
    cb(
        "proxy_on_log",
        1,
        false,
        "access-log time for a stream or connection",
    ),
    cb(
        "proxy_on_delete",
        1,
        false,
        "context deleted: the module frees its state",
    ),
];

/// Callbacks through which a module learns about streams and connections.
pub const TRAFFIC_CALLBACKS: &[&str] = &[
    "proxy_on_context_create",
    "proxy_on_new_connection",
    "proxy_on_downstream_data",
    "proxy_on_upstream_data",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_log",
];

pub fn callback(name: &str) -> Option<&'static Callback> {
    CALLBACKS.iter().find(|callback| callback.name == name)
}

/// ABI 0.1.0 passed no end_of_stream flag to the header callbacks.
pub fn expected_params(callback: &Callback, abi: Option<&str>) -> usize {
    let header_callback = matches!(
        callback.name,
        "proxy_on_request_headers" | "proxy_on_response_headers"
    );
    if header_callback && abi == Some("0.1.0") {
        2
    } else {
        callback.params
    }
}

/// The host fetches `main` only for reactors and `_start` only for commands.
pub fn host_calls(name: &str, has_initialize: bool) -> bool {
    match name {
        "main" => has_initialize,
        "_start" => !has_initialize,
        _ => true,
    }
}

pub fn abi_version(export: &str) -> Option<&'static str> {
    ABI_VERSIONS
        .iter()
        .find(|(marker, _)| *marker == export)
        .map(|(_, version)| *version)
}

/// Meaning of a non-function export or of a function the host does not call.
pub fn other_meaning(name: &str, kind: &str) -> String {
    if kind == "memory" {
        return "linear memory: the host reads and writes headers, bodies and logs through it"
            .into();
    }
    if let Some(version) = abi_version(name) {
        return format!("ABI version marker: proxy-wasm {version}");
    }
    if name.starts_with(ABI_MARKER_PREFIX) {
        return "ABI version marker of a version this host does not know".into();
    }
    if name.starts_with("proxy_on_") {
        return "unknown proxy_on_* callback: the host never calls it".into();
    }
    match name {
        "__data_end" | "__heap_base" => "linker symbol (ignored by the host)".into(),
        "__indirect_function_table" => "function table (ignored by the host)".into(),
        _ => "not part of the proxy-wasm ABI (ignored by the host)".into(),
    }
}
