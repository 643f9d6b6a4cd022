//! `render --helm-values`: the values file for charts/wasm-plugin that reproduces a CLI apply,
//! so a team can move from `deployer apply` to Helm without retyping. Key names are the
//! chart's (see charts/wasm-plugin/values.yaml); only keys that differ from the chart's
//! defaults (unset) are written.
use serde_json::{Map, Value, json};

use super::Error;
use super::spec::WasmPluginSpec;

pub fn values(name: &str, spec: &WasmPluginSpec) -> Result<Value, Error> {
    let wire = serde_json::to_value(spec).map_err(|err| Error::Helm(err.to_string()))?;
    let Value::Object(mut wire) = wire else {
        return Err(Error::Helm("spec is not an object".into()));
    };
    let mut out = Map::new();
    out.insert("nameOverride".into(), json!(name));
    if let Some(url) = wire.remove("url") {
        out.insert("image".into(), json!({ "url": url }));
    }
    if let Some(selector) = wire.remove("selector") {
        out.insert(
            "selector".into(),
            selector
                .get("matchLabels")
                .cloned()
                .unwrap_or_else(|| json!({})),
        );
    }
    if let Some(target) = wire.remove("targetRef") {
        // The chart only models the list form; a single deprecated targetRef is one entry.
        out.insert("targetRefs".into(), json!([target]));
    }
    // Every other spec field keeps its WasmPlugin name and shape in the chart's values.
    for key in [
        "sha256",
        "targetRefs",
        "pluginConfig",
        "pluginName",
        "phase",
        "priority",
        "failStrategy",
        "imagePullPolicy",
        "imagePullSecret",
        "type",
        "match",
        "vmConfig",
    ] {
        if let Some(value) = wire.remove(key) {
            out.insert(key.into(), value);
        }
    }
    if let Some((key, _)) = wire.into_iter().next() {
        return Err(Error::Helm(format!(
            "spec field {key:?} has no chart value"
        )));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::spec::*;
    use super::*;

    #[test]
    fn maps_every_field() {
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
        let values = values("ctx", &spec).unwrap();
        assert_eq!(
            values,
            json!({
                "nameOverride": "ctx", "image": {"url": "oci://r/x@sha256:ab"}, "sha256": "ab",
                "selector": {"app": "web"}, "phase": "AUTHZ", "priority": 5, "type": "HTTP",
                "pluginConfig": {"a": 1}, "vmConfig": {"env": [{"name": "A", "valueFrom": "INLINE", "value": "1"}]},
                "match": [{"mode": "SERVER", "ports": [{"number": 80}]}]
            })
        );
    }
}
