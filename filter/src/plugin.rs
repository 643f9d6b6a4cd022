//! What the filter does, independent of how the host is reached: the proxy-wasm glue
//! (`abi.rs`) forwards host callbacks here, and the tests drive it with a fake host.

use crate::config::{Config, Level};

/// The few host services the filter uses.
pub trait Host {
    fn log(&self, level: Level, message: &str);
    /// A host property such as `["plugin_name"]`; `None` when the host has none.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// A request header of the current HTTP stream; `None` when absent.
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
}

pub const HTTP_LINE: &str = "NewHttpContext";
pub const TCP_LINE: &str = "NewTcpContext";

/// Configuration of one plugin instance (one Envoy root context), with its lines pre-rendered
/// so that a stream without header fields costs one `proxy_log` and no allocation.
#[derive(Debug)]
struct Root {
    /// `plugin_name` and `plugin_root_id` joined by NUL: what a stream can ask the host for.
    identity: Vec<u8>,
    config: Config,
    http_line: String,
    tcp_line: String,
}

impl Root {
    fn new(identity: Vec<u8>, config: Config) -> Root {
        let http_line = config.prefix.clone() + HTTP_LINE;
        let tcp_line = config.prefix.clone() + TCP_LINE;
        Root {
            identity,
            config,
            http_line,
            tcp_line,
        }
    }
}

/// All plugin instances that share this VM. Envoy shares a VM between filters whose
/// `vm_config` is identical, giving each its own root context and configuration.
#[derive(Debug, Default)]
pub struct Plugin {
    roots: Vec<Root>,
}

impl Plugin {
    pub const fn new() -> Plugin {
        Plugin { roots: Vec::new() }
    }

    /// `proxy_on_configure`: validates and records the configuration. On an invalid
    /// configuration it logs why and returns false, which makes Envoy refuse the filter; the
    /// previous configuration of that plugin (if any) stays in force.
    pub fn configure(&mut self, host: &impl Host, bytes: &[u8]) -> bool {
        let config = match Config::from_bytes(bytes) {
            Ok(config) => config,
            Err(err) => {
                let message = [
                    "context-logger: invalid plugin configuration: ",
                    &err.message(),
                ]
                .concat();
                host.log(Level::Error, &message);
                return false;
            }
        };
        let identity = identity(host);
        // A reconfiguration (new root context for the same plugin) replaces the old entry,
        // so the list is bounded by the number of distinct plugins, not by config pushes.
        let root = Root::new(identity, config);
        match self.roots.iter_mut().find(|r| r.identity == root.identity) {
            Some(slot) => *slot = root,
            None => self.roots.push(root),
        }
        true
    }

    /// `proxy_on_request_headers`: once per HTTP stream.
    pub fn on_http_stream(&self, host: &impl Host) {
        let Some(root) = self.root_for_stream(host) else {
            host.log(Level::Info, HTTP_LINE);
            return;
        };
        if !root.config.enabled {
            return;
        }
        if root.config.headers.is_empty() {
            host.log(root.config.level, &root.http_line);
            return;
        }
        let mut line = root.http_line.clone();
        for name in &root.config.headers {
            line.push(' ');
            line.push_str(name);
            line.push('=');
            match host.request_header(name) {
                Some(value) => push_sanitized(&mut line, &value),
                None => line.push('-'),
            }
        }
        host.log(root.config.level, &line);
    }

    /// `proxy_on_new_connection`: once per TCP connection.
    pub fn on_tcp_connection(&self, host: &impl Host) {
        match self.root_for_stream(host) {
            None => host.log(Level::Info, TCP_LINE),
            Some(root) if root.config.enabled => host.log(root.config.level, &root.tcp_line),
            Some(_) => {}
        }
    }

    /// The module does not export `proxy_on_context_create` (one V8 call per stream saved), so
    /// a stream does not say which root it belongs to. With one plugin in the VM (the usual
    /// case) there is nothing to ask; with several, the stream asks the host for its plugin's
    /// name and root id.
    fn root_for_stream(&self, host: &impl Host) -> Option<&Root> {
        match self.roots.as_slice() {
            [] => None,
            [only] => Some(only),
            roots => {
                let wanted = identity(host);
                roots.iter().find(|r| r.identity == wanted).or(roots.last())
            }
        }
    }
}

fn identity(host: &impl Host) -> Vec<u8> {
    let mut id = host.property(&["plugin_name"]).unwrap_or_default();
    id.push(0);
    id.extend(host.property(&["plugin_root_id"]).unwrap_or_default());
    id
}

