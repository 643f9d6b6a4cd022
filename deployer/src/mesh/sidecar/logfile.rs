//! The pod's `istio-proxy` container log: a file of CRI log lines (what a kubelet writes and
//! kwok reads back), and the kwok `Logs` resource that makes `kubectl logs <pod> -c
//! istio-proxy` serve it.
use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};

use crate::mesh::{Error, PROXY_CONTAINER, logline};

pub struct LogFile {
    path: PathBuf,
    file: std::fs::File,
}

impl LogFile {
    /// Opens (appends to) the log: a restarted stand-in continues the same container log.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                what: "cannot open the sidecar log",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends text as the container's stdout, one CRI line per line of text (a CRI line
    /// cannot hold a newline).
    pub fn write(&mut self, text: &str) {
        let now = Timestamp::now();
        for part in text.lines() {
            let line = logline::cri_line(now, "stdout", part);
            // A full disk must not take the sidecar down; the line goes to our stderr then.
            if self.file.write_all(line.as_bytes()).is_err() {
                eprint!("{line}");
            }
        }
    }

    /// An istio-agent line (`<time>\t<level>\t<scope>\t<message>`).
    pub fn agent(&mut self, level: &str, scope: &str, message: &str) {
        self.write(&logline::agent_line(
            Timestamp::now(),
            level,
            scope,
            message,
        ));
    }
}

fn logs_resource() -> ApiResource {
    ApiResource {
        group: "kwok.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "kwok.x-k8s.io/v1alpha1".into(),
        kind: "Logs".into(),
        plural: "logs".into(),
    }
}

/// Server-side applies the kwok `Logs` object (same name and namespace as the pod) mapping
/// the `istio-proxy` container to `path`, followed so `kubectl logs -f` streams new lines.
pub async fn publish(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    path: &Path,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &logs_resource());
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
    api.patch(pod, &PatchParams::apply("sidecar-standin").force(), &Patch::Apply(&body))
        .await
        .map(|_| ())
        .map_err(|err| Error::StandIn {
            namespace: namespace.into(),
            pod: pod.into(),
            message: format!(
                "cannot apply kwok's Logs resource (is kwok running with --enable-crds Logs? `scripts/stack up` does): {err}"
            ),
        })
}
