//! What a sidecar needs to know about its pod, read the way Istio's injector and the kubelet
//! would hand it to the `istio-proxy` container.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;

use deployer::mesh::{COMPONENT_LOG_LEVEL_ANNOTATION, LOG_LEVEL_ANNOTATION, PROXY_CONTAINER};

/// The port a pod's app is assumed to serve when its containers declare none.
pub const DEFAULT_APP_PORT: u16 = 8080;
/// `sidecar.istio.io/agentLogLevel`: the agent's own log scopes.
const AGENT_LOG_LEVEL_ANNOTATION: &str = "sidecar.istio.io/agentLogLevel";
/// A pod annotated `"true"` gets no sidecar: benchmarks create hundreds of pods whose
/// `istio-proxy` logs are files served by kwok, and a real agent + Envoy for each would not
/// fit on one machine.
pub const SKIP_ANNOTATION: &str = "local-mesh.wasm-deployer/skip";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub ip: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub service_account: String,
    /// Containers other than istio-proxy (`ISTIO_META_APP_CONTAINERS`).
    pub app_containers: Vec<String>,
    /// Their declared TCP ports (`ISTIO_META_POD_PORTS`); the Sidecar ingress serves these.
    pub ports: Vec<u16>,
    /// The workload (Deployment, StatefulSet, ...) name, as the injector derives it.
    pub workload: String,
}

impl MeshPod {
    /// The pod, when it is one a sidecar runs for: an `istio-proxy` container, Running, with an
    /// IPv4 pod IP, not being deleted, and not annotated with `SKIP_ANNOTATION: "true"`.
    pub fn from_pod(pod: &Pod) -> Option<MeshPod> {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref()?;
        let status = pod.status.as_ref()?;
        if meta.deletion_timestamp.is_some()
            || status.phase.as_deref() != Some("Running")
            || !spec.containers.iter().any(|c| c.name == PROXY_CONTAINER)
            || meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(SKIP_ANNOTATION))
                .is_some_and(|v| v == "true")
        {
            return None;
        }
        let ip: Ipv4Addr = status.pod_ip.as_deref()?.parse().ok()?;
        let apps: Vec<_> = spec
            .containers
            .iter()
            .filter(|c| c.name != PROXY_CONTAINER)
            .collect();
        let mut ports: Vec<u16> = apps
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| u16::try_from(p.container_port).ok())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        if ports.is_empty() {
            ports.push(DEFAULT_APP_PORT);
        }
        let name = meta.name.clone()?;
        Some(MeshPod {
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            uid: meta.uid.clone()?,
            ip,
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            service_account: spec
                .service_account_name
                .clone()
                .unwrap_or_else(|| "default".into()),
            app_containers: apps.iter().map(|c| c.name.clone()).collect(),
            ports,
            workload: workload_name(pod, &name),
            name,
        })
    }

    /// `ISTIO_META_POD_PORTS`: the injector's JSON list of the app containers' ports.
    pub fn pod_ports_json(&self) -> String {
        let ports: Vec<_> = self
            .ports
            .iter()
            .map(|port| serde_json::json!({"containerPort": port, "protocol": "TCP"}))
            .collect();
        serde_json::Value::Array(ports).to_string()
    }

    /// The pilot-agent flags Istio's injection template derives from the pod's annotations
    /// (defaults: the chart's `global.proxy.logLevel`, `componentLogLevel`, `logging.level`).
    pub fn agent_log_flags(&self) -> Vec<String> {
        let annotation = |key: &str, default: &str| {
            self.annotations
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| default.to_string())
        };
        vec![
            format!(
                "--proxyLogLevel={}",
                annotation(LOG_LEVEL_ANNOTATION, "warning")
            ),
            format!(
                "--proxyComponentLogLevel={}",
                annotation(COMPONENT_LOG_LEVEL_ANNOTATION, "misc:error")
            ),
            format!(
                "--log_output_level={}",
                annotation(AGENT_LOG_LEVEL_ANNOTATION, "default:info")
            ),
        ]
    }
}

