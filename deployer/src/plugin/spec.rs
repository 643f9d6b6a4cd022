//! Serde model of the Istio `WasmPlugin` and `TrafficExtension` (extensions.istio.io/v1alpha1)
//! specs: one model for both kinds. `WasmPluginSpec` holds the fields the kinds share (selector,
//! targetRefs, phase, priority, match) and the wasm fields once; it is the WasmPlugin's wire
//! shape. A TrafficExtension nests the wasm fields under `spec.wasm` (or has `spec.lua`
//! instead), which `traffic_extension_wire` and `read` convert, so flags,
//! validation, history, pinning and rollback are written once for both kinds.
//!
//! The same structs read a user's file and a cluster's object; `plugin::read` applies the rules
//! of each boundary (strict: unknown keys and enum values are errors; lenient: ignored), so the
//! structs themselves accept unknown keys and keep unknown enum values (`wire_enum`).
//!
//! Field names, enums and nesting follow Istio's API (see shared FACTS.md). Enum values are
//! typed; free-form values (url, sha256, labels, ports) stay strings/integers here and are
//! checked by `validate`, so one run reports every problem at once.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::wire_enum::wire_enum;

pub const GROUP: &str = "extensions.istio.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "extensions.istio.io/v1alpha1";
pub const KIND: &str = "WasmPlugin";
pub const PLURAL: &str = "wasmplugins";

/// Which Istio resource carries the spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    #[default]
    WasmPlugin,
    /// istio.io/api v1.32's successor of WasmPlugin: wasm (or Lua) under `spec.wasm`/`spec.lua`.
    TrafficExtension,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::WasmPlugin, Kind::TrafficExtension];

    pub fn name(self) -> &'static str {
        match self {
            Kind::WasmPlugin => KIND,
            Kind::TrafficExtension => "TrafficExtension",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::WasmPlugin => PLURAL,
            Kind::TrafficExtension => "trafficextensions",
        }
    }

    /// `wasmplugins.extensions.istio.io`, as kubectl and the API server name it.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::WasmPlugin => "wasmplugins.extensions.istio.io",
            Kind::TrafficExtension => "trafficextensions.extensions.istio.io",
        }
    }

    /// `wasmplugin.extensions.istio.io`: the prefix of kubectl-style result lines.
    pub fn singular_resource(self) -> &'static str {
        match self {
            Kind::WasmPlugin => "wasmplugin.extensions.istio.io",
            Kind::TrafficExtension => "trafficextension.extensions.istio.io",
        }
    }

    pub fn from_name(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == kind)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `--kind`: which resource a command acts on. `auto` is resolved per command (see README:
/// WasmPlugin unless the input or the existing object of that name says TrafficExtension).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KindChoice {
    #[default]
    Auto,
    #[value(name = "wasmplugin", alias = "wp", alias = "WasmPlugin")]
    WasmPlugin,
    #[value(name = "trafficextension", alias = "te", alias = "TrafficExtension")]
    TrafficExtension,
}

impl KindChoice {
    /// The kind the user named, if any.
    pub fn explicit(self) -> Option<Kind> {
        match self {
            KindChoice::Auto => None,
            KindChoice::WasmPlugin => Some(Kind::WasmPlugin),
            KindChoice::TrafficExtension => Some(Kind::TrafficExtension),
        }
    }
}

/// Envoy's Lua filter code of a TrafficExtension (`spec.lua`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LuaConfig {
    #[serde(default)]
    pub inline_code: String,
}

/// The fields both kinds have at the top of `spec`; everything else of `WasmPluginSpec` is
/// the wasm part (`spec.wasm` of a TrafficExtension), except `lua`.
pub const SHARED_FIELDS: [&str; 5] = ["selector", "targetRefs", "phase", "priority", "match"];
/// The wasm part, as Istio's `WasmConfig` message has it.
pub const WASM_FIELDS: [&str; 10] = [
    "url",
    "sha256",
    "imagePullPolicy",
    "imagePullSecret",
    "verificationKey",
    "pluginConfig",
    "pluginName",
    "failStrategy",
    "vmConfig",
    "type",
];

/// The spec as a TrafficExtension carries it: shared fields on top, the wasm part under `wasm`
/// (unless the spec is Lua), and TrafficExtension's spelling of the unspecified phase.
pub fn traffic_extension_wire(spec: &WasmPluginSpec) -> serde_json::Value {
    let flat = serde_json::to_value(spec).expect("a spec serializes to JSON");
    let serde_json::Value::Object(flat) = flat else {
        unreachable!("a struct serializes to an object")
    };
    let mut top = serde_json::Map::new();
    let mut wasm = serde_json::Map::new();
    for (key, value) in flat {
        if key == "phase" {
            let wire = value.as_str().unwrap_or_default();
            top.insert(key, phase_on_wire(Kind::TrafficExtension, wire).into());
        } else if SHARED_FIELDS.contains(&key.as_str()) || key == "lua" || key == "targetRef" {
            // `targetRef` is not in TrafficExtension's API: validation refuses it; kept so the
            // API server names it if validation is skipped.
            top.insert(key, value);
        } else if key == "url" && value == "" && spec.lua.is_some() {
            // A Lua spec has no wasm part; the model's always-present url is empty then.
        } else {
            wasm.insert(key, value);
        }
    }
    if !wasm.is_empty() {
        top.insert("wasm".into(), serde_json::Value::Object(wasm));
    }
    serde_json::Value::Object(top)
}

