//! Which pods a WasmPlugin reaches, by Istio's rules for sidecars: `selector.matchLabels` must
//! all be among the pod's labels; no selector means every pod of the plugin's namespace.
//! `targetRefs` name gateways and services, which sidecars on plain pods do not model, so a
//! plugin with targetRefs selects no pod here (and says so).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::{COMPONENT_LOG_LEVEL_ANNOTATION, LOG_LEVEL_ANNOTATION, PROXY_CONTAINER, Plugin};

/// What matters about a pod for a plugin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodView {
    pub name: String,
    /// Tells a pod from a later one of the same name (`logs -f` follows each once).
    #[serde(skip)]
    pub uid: String,
    pub phase: String,
    pub labels: BTreeMap<String, String>,
    pub has_proxy: bool,
    /// `sidecar.istio.io/componentLogLevel`, when set.
    pub component_log_level: Option<String>,
    /// `sidecar.istio.io/logLevel`, when set.
    pub log_level: Option<String>,
    /// What can make one pod's sidecar differ from another's (`status` samples across it).
    #[serde(flatten)]
    pub placement: Placement,
}

/// Where a pod runs and what its sidecar is: pods alike here behave alike, so a fleet's
/// status can read a few of each kind instead of every pod's log.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    pub node: Option<String>,
    /// The controller that made the pod (`ReplicaSet/web-6b9c`): one per rollout step.
    pub owner: Option<String>,
    #[serde(skip)]
    pub proxy_image: Option<String>,
    #[serde(skip)]
    pub revision: Option<String>,
    pub proxy_restarts: i32,
    pub proxy_ready: bool,
}

impl Placement {
    fn of(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        let proxy_status = pod
            .status
            .as_ref()
            .and_then(|status| status.container_statuses.as_ref())
            .and_then(|statuses| statuses.iter().find(|s| s.name == PROXY_CONTAINER));
        Placement {
            node: spec.and_then(|spec| spec.node_name.clone()),
            owner: pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|owner| owner.controller == Some(true))
                .map(|owner| format!("{}/{}", owner.kind, owner.name)),
            proxy_image: spec.and_then(|spec| {
                spec.containers
                    .iter()
                    .find(|c| c.name == PROXY_CONTAINER)
                    .and_then(|c| c.image.clone())
            }),
            revision: pod
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get("istio.io/rev"))
                .cloned(),
            proxy_restarts: proxy_status.map_or(0, |s| s.restart_count),
            proxy_ready: proxy_status.is_some_and(|s| s.ready),
        }
    }
}

impl PodView {
    pub fn from_pod(pod: &Pod) -> Self {
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        PodView {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            phase: pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".into()),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            has_proxy: pod.spec.as_ref().is_some_and(|spec| {
                spec.containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .any(|c| c.name == PROXY_CONTAINER)
            }),
            component_log_level: annotations.get(COMPONENT_LOG_LEVEL_ANNOTATION).cloned(),
            log_level: annotations.get(LOG_LEVEL_ANNOTATION).cloned(),
            placement: Placement::of(pod),
        }
    }

    /// Whether the sidecar prints `wasm` info lines (the level `NewHttpContext` is logged at):
    /// the wasm component, else the global level, must be info or more verbose. Istio's default
    /// is warning.
    pub fn logs_wasm_info(&self) -> bool {
        let verbose = |level: &str| matches!(level.trim(), "trace" | "debug" | "info");
        let component = self.component_log_level.as_deref().and_then(|levels| {
            levels
                .split(',')
                .filter_map(|pair| pair.split_once(':'))
                .find(|(component, _)| component.trim() == "wasm")
                .map(|(_, level)| verbose(level))
        });
        component.unwrap_or_else(|| self.log_level.as_deref().is_some_and(verbose))
    }
}

/// The pods a plugin selects, and why the others do not count.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Selection {
    pub selected: Vec<PodView>,
    /// Pods of the namespace the selector leaves out (for "selector matches no pod").
    pub not_selected: usize,
}

pub fn selects(plugin: &Plugin, labels: &BTreeMap<String, String>) -> bool {
    if !plugin.targets_workloads() {
        return false;
    }
    match &plugin.selector {
        None => true,
        Some(wanted) => wanted.iter().all(|(k, v)| labels.get(k) == Some(v)),
    }
}

pub fn select(plugin: &Plugin, pods: &[PodView]) -> Selection {
    let (selected, others): (Vec<_>, Vec<_>) = pods
        .iter()
        .cloned()
        .partition(|pod| selects(plugin, &pod.labels));
    Selection {
        selected,
        not_selected: others.len(),
    }
}

/// `app=web,tier=front`, or `(every pod)` when there is no selector.
pub fn describe_selector(plugin: &Plugin) -> String {
    if !plugin.targets_workloads() {
        return format!("targetRefs {}", plugin.target_refs.join(","));
    }
    match &plugin.selector {
        None => "(none: every pod of the namespace)".into(),
        Some(labels) if labels.is_empty() => "(empty: every pod of the namespace)".into(),
        Some(labels) => labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(selector: Option<&[(&str, &str)]>) -> Plugin {
        let mut spec = serde_json::json!({"url": "oci://r/x:v1"});
        if let Some(labels) = selector {
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect();
            spec["selector"] = serde_json::json!({ "matchLabels": labels });
        }
        let object =
            kube::api::DynamicObject::new("p", &crate::cluster::wasmplugin::api_resource())
                .within("ns")
                .data(serde_json::json!({ "spec": spec }));
        Plugin::from_object(&object)
    }

    fn pod(name: &str, labels: &[(&str, &str)]) -> PodView {
        PodView {
            name: name.into(),
            uid: format!("uid-{name}"),
            phase: "Running".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            has_proxy: true,
            component_log_level: None,
            log_level: None,
            placement: Default::default(),
        }
    }

    #[test]
    fn match_labels_must_all_be_present() {
        let pods = [
            pod("a", &[("app", "web"), ("v", "1")]),
            pod("b", &[("app", "web")]),
            pod("c", &[("app", "db")]),
        ];
        let selection = select(&plugin(Some(&[("app", "web"), ("v", "1")])), &pods);
        assert_eq!(selection.selected.len(), 1);
        assert_eq!(selection.selected[0].name, "a");
        assert_eq!(selection.not_selected, 2);
        assert_eq!(select(&plugin(None), &pods).selected.len(), 3);
        assert_eq!(select(&plugin(Some(&[])), &pods).selected.len(), 3);
    }

    #[test]
    fn wasm_info_needs_the_annotation_or_a_verbose_global_level() {
        let mut p = pod("a", &[]);
        assert!(!p.logs_wasm_info());
        p.component_log_level = Some("misc:error,wasm:info".into());
        assert!(p.logs_wasm_info());
        p.component_log_level = Some("wasm:warning".into());
        p.log_level = Some("debug".into());
        assert!(!p.logs_wasm_info(), "the component level wins");
        p.component_log_level = None;
        assert!(p.logs_wasm_info());
    }
}
