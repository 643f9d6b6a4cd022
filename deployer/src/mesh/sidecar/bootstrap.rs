//! The Envoy bootstrap of a stand-in sidecar: one loopback listener playing the pod's inbound
//! port, the selected plugins in it the way Istio configures them (Envoy plugin name
//! `<namespace>.<name>`, root_id = pluginName, no vm_id, pluginConfig as a JSON StringValue,
//! ordered by phase then priority), and a direct response standing in for the application.
//! A plugin whose module could not be fetched becomes what istio-agent puts in its place:
//! with FAIL_CLOSE a deny-all RBAC filter, with FAIL_OPEN nothing.
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::mesh::Plugin;

/// A selected plugin and what the agent made of its module.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plugin: Plugin,
    pub module: Result<PathBuf, String>,
}

/// What the listener answers in place of the application.
pub const RESPONSE_BODY: &str = "response from the stand-in application behind the sidecar\n";

/// Istio's phase order in an HTTP filter chain: AUTHN, AUTHZ, STATS, then unspecified
/// (just before the router).
fn phase_rank(phase: &str) -> u8 {
    match phase {
        "AUTHN" => 0,
        "AUTHZ" => 1,
        "STATS" => 2,
        _ => 3,
    }
}

pub fn ordered(mut loaded: Vec<Loaded>) -> Vec<Loaded> {
    // Higher priority first within a phase; names break ties so the order is stable.
    loaded.sort_by(|a, b| {
        phase_rank(&a.plugin.phase)
            .cmp(&phase_rank(&b.plugin.phase))
            .then(b.plugin.priority.cmp(&a.plugin.priority))
            .then(a.plugin.name.cmp(&b.plugin.name))
    });
    loaded
}

fn wasm_config(plugin: &Plugin, module: &std::path::Path) -> Value {
    let mut vm_config = json!({
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": module.display().to_string()}}
    });
    let inline: serde_json::Map<String, Value> = plugin
        .env
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (name.clone(), json!(v))))
        .collect();
    let host: Vec<&String> = plugin
        .env
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name)
        .collect();
    if !inline.is_empty() || !host.is_empty() {
        vm_config["environment_variables"] = json!({"key_values": inline, "host_env_keys": host});
    }
    let mut config = json!({
        "name": plugin.envoy_name(),
        "root_id": plugin.plugin_name,
        "vm_config": vm_config,
    });
    if let Some(text) = &plugin.plugin_config {
        config["configuration"] = json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": text
        });
    }
    config
}

fn deny_all(name: &str) -> Value {
    json!({
        "name": format!("{name}-deny-all"),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW"}
        }
    })
}

pub fn render(port: u16, loaded: &[Loaded]) -> Value {
    let mut http_filters = Vec::new();
    let mut network_filters = Vec::new();
    for entry in loaded {
        let network = entry.plugin.plugin_type == "NETWORK";
        match &entry.module {
            Ok(module) => {
                let config = wasm_config(&entry.plugin, module);
                if network {
                    network_filters.push(json!({
                        "name": entry.plugin.envoy_name(),
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                            "config": config
                        }
                    }));
                } else {
                    http_filters.push(json!({
                        "name": entry.plugin.envoy_name(),
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": config
                        }
                    }));
                }
            }
            Err(_) if entry.plugin.fail_strategy == "FAIL_OPEN" => {}
            Err(_) => http_filters.push(deny_all(&entry.plugin.envoy_name())),
        }
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    network_filters.push(json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "inbound",
            "route_config": {
                "name": "inbound",
                "virtual_hosts": [{
                    "name": "inbound",
                    "domains": ["*"],
                    "routes": [{
                        "match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": RESPONSE_BODY}}
                    }]
                }]
            },
            "http_filters": http_filters
        }
    }));
    json!({
        "admin": {"address": address(0)},
        "static_resources": {
            "listeners": [{
                "name": "virtualInbound",
                "address": address(port),
                "filter_chains": [{"filters": network_filters}]
            }]
        }
    })
}

fn address(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, extra: Value) -> Plugin {
        let mut spec = json!({"url": "oci://r/x:v1", "pluginName": "root"});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let object =
            kube::api::DynamicObject::new(name, &crate::cluster::wasmplugin::api_resource())
                .within("demo")
                .data(json!({ "spec": spec }));
        Plugin::from_object(&object)
    }

    #[test]
    fn plugins_are_named_and_ordered_like_istio() {
        let loaded = ordered(vec![
            Loaded {
                plugin: plugin("late", json!({})),
                module: Ok("/m/a.wasm".into()),
            },
            Loaded {
                plugin: plugin(
                    "authn",
                    json!({"phase": "AUTHN", "pluginConfig": {"k": "v"}}),
                ),
                module: Ok("/m/b.wasm".into()),
            },
            Loaded {
                plugin: plugin("broken", json!({"phase": "STATS"})),
                module: Err("checksum".into()),
            },
            Loaded {
                plugin: plugin("open", json!({"failStrategy": "FAIL_OPEN"})),
                module: Err("checksum".into()),
            },
        ]);
        let config = render(15006, &loaded);
        let hcm = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
        let filters = hcm["typed_config"]["http_filters"].as_array().unwrap();
        let names: Vec<&str> = filters
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "demo.authn",
                "demo.broken-deny-all",
                "demo.late",
                "envoy.filters.http.router"
            ]
        );
        let wasm = &filters[0]["typed_config"]["config"];
        assert_eq!(wasm["name"], "demo.authn");
        assert_eq!(wasm["root_id"], "root");
        assert!(wasm["vm_config"].get("vm_id").is_none());
        assert_eq!(wasm["configuration"]["value"], r#"{"k":"v"}"#);
    }
}
