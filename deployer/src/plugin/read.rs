//! Reading a spec of either kind into the one model (`spec::WasmPluginSpec`), at two
//! boundaries with different rules:
//! - `strict`: a user's file (`-f plugin.yaml`) and a spec `migrate` carries over. A key or an
//!   enum value the model does not know is an error: a typo must not be silently ignored, and
//!   a migration must not drop what it cannot carry.
//! - `lenient`: an object read from a cluster (`list`, `logs`, `status`). A newer Istio adds
//!   fields and enum values; they are ignored (unknown values kept as `Unknown`) so reading
//!   never fails on them.
//!
//! Both read the same structs: serde ignores unknown keys, and `serde_ignored` reports them so
//! the strict reader can refuse them, with their path.
use serde_json::{Map, Value};

use super::spec::{
    EnvValueSource, FailStrategy, Kind, Phase, PluginType, PullPolicy, SHARED_FIELDS, WASM_FIELDS,
    WasmPluginSpec, WorkloadMode, phase_on_wire,
};
use super::wire_enum::WireEnum;

/// The spec in the model; a key or enum value the model does not know is an error (every one
/// found, joined with `; `).
pub fn strict(kind: Kind, wire: &Value) -> Result<WasmPluginSpec, String> {
    let (spec, unknown) = read(kind, wire)?;
    if unknown.is_empty() {
        Ok(spec)
    } else {
        Err(unknown.join("; "))
    }
}

/// The spec in the model, ignoring keys the model does not know. Fails only when a known field
/// has the wrong JSON type (a cluster's CRD schema rules that out).
pub fn lenient(kind: Kind, wire: &Value) -> Result<WasmPluginSpec, String> {
    read(kind, wire).map(|(spec, _unknown)| spec)
}

/// The spec, and a message for each unknown key and unknown enum value.
fn read(kind: Kind, wire: &Value) -> Result<(WasmPluginSpec, Vec<String>), String> {
    let Some(top) = wire.as_object() else {
        return Err("spec must be an object".into());
    };
    let mut unknown = Vec::new();
    let flat = match kind {
        Kind::WasmPlugin => top.clone(),
        Kind::TrafficExtension => flatten_traffic_extension(top, &mut unknown)?,
    };
    let mut ignored = Vec::new();
    let spec: WasmPluginSpec =
        serde_ignored::deserialize(Value::Object(flat), |path| ignored.push(spec_path(&path)))
            .map_err(|err| err.to_string())?;
    for path in ignored {
        let path = wire_path(kind, &path);
        let hint = if path.contains(['.', '[']) {
            String::new()
        } else {
            format!(", expected one of {}", top_fields(kind))
        };
        unknown.push(format!("unknown field `{path}`{hint}"));
    }
    unknown_values(kind, &spec, &mut unknown);
    Ok((spec, unknown))
}

/// A TrafficExtension's spec with its `wasm` part lifted to the top, as the model has it.
/// Keys where the kind has none (a shared field under `wasm`, a wasm field at the top) are
/// reported, not carried: the model would otherwise put them where they do not belong.
fn flatten_traffic_extension(
    top: &Map<String, Value>,
    unknown: &mut Vec<String>,
) -> Result<Map<String, Value>, String> {
    let mut flat = Map::new();
    for (key, value) in top {
        match key.as_str() {
            "wasm" => {
                let Some(wasm) = value.as_object() else {
                    return Err("spec.wasm must be an object".into());
                };
                for (key, value) in wasm {
                    if WASM_FIELDS.contains(&key.as_str()) {
                        flat.insert(key.clone(), value.clone());
                    } else {
                        unknown.push(format!(
                            "unknown field `wasm.{key}`, expected one of {}",
                            WASM_FIELDS.join(", ")
                        ));
                    }
                }
            }
            "phase" if value == "UNSPECIFIED" => {
                flat.insert(key.clone(), "UNSPECIFIED_PHASE".into());
            }
            key if key == "lua" || SHARED_FIELDS.contains(&key) => {
                flat.insert(key.to_string(), value.clone());
            }
            other => unknown.push(format!(
                "unknown field `{other}` in a TrafficExtension spec, expected one of {}",
                top_fields(Kind::TrafficExtension)
            )),
        }
    }
    Ok(flat)
}

/// The keys a spec of `kind` has at its top.
fn top_fields(kind: Kind) -> String {
    let mut fields: Vec<&str> = SHARED_FIELDS.to_vec();
    match kind {
        Kind::WasmPlugin => {
            fields.push("targetRef");
            fields.extend(WASM_FIELDS);
        }
        Kind::TrafficExtension => fields.extend(["wasm", "lua"]),
    }
    fields.join(", ")
}

/// `selector.matchLabel`, `match[0].port`: the style of validation's messages (serde_ignored's
/// own Display writes `?` for every Option level).
fn spec_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", spec_path(parent)),
        Path::Map { parent, key } => match spec_path(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => spec_path(parent),
    }
}

/// A path in the model as the kind writes it (`wasm.` before a TrafficExtension's wasm part).
fn wire_path(kind: Kind, path: &str) -> String {
    let first = path.split(['.', '[']).next().unwrap_or_default();
    if kind == Kind::TrafficExtension && WASM_FIELDS.contains(&first) {
        format!("wasm.{path}")
    } else {
        path.to_string()
    }
}