/// How `kind` spells a phase: TrafficExtension names the unspecified phase `UNSPECIFIED`.
pub fn phase_on_wire(kind: Kind, wire: &str) -> &str {
    match (kind, wire) {
        (Kind::TrafficExtension, "UNSPECIFIED_PHASE") => "UNSPECIFIED",
        _ => wire,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPluginSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Deprecated in Istio in favour of `targetRefs`; accepted from files, never produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    /// Kept as a `Value` so a non-object is reported by validation with the field's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_strategy: Option<FailStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_config: Option<VmConfig>,
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<TrafficSelector>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub plugin_type: Option<PluginType>,
    /// In Istio's API and CRD (a string, for future signature checks; istiod does not use it
    /// yet): kept as given so a manifest Istio accepts is accepted here too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_key: Option<String>,
    /// TrafficExtension only (validation refuses it in a WasmPlugin): Lua instead of wasm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lua: Option<LuaConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetReference {
    /// Empty means the core API group (e.g. `Service`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `Kind/name`, as `list` and `status` show a target (`?` for a part that is missing).
impl std::fmt::Display for PolicyTargetReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_unknown = |part: &str| if part.is_empty() { "?" } else { part }.to_string();
        write!(f, "{}/{}", or_unknown(&self.kind), or_unknown(&self.name))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvValueSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSelector>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSelector {
    /// Wider than u16 so an out-of-range port in a file reaches validation with a clear message.
    pub number: i64,
}

wire_enum! {
    /// Lower-case CLI spellings (`--phase authz`) map to Istio's upper-case wire values.
    pub enum Phase {
        #[value(name = "unspecified", alias = "unspecified_phase")]
        Unspecified = "UNSPECIFIED_PHASE",
        Authn = "AUTHN",
        Authz = "AUTHZ",
        Stats = "STATS",
    }
}

wire_enum! {
    pub enum FailStrategy {
        #[value(name = "fail-close", alias = "fail_close")]
        FailClose = "FAIL_CLOSE",
        #[value(name = "fail-open", alias = "fail_open")]
        FailOpen = "FAIL_OPEN",
        #[value(name = "fail-reload", alias = "fail_reload")]
        FailReload = "FAIL_RELOAD",
    }
}

wire_enum! {
    pub enum PullPolicy {
        #[value(name = "unspecified", alias = "unspecified_policy")]
        Unspecified = "UNSPECIFIED_POLICY",
        #[value(name = "if-not-present", alias = "ifnotpresent")]
        IfNotPresent = "IfNotPresent",
        #[value(name = "always")]
        Always = "Always",
    }
}

wire_enum! {
    pub enum PluginType {
        #[value(name = "unspecified", alias = "unspecified_plugin_type")]
        Unspecified = "UNSPECIFIED_PLUGIN_TYPE",
        Http = "HTTP",
        Network = "NETWORK",
    }
}

wire_enum! {
    pub enum EnvValueSource {
        Inline = "INLINE",
        Host = "HOST",
    }
}

wire_enum! {
    pub enum WorkloadMode {
        Undefined = "UNDEFINED",
        Client = "CLIENT",
        Server = "SERVER",
        #[value(name = "client-and-server", alias = "client_and_server")]
        ClientAndServer = "CLIENT_AND_SERVER",
    }
}

/// A whole resource (either kind) as `-f plugin.yaml` holds it and `render` prints it. On the
/// wire the spec has the kind's shape (`spec.wasm` for a TrafficExtension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireManifest", into = "WireManifest")]
pub struct WasmPluginManifest {
    pub api_version: String,
    pub kind: Kind,
    pub metadata: ManifestMetadata,
    pub spec: WasmPluginSpec,
    /// Accepted (and dropped) so `kubectl get -o yaml` output can be fed back with `-f`.
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireManifest {
    api_version: String,
    kind: String,
    metadata: ManifestMetadata,
    spec: serde_json::Value,
    #[serde(default, skip_serializing)]
    status: Option<serde_json::Value>,
}

impl TryFrom<WireManifest> for WasmPluginManifest {
    type Error = String;

    fn try_from(wire: WireManifest) -> Result<Self, String> {
        let kind = match Kind::from_name(&wire.kind) {
            Some(kind) if wire.api_version == API_VERSION => kind,
            _ => {
                return Err(format!(
                    "expected apiVersion {API_VERSION} and kind WasmPlugin or TrafficExtension, found {} {}",
                    wire.api_version, wire.kind
                ));
            }
        };
        // A user's file: every key and enum value must be known.
        let spec = super::read::strict(kind, &wire.spec).map_err(|err| format!("spec: {err}"))?;
        Ok(WasmPluginManifest {
            api_version: wire.api_version,
            kind,
            metadata: wire.metadata,
            spec,
            status: wire.status,
        })
    }
}

impl From<WasmPluginManifest> for WireManifest {
    fn from(manifest: WasmPluginManifest) -> Self {
        let spec = match manifest.kind {
            Kind::WasmPlugin => serde_json::to_value(&manifest.spec).expect("spec serializes"),
            Kind::TrafficExtension => traffic_extension_wire(&manifest.spec),
        };
        WireManifest {
            api_version: manifest.api_version,
            kind: manifest.kind.name().to_string(),
            metadata: manifest.metadata,
            spec,
            status: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestMetadata {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl WasmPluginManifest {
    pub fn new(name: &str, namespace: &str, spec: WasmPluginSpec) -> Self {
        Self::of_kind(Kind::WasmPlugin, name, namespace, spec)
    }

    pub fn of_kind(kind: Kind, name: &str, namespace: &str, spec: WasmPluginSpec) -> Self {
        Self {
            api_version: API_VERSION.to_string(),
            kind,
            metadata: ManifestMetadata {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }

    /// The manifest with `labels` (a cluster object's, carried over when a plugin moves).
    pub fn with_labels(mut self, labels: Option<&BTreeMap<String, String>>) -> Self {
        self.metadata.labels = labels.cloned().unwrap_or_default();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_follow_istio() {
        let spec = WasmPluginSpec {
            url: "oci://r/x@sha256:00".into(),
            phase: Some(Phase::Authz),
            fail_strategy: Some(FailStrategy::FailOpen),
            image_pull_policy: Some(PullPolicy::IfNotPresent),
            plugin_type: Some(PluginType::Network),
            matches: vec![TrafficSelector {
                mode: Some(WorkloadMode::ClientAndServer),
                ports: vec![PortSelector { number: 80 }],
            }],
            vm_config: Some(VmConfig {
                env: vec![EnvVar {
                    name: "A".into(),
                    value_from: Some(EnvValueSource::Host),
                    value: None,
                }],
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "url": "oci://r/x@sha256:00", "phase": "AUTHZ", "failStrategy": "FAIL_OPEN",
                "imagePullPolicy": "IfNotPresent", "type": "NETWORK",
                "match": [{"mode": "CLIENT_AND_SERVER", "ports": [{"number": 80}]}],
                "vmConfig": {"env": [{"name": "A", "valueFrom": "HOST"}]}
            })
        );
        let back: WasmPluginSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn verification_key_from_a_file_is_kept() {
        // Istio's CRD has `verificationKey`; a manifest that sets it must not be refused here.
        let spec: WasmPluginSpec = serde_yaml::from_str(
            "url: oci://r/x:1\nverificationKey: |\n  -----BEGIN PUBLIC KEY-----\n  abc\n",
        )
        .unwrap();
        assert_eq!(
            spec.verification_key.as_deref(),
            Some("-----BEGIN PUBLIC KEY-----\nabc\n")
        );
        let wire = serde_json::to_value(&spec).unwrap();
        assert_eq!(wire["verificationKey"], "-----BEGIN PUBLIC KEY-----\nabc\n");
    }

    #[test]
    fn a_traffic_extension_nests_the_same_wasm_part() {
        let spec = WasmPluginSpec {
            url: "oci://r/x@sha256:00".into(),
            phase: Some(Phase::Unspecified),
            priority: Some(5),
            plugin_name: Some("root".into()),
            selector: Some(WorkloadSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
            }),
            ..Default::default()
        };
        let wire = traffic_extension_wire(&spec);
        assert_eq!(
            wire,
            serde_json::json!({
                "selector": {"matchLabels": {"app": "web"}}, "phase": "UNSPECIFIED", "priority": 5,
                "wasm": {"url": "oci://r/x@sha256:00", "pluginName": "root"}
            })
        );
        assert_eq!(
            crate::plugin::read::strict(Kind::TrafficExtension, &wire).unwrap(),
            spec
        );
        let manifest = WasmPluginManifest::of_kind(Kind::TrafficExtension, "n", "ns", spec);
        let text = serde_yaml::to_string(&manifest).unwrap();
        assert!(text.contains("kind: TrafficExtension"), "{text}");
        let back: WasmPluginManifest = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, manifest);
    }

    #[test]
    fn a_lua_traffic_extension_has_no_wasm_part() {
        let spec = WasmPluginSpec {
            lua: Some(LuaConfig {
                inline_code: "function envoy_on_request(h) end".into(),
            }),
            ..Default::default()
        };
        let wire = traffic_extension_wire(&spec);
        assert_eq!(
            wire,
            serde_json::json!({"lua": {"inlineCode": "function envoy_on_request(h) end"}})
        );
        assert_eq!(
            crate::plugin::read::strict(Kind::TrafficExtension, &wire).unwrap(),
            spec
        );
    }
}