/// The injector's workload name: the owning Deployment for a ReplicaSet's pod (the
/// ReplicaSet name without its pod-template-hash), else the owner, else the pod.
fn workload_name(pod: &Pod, pod_name: &str) -> String {
    let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    else {
        return pod_name.to_string();
    };
    let hash = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"));
    match hash {
        Some(hash) if owner.kind == "ReplicaSet" => owner
            .name
            .strip_suffix(&format!("-{hash}"))
            .unwrap_or(&owner.name)
            .to_string(),
        _ => owner.name.clone(),
    }
}

/// A downward-API file (`/etc/istio/pod/labels`): `key="value"` lines, sorted, with the value
/// quoted the way Go's `%q` does for the characters labels and annotations can hold.
pub fn downward_api_file(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(key, value)| format!("{key}={}\n", go_quote(value)))
        .collect()
}

fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn running(mut containers: serde_json::Value) -> serde_json::Value {
        if containers.is_null() {
            containers = serde_json::json!([{"name": "app", "image": "x"}, {"name": "istio-proxy", "image": "auto"}]);
        }
        serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "demo", "uid": "u1",
                "labels": {"app": "web", "pod-template-hash": "6b9c"},
                "annotations": {"sidecar.istio.io/componentLogLevel": "wasm:info"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6b9c", "uid": "r", "controller": true}]},
            "spec": {"containers": containers},
            "status": {"phase": "Running", "podIP": "10.244.0.7"}
        })
    }

    #[test]
    fn a_running_pod_with_istio_proxy_is_meshed() {
        let meshed = MeshPod::from_pod(&pod(running(serde_json::Value::Null))).unwrap();
        assert_eq!(meshed.ip, Ipv4Addr::new(10, 244, 0, 7));
        assert_eq!(meshed.ports, vec![DEFAULT_APP_PORT]);
        assert_eq!(meshed.app_containers, vec!["app"]);
        assert_eq!(meshed.workload, "web");
        assert_eq!(meshed.service_account, "default");
        assert_eq!(
            meshed.agent_log_flags(),
            vec![
                "--proxyLogLevel=warning",
                "--proxyComponentLogLevel=wasm:info",
                "--log_output_level=default:info"
            ]
        );
    }

    #[test]
    fn pods_without_istio_proxy_or_not_running_are_not_meshed() {
        let plain = running(serde_json::json!([{"name": "app", "image": "x"}]));
        assert!(MeshPod::from_pod(&pod(plain)).is_none());
        let mut pending = running(serde_json::Value::Null);
        pending["status"]["phase"] = "Pending".into();
        assert!(MeshPod::from_pod(&pod(pending)).is_none());
        let mut deleting = running(serde_json::Value::Null);
        deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        assert!(MeshPod::from_pod(&pod(deleting)).is_none());
        let mut skipped = running(serde_json::Value::Null);
        skipped["metadata"]["annotations"][SKIP_ANNOTATION] = "true".into();
        assert!(MeshPod::from_pod(&pod(skipped)).is_none());
    }

    #[test]
    fn declared_tcp_ports_are_the_inbound_ports() {
        let containers = serde_json::json!([
            {"name": "app", "image": "x", "ports": [{"containerPort": 9090}, {"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]},
            {"name": "istio-proxy", "image": "auto"}
        ]);
        let meshed = MeshPod::from_pod(&pod(running(containers))).unwrap();
        assert_eq!(meshed.ports, vec![8080, 9090]);
        assert_eq!(
            meshed.pod_ports_json(),
            r#"[{"containerPort":8080,"protocol":"TCP"},{"containerPort":9090,"protocol":"TCP"}]"#
        );
    }

    #[test]
    fn downward_api_lines_are_go_quoted() {
        let map = BTreeMap::from([
            ("b".to_string(), "say \"hi\"\n".to_string()),
            ("a".to_string(), "web".to_string()),
        ]);
        assert_eq!(
            downward_api_file(&map),
            "a=\"web\"\nb=\"say \\\"hi\\\"\\n\"\n"
        );
    }
}