/// One message per enum value the model does not know.
fn unknown_values(kind: Kind, spec: &WasmPluginSpec, out: &mut Vec<String>) {
    let mut check = |path: String, unknown: Option<&str>, known: Vec<&str>| {
        if let Some(value) = unknown {
            out.push(format!(
                "unknown value {value:?} for `{}`, expected one of {}",
                wire_path(kind, &path),
                known.join(", ")
            ));
        }
    };
    check(
        "phase".into(),
        spec.phase.as_ref().and_then(WireEnum::unknown),
        Phase::KNOWN
            .iter()
            .map(|wire| phase_on_wire(kind, wire))
            .collect(),
    );
    check(
        "failStrategy".into(),
        spec.fail_strategy.as_ref().and_then(WireEnum::unknown),
        FailStrategy::KNOWN.to_vec(),
    );
    check(
        "imagePullPolicy".into(),
        spec.image_pull_policy.as_ref().and_then(WireEnum::unknown),
        PullPolicy::KNOWN.to_vec(),
    );
    check(
        "type".into(),
        spec.plugin_type.as_ref().and_then(WireEnum::unknown),
        PluginType::KNOWN.to_vec(),
    );
    for (i, selector) in spec.matches.iter().enumerate() {
        check(
            format!("match[{i}].mode"),
            selector.mode.as_ref().and_then(WireEnum::unknown),
            WorkloadMode::KNOWN.to_vec(),
        );
    }
    for (i, env) in spec.vm_config.iter().flat_map(|vm| &vm.env).enumerate() {
        check(
            format!("vmConfig.env[{i}].valueFrom"),
            env.value_from.as_ref().and_then(WireEnum::unknown),
            EnvValueSource::KNOWN.to_vec(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::spec::{FailStrategy, Phase};
    use serde_json::json;

    #[test]
    fn a_file_with_an_unknown_key_is_refused_with_its_path() {
        let err = strict(Kind::WasmPlugin, &json!({"url": "x", "phse": "AUTHN"})).unwrap_err();
        assert!(
            err.contains("unknown field `phse`, expected one of"),
            "{err}"
        );
        let err = strict(
            Kind::WasmPlugin,
            &json!({"url": "x", "selector": {"matchLabel": {}}, "match": [{"port": []}]}),
        )
        .unwrap_err();
        assert!(err.contains("`selector.matchLabel`"), "{err}");
        assert!(err.contains("`match[0].port`"), "{err}");
    }

    #[test]
    fn a_traffic_extension_names_keys_where_the_kind_has_none() {
        let err = strict(Kind::TrafficExtension, &json!({"wasm": {"selector": {}}})).unwrap_err();
        assert!(err.contains("wasm.selector"), "{err}");
        let err = strict(Kind::TrafficExtension, &json!({"url": "x"})).unwrap_err();
        assert!(err.contains("unknown field `url`"), "{err}");
        let err = strict(
            Kind::TrafficExtension,
            &json!({"wasm": {"url": "x", "vmConfig": {"env": [{"name": "A", "valueFrom": "ENV"}]}}}),
        )
        .unwrap_err();
        assert!(
            err.contains(
                "\"ENV\" for `wasm.vmConfig.env[0].valueFrom`, expected one of INLINE, HOST"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_enum_value_in_a_file_is_refused() {
        let err = strict(Kind::WasmPlugin, &json!({"url": "x", "phase": "authz"})).unwrap_err();
        assert!(
            err.contains("\"authz\" for `phase`, expected one of UNSPECIFIED_PHASE, AUTHN"),
            "{err}"
        );
        let err = strict(
            Kind::TrafficExtension,
            &json!({"phase": "X", "wasm": {"url": "x"}}),
        )
        .unwrap_err();
        assert!(err.contains("expected one of UNSPECIFIED, AUTHN"), "{err}");
    }

    #[test]
    fn a_cluster_object_from_a_newer_istio_still_reads() {
        let wire = json!({
            "selector": {"matchLabels": {"app": "web"}, "futureSelector": true},
            "wasm": {"url": "oci://r/x:1", "failStrategy": "FAIL_SOMEDAY", "futureWasm": 1},
            "phase": "AUTHZ",
            "futureField": {"a": 1}
        });
        let spec = lenient(Kind::TrafficExtension, &wire).unwrap();
        assert_eq!(spec.url, "oci://r/x:1");
        assert_eq!(spec.phase, Some(Phase::Authz));
        assert_eq!(
            spec.fail_strategy,
            Some(FailStrategy::Unknown("FAIL_SOMEDAY".into()))
        );
        assert_eq!(spec.selector.unwrap().match_labels["app"], "web");
        assert!(strict(Kind::TrafficExtension, &wire).is_err());
        // An unknown value is written back as it was read.
        let wasm = lenient(Kind::WasmPlugin, &json!({"url": "x", "type": "UDP"})).unwrap();
        assert_eq!(serde_json::to_value(&wasm).unwrap()["type"], "UDP");
    }

    #[test]
    fn a_wrong_type_fails_both() {
        let wire = json!({"url": "x", "priority": "high"});
        assert!(lenient(Kind::WasmPlugin, &wire).is_err());
        assert!(strict(Kind::WasmPlugin, &wire).is_err());
    }
}
