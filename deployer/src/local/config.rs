//! The Envoy v3 bootstrap the lab runs: one loopback listener with the module in front of a
//! direct response (HTTP) or an echo (TCP), and an admin listener on a kernel-chosen port.
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::LocalError;

/// Envoy's name for the plugin; it is the first word after `wasm log` in every line.
pub const PLUGIN_NAME: &str = "lab";
/// What the HTTP listener answers to every request.
pub const RESPONSE_BODY: &str = "hello world\n";

/// Which kind of Envoy filter chain the module sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `envoy.filters.http.wasm` in an HTTP connection manager: one HTTP context per stream.
    Http,
    /// `envoy.filters.network.wasm` before Envoy's echo filter: one TCP context per connection.
    Tcp,
}

/// Everything that varies between lab runs.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub port: u16,
    pub module: PathBuf,
    pub mode: Mode,
    /// The plugin configuration as JSON text, handed to `on_configure` verbatim.
    pub plugin_config: Option<String>,
    /// Root context id for modules that register several roots (empty: the default root).
    pub root_id: String,
}

impl LabConfig {
    /// The bootstrap as a JSON value (Envoy reads it as YAML; JSON is valid YAML).
    pub fn bootstrap(&self) -> Value {
        let wasm = self.wasm_config();
        let filters = match self.mode {
            Mode::Http => json!([{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "lab",
                    "route_config": {
                        "name": "lab",
                        "virtual_hosts": [{
                            "name": "lab",
                            "domains": ["*"],
                            "routes": [{
                                "match": {"prefix": "/"},
                                "direct_response": {"status": 200, "body": {"inline_string": RESPONSE_BODY}}
                            }]
                        }]
                    },
                    "http_filters": [
                        {
                            "name": "envoy.filters.http.wasm",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "config": wasm
                            }
                        },
                        {
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                        }
                    ]
                }
            }]),
            Mode::Tcp => json!([
                {
                    "name": "envoy.filters.network.wasm",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                        "config": wasm
                    }
                },
                {
                    "name": "envoy.filters.network.echo",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.echo.v3.Echo"}
                }
            ]),
        };
        json!({
            "admin": {"address": socket_address(0)},
            "static_resources": {
                "listeners": [{
                    "name": "lab",
                    "address": socket_address(self.port),
                    "filter_chains": [{"filters": filters}]
                }]
            }
        })
    }

    /// The bootstrap as YAML, what `--print-config` shows and Envoy reads.
    pub fn render(&self) -> Result<String, LocalError> {
        serde_yaml::to_string(&self.bootstrap()).map_err(|err| LocalError::Render {
            message: err.to_string(),
        })
    }

    fn wasm_config(&self) -> Value {
        let mut config = json!({
            "name": PLUGIN_NAME,
            "root_id": self.root_id,
            "vm_config": {
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": self.module.display().to_string()}}
            }
        });
        if let Some(plugin_config) = &self.plugin_config {
            // A StringValue reaches on_configure as the exact bytes, whatever the module's
            // language; a Struct would be re-serialized by Envoy.
            config["configuration"] = json!({
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": plugin_config
            });
        }
        config
    }
}

fn socket_address(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

/// Reads a plugin configuration file (JSON or YAML) and returns it as compact JSON.
pub fn plugin_config_from_file(path: &Path) -> Result<String, LocalError> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    plugin_config_from_str(&text).map_err(|message| LocalError::ConfigParse {
        path: path.to_path_buf(),
        message,
    })
}

fn plugin_config_from_str(text: &str) -> Result<String, String> {
    // YAML 1.2 is a superset of JSON, but serde_yaml's messages for broken JSON are poor:
    // try JSON first so a JSON file gets a JSON error.
    let trimmed = text.trim_start();
    let value: Value = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(text).map_err(|err| format!("invalid JSON: {err}"))?
    } else {
        serde_yaml::from_str(text).map_err(|err| format!("invalid YAML: {err}"))?
    };
    if value.is_null() {
        return Err("the file is empty; remove --config or give the configuration".to_string());
    }
    serde_json::to_string(&value).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(mode: Mode) -> LabConfig {
        LabConfig {
            port: 18000,
            module: PathBuf::from("/tmp/filter.wasm"),
            mode,
            plugin_config: Some(r#"{"prefix":"x"}"#.to_string()),
            root_id: String::new(),
        }
    }

    #[test]
    fn http_bootstrap_has_wasm_before_router_and_a_direct_response() {
        let config = lab(Mode::Http).bootstrap();
        let hcm = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
        assert_eq!(hcm["name"], "envoy.filters.network.http_connection_manager");
        let filters = &hcm["typed_config"]["http_filters"];
        assert_eq!(filters[0]["name"], "envoy.filters.http.wasm");
        assert_eq!(filters[1]["name"], "envoy.filters.http.router");
        let wasm = &filters[0]["typed_config"]["config"];
        assert_eq!(wasm["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
        assert_eq!(
            wasm["vm_config"]["code"]["local"]["filename"],
            "/tmp/filter.wasm"
        );
        assert_eq!(wasm["configuration"]["value"], r#"{"prefix":"x"}"#);
        let route = &hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0];
        assert_eq!(route["direct_response"]["status"], 200);
        assert_eq!(
            config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"],
            18000
        );
        assert_eq!(
            config["admin"]["address"]["socket_address"]["port_value"],
            0
        );
    }

    #[test]
    fn tcp_bootstrap_puts_the_network_filter_before_echo() {
        let config = lab(Mode::Tcp).bootstrap();
        let filters = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"];
        assert_eq!(filters[0]["name"], "envoy.filters.network.wasm");
        assert_eq!(filters[1]["name"], "envoy.filters.network.echo");
    }

    #[test]
    fn no_plugin_config_means_no_configuration_field() {
        let mut lab = lab(Mode::Http);
        lab.plugin_config = None;
        let rendered = lab.render().unwrap();
        assert!(!rendered.contains("StringValue"), "{rendered}");
        let reparsed: Value = serde_yaml::from_str(&rendered).unwrap();
        assert_eq!(reparsed, lab.bootstrap());
    }

    #[test]
    fn yaml_and_json_configs_become_the_same_json() {
        let from_yaml = plugin_config_from_str("prefix: x\nheaders: [a, b]\n").unwrap();
        let from_json =
            plugin_config_from_str(r#" {"prefix": "x", "headers": ["a", "b"]}"#).unwrap();
        assert_eq!(from_yaml, from_json);
    }

    #[test]
    fn broken_configs_are_named() {
        assert!(
            plugin_config_from_str("{\"a\": ")
                .unwrap_err()
                .starts_with("invalid JSON")
        );
        assert!(
            plugin_config_from_str("a: [")
                .unwrap_err()
                .starts_with("invalid YAML")
        );
        assert!(
            plugin_config_from_str("  \n")
                .unwrap_err()
                .contains("empty")
        );
    }
}
