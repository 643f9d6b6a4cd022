//! A WasmPlugin or TrafficExtension as read back from a cluster, for `logs` and `status`: the
//! spec in the one model (`plugin::spec`, read with `plugin::read::lenient`: a reader must cope
//! with objects written by Istio's own tooling or newer API versions, so unknown fields and
//! enum values are ignored), plus the values Istio uses when a field is unset.
use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::cluster::{Cluster, wasmplugin};
use crate::plugin::read;
use crate::plugin::spec::{EnvValueSource, Kind, KindChoice, WasmPluginSpec, phase_on_wire};
use crate::plugin::wire_enum::WireEnum;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plugin {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub url: String,
    /// Hex sha256 from the spec (empty: not pinned by that field).
    pub sha256: String,
    /// `None`: no selector at all.
    pub selector: Option<BTreeMap<String, String>>,
    /// `Kind/name` of each targetRef (gateways, services): not sidecar selection.
    pub target_refs: Vec<String>,
    pub plugin_name: String,
    /// JSON text handed to the module's on_configure, when set.
    pub plugin_config: Option<String>,
    pub phase: String,
    pub priority: i64,
    pub fail_strategy: String,
    pub plugin_type: String,
    pub pull_policy: String,
    /// `imagePullSecret`: a Secret of the plugin's namespace with the registry's credentials.
    pub image_pull_secret: Option<String>,
    /// (name, value) of INLINE env vars and names of HOST ones (value `None`).
    pub env: Vec<(String, Option<String>)>,
    pub resource_version: String,
    pub generation: i64,
    /// When the object last changed (its newest managedFields entry, else its creation):
    /// sidecar lines older than this are about an earlier version.
    pub changed_at: Option<Timestamp>,
    /// The spec exactly as stored, for display.
    pub spec: Value,
    /// The spec in the one model, read leniently (fields a newer Istio added are ignored).
    #[serde(skip)]
    pub model: WasmPluginSpec,
    /// A WasmPlugin whose name a TrafficExtension shares (during `deployer migrate`): then the
    /// native `<ns>.<name>` lines are the TrafficExtension's, only the translated ones its own.
    #[serde(skip)]
    pub shares_name: bool,
}

