//! NewHttpContext / NewTcpContext logger on the proxy-wasm SDK, as its examples write it.
//! `{"log": false}` as plugin configuration silences it (bench variant "sdk, logging off").

use log::info;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(Root { log: true }));
}}

struct Root {
    log: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.log = !String::from_utf8_lossy(&config).contains("\"log\": false");
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        if self.log {
            info!("NewHttpContext");
        }
        Some(Box::new(Stream))
    }

    fn create_stream_context(&self, _id: u32) -> Option<Box<dyn StreamContext>> {
        if self.log {
            info!("NewTcpContext");
        }
        Some(Box::new(Stream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream;

impl Context for Stream {}
impl HttpContext for Stream {}
impl StreamContext for Stream {}