/// Header values go into a single log line: line breakers (a forged newline, U+2028) and, in
/// a value that is not UTF-8, every non-ASCII byte become `?`.
fn push_sanitized(line: &mut String, value: &[u8]) {
    match std::str::from_utf8(value) {
        Ok(text) => {
            for c in text.chars() {
                line.push(if crate::config::breaks_line(c) {
                    '?'
                } else {
                    c
                });
            }
        }
        Err(_) => {
            for &b in value {
                let printable = b.is_ascii_graphic() || b == b' ';
                line.push(if printable { char::from(b) } else { '?' });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeHost {
        lines: RefCell<Vec<(Level, String)>>,
        properties: HashMap<String, Vec<u8>>,
        headers: HashMap<String, Vec<u8>>,
        property_calls: RefCell<usize>,
    }

    impl FakeHost {
        fn plugin(name: &str, root_id: &str) -> FakeHost {
            let mut host = FakeHost::default();
            host.properties.insert("plugin_name".into(), name.into());
            host.properties
                .insert("plugin_root_id".into(), root_id.into());
            host
        }

        fn take(&self) -> Vec<(Level, String)> {
            self.lines.take()
        }
    }

    impl Host for FakeHost {
        fn log(&self, level: Level, message: &str) {
            self.lines.borrow_mut().push((level, message.to_owned()));
        }
        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            *self.property_calls.borrow_mut() += 1;
            self.properties.get(&path.join(".")).cloned()
        }
        fn request_header(&self, name: &str) -> Option<Vec<u8>> {
            self.headers.get(name).cloned()
        }
    }

    fn info(s: &str) -> (Level, String) {
        (Level::Info, s.to_owned())
    }

    #[test]
    fn n_streams_give_n_lines() {
        let host = FakeHost::plugin("p", "r");
        let mut plugin = Plugin::new();
        assert!(plugin.configure(&host, b""));
        for _ in 0..5 {
            plugin.on_http_stream(&host);
        }
        plugin.on_tcp_connection(&host);
        let mut want = vec![info(HTTP_LINE); 5];
        want.push(info(TCP_LINE));
        assert_eq!(host.take(), want);
    }

    #[test]
    fn unconfigured_plugin_still_logs_defaults() {
        let host = FakeHost::default();
        let plugin = Plugin::new();
        plugin.on_http_stream(&host);
        plugin.on_tcp_connection(&host);
        assert_eq!(host.take(), vec![info(HTTP_LINE), info(TCP_LINE)]);
    }

    #[test]
    fn single_plugin_streams_do_not_query_the_host() {
        let host = FakeHost::plugin("p", "r");
        let mut plugin = Plugin::new();
        assert!(plugin.configure(&host, b"{}"));
        let after_configure = *host.property_calls.borrow();
        plugin.on_http_stream(&host);
        plugin.on_tcp_connection(&host);
        assert_eq!(*host.property_calls.borrow(), after_configure);
    }

    #[test]
    fn prefix_level_and_headers_shape_the_line() {
        let mut host = FakeHost::plugin("p", "r");
        host.headers.insert(":path".into(), b"/a\nb".to_vec());
        host.headers
            .insert("x-raw".into(), b"\xffz \xc3\xa9".to_vec());
        let mut plugin = Plugin::new();
        let config =
            br#"{"level": "warn", "prefix": "[x] ", "headers": [":path", "x-id", "x-raw"]}"#;
        assert!(plugin.configure(&host, config));
        plugin.on_http_stream(&host);
        plugin.on_tcp_connection(&host);
        assert_eq!(
            host.take(),
            vec![
                (
                    Level::Warn,
                    "[x] NewHttpContext :path=/a?b x-id=- x-raw=?z ??".into()
                ),
                (Level::Warn, "[x] NewTcpContext".into()),
            ]
        );
    }

    #[test]
    fn log_false_is_silent() {
        let host = FakeHost::plugin("p", "r");
        let mut plugin = Plugin::new();
        assert!(plugin.configure(&host, br#"{"log": false}"#));
        plugin.on_http_stream(&host);
        plugin.on_tcp_connection(&host);
        assert!(host.take().is_empty());
    }

    #[test]
    fn invalid_configuration_is_refused_with_a_reason_and_keeps_the_old_one() {
        let host = FakeHost::plugin("p", "r");
        let mut plugin = Plugin::new();
        assert!(plugin.configure(&host, br#"{"prefix": "old "}"#));
        assert!(!plugin.configure(&host, br#"{"level": "loud"}"#));
        let lines = host.take();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, Level::Error);
        assert!(lines[0].1.contains("field `level`"), "{}", lines[0].1);
        plugin.on_http_stream(&host);
        assert_eq!(host.take(), vec![info("old NewHttpContext")]);
    }

    #[test]
    fn reconfiguring_a_plugin_replaces_it() {
        let host = FakeHost::plugin("p", "r");
        let mut plugin = Plugin::new();
        for i in 0..100 {
            assert!(plugin.configure(&host, format!(r#"{{"prefix": "{i} "}}"#).as_bytes()));
        }
        assert_eq!(plugin.roots.len(), 1);
        plugin.on_http_stream(&host);
        assert_eq!(host.take(), vec![info("99 NewHttpContext")]);
    }

    #[test]
    fn several_plugins_in_one_vm_each_use_their_own_configuration() {
        let a = FakeHost::plugin("a", "r");
        let b = FakeHost::plugin("b", "r");
        let mut plugin = Plugin::new();
        assert!(plugin.configure(&a, br#"{"prefix": "A "}"#));
        assert!(plugin.configure(&b, br#"{"log": false}"#));
        plugin.on_http_stream(&a);
        plugin.on_http_stream(&b);
        plugin.on_tcp_connection(&a);
        assert_eq!(
            a.take(),
            vec![info("A NewHttpContext"), info("A NewTcpContext")]
        );
        assert!(b.take().is_empty());
    }
}