impl Plugin {
    pub fn from_object(object: &DynamicObject) -> Self {
        let kind = wasmplugin::kind_of(object);
        let stored = object.data.get("spec").cloned().unwrap_or(Value::Null);
        // A spec whose known fields have the wrong JSON type (which a CRD's schema rules out)
        // reads as empty; the stored spec is still shown as stored.
        let model = read::lenient(kind, &stored).unwrap_or_default();
        let mut target_refs: Vec<String> = model
            .target_refs
            .iter()
            .chain(&model.target_ref)
            .map(ToString::to_string)
            .collect();
        target_refs.dedup();
        let env = model
            .vm_config
            .iter()
            .flat_map(|vm| &vm.env)
            .map(|e| match e.value_from {
                Some(EnvValueSource::Host) => (e.name.clone(), None),
                _ => (e.name.clone(), Some(e.value.clone().unwrap_or_default())),
            })
            .collect();
        let text =
            |value: Option<&str>, default: &'static str| or(value.unwrap_or_default(), default);
        Plugin {
            kind,
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
            url: model.url.clone(),
            sha256: model.sha256.clone().unwrap_or_default(),
            selector: model.selector.as_ref().map(|s| s.match_labels.clone()),
            target_refs,
            plugin_name: model.plugin_name.clone().unwrap_or_default(),
            plugin_config: model
                .plugin_config
                .as_ref()
                .filter(|v| !v.is_null())
                .map(Value::to_string),
            phase: phase_on_wire(
                kind,
                &text(
                    model.phase.as_ref().map(WireEnum::as_str),
                    "UNSPECIFIED_PHASE",
                ),
            )
            .to_string(),
            priority: model.priority.map(i64::from).unwrap_or(0),
            fail_strategy: text(
                model.fail_strategy.as_ref().map(WireEnum::as_str),
                "FAIL_CLOSE",
            ),
            plugin_type: text(model.plugin_type.as_ref().map(WireEnum::as_str), "HTTP"),
            pull_policy: text(
                model.image_pull_policy.as_ref().map(WireEnum::as_str),
                "UNSPECIFIED_POLICY",
            ),
            image_pull_secret: model
                .image_pull_secret
                .clone()
                .filter(|name| !name.is_empty()),
            env,
            resource_version: object.metadata.resource_version.clone().unwrap_or_default(),
            generation: object.metadata.generation.unwrap_or_default(),
            changed_at: object
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .filter_map(|entry| entry.time.as_ref().map(|t| t.0))
                .max()
                .or_else(|| object.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            spec: stored,
            model,
            shares_name: false,
        }
    }

    /// Whether this is a TrafficExtension with Lua instead of a wasm module.
    pub fn is_lua(&self) -> bool {
        self.kind == Kind::TrafficExtension && self.model.lua.is_some()
    }

    /// Istio's ECDS resource name for this plugin in a sidecar's config dump (this Istio, which
    /// serves every WasmPlugin as a translated TrafficExtension).
    pub fn ecds_name(&self) -> String {
        let suffix = match self.kind {
            Kind::WasmPlugin => super::logline::TRANSLATED_SUFFIX,
            Kind::TrafficExtension => "",
        };
        format!(
            "extensions.istio.io/trafficextension/{}{suffix}",
            self.envoy_name()
        )
    }

    /// Envoy's name for the plugin in a sidecar: `<namespace>.<name>` (the first word after
    /// `wasm log` in its lines; Istio 1.31+ appends `~istio-translated-wasmplugin` for a
    /// WasmPlugin, never for a TrafficExtension).
    pub fn envoy_name(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }

    /// The url as Istio reads it: no scheme means oci.
    pub fn fetch_url(&self) -> String {
        if self.url.contains("://") {
            self.url.clone()
        } else {
            format!("oci://{}", self.url)
        }
    }

    /// The sha256 Istio checks against: the field, else a `@sha256:` digest in an oci url.
    pub fn expected_sha256(&self) -> Option<String> {
        if !self.sha256.is_empty() {
            return Some(self.sha256.to_ascii_lowercase());
        }
        let url = self.fetch_url();
        if url.starts_with("oci://") {
            return url.split_once("@sha256:").map(|(_, hex)| hex.to_string());
        }
        None
    }

    /// Whether this plugin attaches to pods by labels (selector or nothing) rather than to
    /// gateways/services through targetRefs.
    pub fn targets_workloads(&self) -> bool {
        self.target_refs.is_empty()
    }

    /// A key that changes whenever what a sidecar would load changes.
    pub fn fingerprint(&self) -> String {
        format!("{}/{}@{}", self.namespace, self.name, self.spec)
    }
}

/// `value`, or `default` when it is empty (Istio's default for an unset field).
fn or(value: &str, default: &str) -> String {
    if value.is_empty() { default } else { value }.to_string()
}

/// The plugin `--kind` names (`auto`: see `Cluster::resolve_kind`), or `PluginMissing`.
pub async fn find(
    cluster: &Cluster,
    choice: KindChoice,
    namespace: &str,
    name: &str,
) -> Result<Plugin, super::Error> {
    let kind = cluster.resolve_kind(choice, namespace, name).await?;
    cluster.ensure_crd_of(kind).await?;
    match cluster.get_object(kind, namespace, name).await? {
        Some(object) => {
            let mut plugin = Plugin::from_object(&object);
            plugin.shares_name = kind == Kind::WasmPlugin
                && matches!(
                    cluster
                        .get_object(Kind::TrafficExtension, namespace, name)
                        .await,
                    Ok(Some(_))
                );
            Ok(plugin)
        }
        None => Err(super::Error::PluginMissing {
            context: cluster.context.clone(),
            namespace: namespace.into(),
            name: name.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(spec: Value) -> DynamicObject {
        let mut object = DynamicObject::new("ctx", &crate::cluster::wasmplugin::api_resource())
            .within("demo")
            .data(serde_json::json!({ "spec": spec }));
        object.metadata.resource_version = Some("7".into());
        object
    }

    #[test]
    fn reads_the_fields_sidecars_use() {
        let plugin = Plugin::from_object(&object(serde_json::json!({
            "url": "localhost:5000/x:v1@sha256:abcd",
            "selector": {"matchLabels": {"app": "web"}},
            "pluginName": "root",
            "pluginConfig": {"a": 1},
            "vmConfig": {"env": [{"name": "A", "value": "1"}, {"name": "H", "valueFrom": "HOST"}]},
            "futureField": true
        })));
        assert_eq!(plugin.envoy_name(), "demo.ctx");
        assert_eq!(plugin.fetch_url(), "oci://localhost:5000/x:v1@sha256:abcd");
        assert_eq!(plugin.expected_sha256().as_deref(), Some("abcd"));
        assert_eq!(plugin.selector.unwrap()["app"], "web");
        assert_eq!(plugin.plugin_config.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(plugin.fail_strategy, "FAIL_CLOSE");
        assert_eq!(
            plugin.env,
            vec![("A".into(), Some("1".into())), ("H".into(), None)]
        );
    }

    #[test]
    fn fields_and_values_of_a_newer_istio_are_read_not_refused() {
        let plugin = Plugin::from_object(&object(serde_json::json!({
            "url": "oci://r/x:1",
            "failStrategy": "FAIL_SOMEDAY",
            "futureField": {"nested": true},
            "vmConfig": {"env": [{"name": "A", "value": "1", "futureEnvField": 1}]}
        })));
        assert_eq!(plugin.fail_strategy, "FAIL_SOMEDAY");
        assert_eq!(plugin.env, vec![("A".into(), Some("1".into()))]);
        assert_eq!(
            plugin.spec["futureField"]["nested"], true,
            "shown as stored"
        );
    }

    #[test]
    fn the_sha256_field_wins_over_the_url_digest() {
        let plugin = Plugin::from_object(&object(serde_json::json!({
            "url": "oci://r/x@sha256:aaaa", "sha256": "BBBB"
        })));
        assert_eq!(plugin.expected_sha256().as_deref(), Some("bbbb"));
        assert!(plugin.selector.is_none());
        assert!(plugin.targets_workloads());
    }

    #[test]
    fn a_traffic_extension_reads_its_wasm_part() {
        let object = DynamicObject::new(
            "ctx",
            &crate::cluster::wasmplugin::api_resource_of(Kind::TrafficExtension),
        )
        .within("demo")
        .data(serde_json::json!({"spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "wasm": {"url": "oci://r/x@sha256:aaaa", "pluginName": "root", "failStrategy": "FAIL_OPEN"}
        }}));
        let plugin = Plugin::from_object(&object);
        assert_eq!(plugin.kind, Kind::TrafficExtension);
        assert_eq!(plugin.fetch_url(), "oci://r/x@sha256:aaaa");
        assert_eq!(
            (plugin.plugin_name.as_str(), plugin.fail_strategy.as_str()),
            ("root", "FAIL_OPEN")
        );
        assert_eq!(plugin.phase, "UNSPECIFIED");
        assert_eq!(
            plugin.ecds_name(),
            "extensions.istio.io/trafficextension/demo.ctx"
        );
        assert!(
            plugin.spec.get("wasm").is_some(),
            "the stored spec is shown as stored"
        );
    }

    #[test]
    fn a_wasmplugin_sharing_its_name_keeps_only_its_translated_lines() {
        let line = |name: &str| {
            format!(
                "2026-11-29T17:00:00.000000Z\tinfo\tenvoy wasm context.cc:1151\twasm log {name}: NewHttpContext\tthread=20"
            )
        };
        let mut plugin = Plugin::from_object(&object(serde_json::json!({"url": "oci://r/x:1"})));
        let alone = crate::mesh::logline::Matcher::for_plugin(&plugin);
        assert!(
            alone.classify(&line("demo.ctx")).is_some(),
            "older Istio's name"
        );
        plugin.shares_name = true;
        let matcher = crate::mesh::logline::Matcher::for_plugin(&plugin);
        assert_eq!(matcher.classify(&line("demo.ctx")), None);
        assert!(
            matcher
                .classify(&line("demo.ctx~istio-translated-wasmplugin"))
                .is_some()
        );
    }
}
