//! The cluster objects a sidecar needs besides its pod: what the kubelet would mount (the
//! `istio-ca` token, the root certificate), the kwok `Logs` object that serves the container log
//! to `kubectl logs`, and the `Sidecar` that stands in for traffic interception.
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};

use deployer::mesh::PROXY_CONTAINER;

use crate::Error;

const FIELD_MANAGER: &str = "local-mesh";
/// The Sidecar object local-mesh keeps in each namespace with meshed pods.
pub const SIDECAR_NAME: &str = "local-mesh";

fn kube_error(what: &str, namespace: &str, err: kube::Error) -> Error {
    Error::Kube {
        what: what.to_string(),
        namespace: namespace.to_string(),
        message: err.to_string(),
    }
}

/// A token for the pod's service account with audience `istio-ca`, as the injector's projected
/// volume asks the kubelet for (`/var/run/secrets/tokens/istio-token`).
pub async fn istio_token(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
) -> Result<String, Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["istio-ca".into()],
            expiration_seconds: Some(24 * 3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(service_account, &PostParams::default(), &request)
        .await
        .map_err(|err| {
            kube_error(
                &format!("cannot get an istio-ca token for service account {service_account}"),
                namespace,
                err,
            )
        })?;
    answer.status.map(|s| s.token).ok_or_else(|| Error::Kube {
        what: format!("the token request for service account {service_account}"),
        namespace: namespace.into(),
        message: "the API server answered without a token".into(),
    })
}

/// istiod's root certificate as it publishes it in every namespace (configmap
/// `istio-ca-root-cert`), waiting for istiod to write it into a new namespace.
pub async fn root_cert(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<String, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    loop {
        let found = api.get_opt("istio-ca-root-cert").await.map_err(|err| {
            kube_error("cannot read configmap istio-ca-root-cert", namespace, err)
        })?;
        if let Some(pem) = found
            .and_then(|cm| cm.data)
            .and_then(|data| data.get("root-cert.pem").cloned())
        {
            return Ok(pem);
        }
        if Instant::now() > deadline {
            return Err(Error::Kube {
                what: "configmap istio-ca-root-cert".into(),
                namespace: namespace.into(),
                message: format!(
                    "istiod did not publish it within {}s (is istiod running? scripts/stack status)",
                    timeout.as_secs()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Server-side applies the kwok `Logs` object (same name and namespace as the pod) that maps
/// the `istio-proxy` container to `path`, followed so `kubectl logs -f` streams new lines.
pub async fn publish_logs(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    path: &Path,
) -> Result<(), Error> {
    let logs = resource("kwok.x-k8s.io", "v1alpha1", "Logs", "logs");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &logs);
    let body = serde_json::json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"logs": [{
            "containers": [PROXY_CONTAINER],
            "logsFile": path.display().to_string(),
            "follow": true
        }]}
    });
    api.patch(
        pod,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|err| {
        kube_error(
            &format!(
                "cannot apply kwok's Logs for pod {pod} (is kwok running with --enable-crds Logs?)"
            ),
            namespace,
            err,
        )
    })
}

/// Server-side applies the kwok `PortForward` object that maps the pod's port 15000 (Envoy's
/// admin in an Istio sidecar) to this sidecar's admin port, so `kubectl port-forward` and
/// `deployer status` reach it through the API server as in a real cluster.
pub async fn publish_admin(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    admin_port: u16,
) -> Result<(), Error> {
    let forwards = resource("kwok.x-k8s.io", "v1alpha1", "PortForward", "portforwards");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &forwards);
    let body = serde_json::json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "PortForward",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"forwards": [{
            "ports": [ENVOY_ADMIN_PORT],
            "target": {"address": "127.0.0.1", "port": admin_port}
        }]}
    });
    api.patch(pod, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map(|_| ())
        .map_err(|err| {
            kube_error(
                &format!("cannot apply kwok's PortForward for pod {pod} (is kwok running with --enable-crds PortForward?)"),
                namespace,
                err,
            )
        })
}

/// Envoy's admin port inside an Istio sidecar's pod.
pub const ENVOY_ADMIN_PORT: u16 = 15000;

/// The namespace's `Sidecar` (no workload selector): an ingress listener on each app port,
/// bound by istiod to each pod's IP, forwarding to the shared app. Without iptables
/// (interception mode NONE) this is how inbound traffic goes through the sidecar.
pub fn inbound_sidecar(namespace: &str, ports: &BTreeSet<u16>, app_port: u16) -> serde_json::Value {
    let ingress: Vec<_> = ports
        .iter()
        .map(|port| {
            serde_json::json!({
                "port": {"number": port, "protocol": "HTTP", "name": format!("http-{port}")},
                "defaultEndpoint": format!("127.0.0.1:{app_port}")
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": SIDECAR_NAME, "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "local-mesh"}},
        "spec": {
            "ingress": ingress,
            "egress": [{"hosts": ["./*", "istio-system/*"]}]
        }
    })
}

pub async fn apply_inbound_sidecar(
    client: &kube::Client,
    namespace: &str,
    ports: &BTreeSet<u16>,
    app_port: u16,
) -> Result<(), Error> {
    let sidecar = resource("networking.istio.io", "v1", "Sidecar", "sidecars");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &sidecar);
    let body = inbound_sidecar(namespace, ports, app_port);
    api.patch(
        SIDECAR_NAME,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|err| kube_error("cannot apply the inbound Sidecar", namespace, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbound_sidecar_has_one_http_ingress_per_port_without_bind() {
        let ports = BTreeSet::from([8080, 9090]);
        let sidecar = inbound_sidecar("demo", &ports, 40000);
        let ingress = sidecar["spec"]["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 2);
        assert_eq!(ingress[0]["port"]["number"], 8080);
        assert_eq!(ingress[0]["port"]["protocol"], "HTTP");
        assert_eq!(ingress[1]["defaultEndpoint"], "127.0.0.1:40000");
        // No bind: istiod binds to the pod's IP (its global unicast INSTANCE_IP).
        assert!(ingress[0].get("bind").is_none());
        assert!(sidecar["spec"].get("workloadSelector").is_none());
    }
}
