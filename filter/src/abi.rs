//! The proxy-wasm ABI 0.2.1 boundary: the only `unsafe` code of the crate.
//!
//! Why not the proxy-wasm SDK's dispatcher: it exports every `proxy_on_*` callback, and Envoy
//! makes one V8 call per exported callback per stream (context create, request/response
//! headers and body, log, done, delete...), whether the filter needs it or not. This module
//! exports only what the filter uses:
//!
//! | export | called by the host |
//! |---|---|
//! | `proxy_abi_version_0_2_1` | never; marks the ABI version |
//! | `proxy_on_memory_allocate` | when a hostcall returns data (configuration, properties, headers) |
//! | `_initialize` | once at VM start (WASI reactor initialisation) |
//! | `proxy_on_configure` | once per plugin instance (root context) and reconfiguration |
//! | `proxy_on_request_headers` | once per HTTP stream (`envoy.filters.http.wasm`) |
//! | `proxy_on_new_connection` | once per TCP connection (`envoy.filters.network.wasm`) |
//!
//! Which callback arrives is how the module knows the kind of stream: Envoy's HTTP filter
//! calls `proxy_on_request_headers`, the network filter `proxy_on_new_connection`.
//! Nothing is kept per stream, so there is nothing for `proxy_on_done`/`proxy_on_delete`
//! to release, and the host skips callbacks a module does not export (proxy-wasm-cpp-host).

use crate::config::Level;
use crate::plugin::{Host, Plugin};
use std::cell::RefCell;
use std::ptr;

// Hostcalls, as declared by the proxy-wasm ABI 0.2.1.
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
}

#[cfg(target_os = "wasi")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

const STATUS_OK: u32 = 0;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
const MAP_HTTP_REQUEST_HEADERS: u32 = 0;
const ACTION_CONTINUE: u32 = 0;

thread_local! {
    static PLUGIN: RefCell<Plugin> = const { RefCell::new(Plugin::new()) };
}

/// Envoy as seen through the hostcalls above.
struct Envoy;

impl Host for Envoy {
    fn log(&self, level: Level, message: &str) {
        // SAFETY: `message` is a live `&str` for the whole call; the host reads exactly
        // `message.len()` bytes from `message.as_ptr()` and keeps no pointer after returning.
        unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        // The ABI encodes a property path as its segments joined by NUL.
        let mut encoded = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            if i > 0 {
                encoded.push(0);
            }
            encoded.extend_from_slice(segment.as_bytes());
        }
        let (mut data, mut size) = (ptr::null_mut(), 0);
        // SAFETY: the host reads `encoded.len()` bytes of `encoded`, which outlives the call,
        // and writes only through `&mut data` and `&mut size`, valid locals. On success they
        // hold a buffer the host got from `proxy_on_memory_allocate`, which `take_host_buffer`
        // reclaims; on failure they stay null/0.
        let status =
            unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
        (status == STATUS_OK).then(|| take_host_buffer(data, size))
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        let (mut data, mut size) = (ptr::null_mut(), 0);
        // SAFETY: the host reads `name.len()` bytes of `name`, a live `&str`, and writes only
        // through `&mut data` and `&mut size`, valid locals; on success they hold a buffer from
        // `proxy_on_memory_allocate` (see `take_host_buffer`), as in `property`.
        let status = unsafe {
            proxy_get_header_map_value(
                MAP_HTTP_REQUEST_HEADERS,
                name.as_ptr(),
                name.len(),
                &mut data,
                &mut size,
            )
        };
        (status == STATUS_OK).then(|| take_host_buffer(data, size))
    }
}

fn plugin_configuration(size: usize) -> Option<Vec<u8>> {
    if size == 0 {
        return Some(Vec::new());
    }
    let (mut data, mut len) = (ptr::null_mut(), 0);
    // SAFETY: no pointer into the module's memory is passed but the out-pointers `&mut data`
    // and `&mut len`, valid locals; the host copies at most `size` bytes into a buffer it got
    // from `proxy_on_memory_allocate` and stores it there (see `take_host_buffer`).
    let status = unsafe {
        proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &mut data, &mut len)
    };
    (status == STATUS_OK).then(|| take_host_buffer(data, len))
}

/// Takes ownership of a buffer the host filled after allocating it with
/// `proxy_on_memory_allocate(size)`.
fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: `data` came from `proxy_on_memory_allocate(size)`, i.e. from a `Box<[u8]>` of
    // exactly `size` bytes, and the host hands each such buffer back once.
    unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(data, size)) }.into_vec()
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    Box::into_raw(vec![0u8; size].into_boxed_slice()).cast::<u8>()
}

#[cfg(target_os = "wasi")]
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    // SAFETY: `__wasm_call_ctors` is the constructor runner wasm-ld generates for a WASI
    // reactor; the host calls `_initialize` once at VM start, before any other export, so the
    // constructors run exactly once and before any code that depends on them.
    unsafe { __wasm_call_ctors() };
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(_root_context_id: u32, configuration_size: usize) -> u32 {
    let Some(bytes) = plugin_configuration(configuration_size) else {
        Envoy.log(
            Level::Error,
            "context-logger: could not read the plugin configuration from the host",
        );
        return 0;
    };
    PLUGIN.with(|p| match p.try_borrow_mut() {
        Ok(mut plugin) => u32::from(plugin.configure(&Envoy, &bytes)),
        Err(_) => 0,
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    _context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    PLUGIN.with(|p| {
        if let Ok(plugin) = p.try_borrow() {
            plugin.on_http_stream(&Envoy);
        }
    });
    ACTION_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_new_connection(_context_id: u32) -> u32 {
    PLUGIN.with(|p| {
        if let Ok(plugin) = p.try_borrow() {
            plugin.on_tcp_connection(&Envoy);
        }
    });
    ACTION_CONTINUE
}
