//! `render --helm-values`: the values file for charts/wasm-plugin that reproduces a CLI apply,
//! so a team can move from `deployer apply` to Helm without retyping. The chart's values use
//! the WasmPlugin spec's own keys and shapes at the top level (charts/wasm-plugin/values.yaml),
//! plus `name` and `labels` for metadata; unset fields are left out so the chart's defaults
//! (which leave them out of the resource too) apply.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Error;
use super::spec::{Kind, WasmPluginSpec};

/// The values reproduce either kind: the spec's keys stay flat (the chart nests the wasm part
/// under `spec.wasm` for a TrafficExtension), plus `kind` when it is not the default.
pub fn values(
    name: &str,
    labels: &BTreeMap<String, String>,
    spec: &WasmPluginSpec,
    kind: Kind,
) -> Result<Value, Error> {
    let wire = serde_json::to_value(spec).map_err(|err| Error::Helm(err.to_string()))?;
    let Value::Object(wire) = wire else {
        return Err(Error::Helm("spec is not an object".into()));
    };
    let mut out = serde_json::Map::new();
    out.insert("name".into(), json!(name));
    if kind != Kind::WasmPlugin {
        out.insert("kind".into(), json!(kind.name()));
    }
    if !labels.is_empty() {
        out.insert("labels".into(), json!(labels));
    }
    out.extend(wire);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::spec::*;
    use super::*;

    #[test]
    fn spec_keys_at_the_top_level() {
        let spec = WasmPluginSpec {
            url: "oci://r/x@sha256:ab".into(),
            sha256: Some("ab".into()),
            selector: Some(WorkloadSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
            }),
            phase: Some(Phase::Authz),
            priority: Some(5),
            plugin_type: Some(PluginType::Http),
            plugin_config: Some(json!({"a": 1})),
            vm_config: Some(VmConfig {
                env: vec![EnvVar {
                    name: "A".into(),
                    value_from: Some(EnvValueSource::Inline),
                    value: Some("1".into()),
                }],
            }),
            matches: vec![TrafficSelector {
                mode: Some(WorkloadMode::Server),
                ports: vec![PortSelector { number: 80 }],
            }],
            ..Default::default()
        };
        let values = values("ctx", &BTreeMap::new(), &spec, Kind::WasmPlugin).unwrap();
        assert_eq!(
            values,
            json!({
                "name": "ctx", "url": "oci://r/x@sha256:ab", "sha256": "ab",
                "selector": {"matchLabels": {"app": "web"}}, "phase": "AUTHZ", "priority": 5, "type": "HTTP",
                "pluginConfig": {"a": 1}, "vmConfig": {"env": [{"name": "A", "valueFrom": "INLINE", "value": "1"}]},
                "match": [{"mode": "SERVER", "ports": [{"number": 80}]}]
            })
        );
    }
}
