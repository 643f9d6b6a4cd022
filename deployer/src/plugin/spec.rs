//! Serde model of the Istio `WasmPlugin` (extensions.istio.io/v1alpha1) spec.
//!
//! Field names, enums and nesting follow Istio's API (see shared FACTS.md). Unknown fields are
//! rejected so a typo in `-f plugin.yaml` is an error instead of a silently ignored key.
//! Enum values are typed; free-form values (url, sha256, labels, ports) stay strings/integers
//! here and are checked by `validate`, so one run reports every problem at once.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const GROUP: &str = "extensions.istio.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "extensions.istio.io/v1alpha1";
pub const KIND: &str = "WasmPlugin";
pub const PLURAL: &str = "wasmplugins";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvValueSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSelector>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSelector {
    /// Wider than u16 so an out-of-range port in a file reaches validation with a clear message.
    pub number: i64,
}

/// Lower-case CLI spellings (`--phase authz`) map to Istio's upper-case wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Phase {
    #[serde(rename = "UNSPECIFIED_PHASE")]
    #[value(name = "unspecified", alias = "unspecified_phase")]
    Unspecified,
    #[serde(rename = "AUTHN")]
    Authn,
    #[serde(rename = "AUTHZ")]
    Authz,
    #[serde(rename = "STATS")]
    Stats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum FailStrategy {
    #[serde(rename = "FAIL_CLOSE")]
    #[value(name = "fail-close", alias = "fail_close")]
    FailClose,
    #[serde(rename = "FAIL_OPEN")]
    #[value(name = "fail-open", alias = "fail_open")]
    FailOpen,
    #[serde(rename = "FAIL_RELOAD")]
    #[value(name = "fail-reload", alias = "fail_reload")]
    FailReload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum PullPolicy {
    #[serde(rename = "UNSPECIFIED_POLICY")]
    #[value(name = "unspecified", alias = "unspecified_policy")]
    Unspecified,
    #[serde(rename = "IfNotPresent")]
    #[value(name = "if-not-present", alias = "ifnotpresent")]
    IfNotPresent,
    #[serde(rename = "Always")]
    #[value(name = "always")]
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum PluginType {
    #[serde(rename = "UNSPECIFIED_PLUGIN_TYPE")]
    #[value(name = "unspecified", alias = "unspecified_plugin_type")]
    Unspecified,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "NETWORK")]
    Network,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvValueSource {
    #[serde(rename = "INLINE")]
    Inline,
    #[serde(rename = "HOST")]
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum WorkloadMode {
    #[serde(rename = "UNDEFINED")]
    Undefined,
    #[serde(rename = "CLIENT")]
    Client,
    #[serde(rename = "SERVER")]
    Server,
    #[serde(rename = "CLIENT_AND_SERVER")]
    #[value(name = "client-and-server", alias = "client_and_server")]
    ClientAndServer,
}

/// A whole resource as `-f plugin.yaml` holds it and `render` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasmPluginManifest {
    pub api_version: String,
    pub kind: String,
    pub metadata: ManifestMetadata,
    pub spec: WasmPluginSpec,
    /// Accepted (and dropped) so `kubectl get -o yaml` output can be fed back with `-f`.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
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
        Self {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            metadata: ManifestMetadata {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            spec,
            status: None,
        }
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
    fn unknown_fields_are_rejected() {
        let err = serde_yaml::from_str::<WasmPluginSpec>("url: x\nphse: AUTHN\n").unwrap_err();
        assert!(err.to_string().contains("phse"), "{err}");
    }
}
