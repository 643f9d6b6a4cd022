//! Turning API answers into errors that name the verb, the resource and the fix.
use super::{Cluster, Error, connect};

/// What was being attempted when a request failed.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub verb: &'static str,
    /// Plural resource with group, e.g. `wasmplugins.extensions.istio.io`.
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// The parts of a failed request that decide the mapping (kept apart from kube's types so the
/// mapping is testable without a server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An HTTP answer with a status code (and the Status message/reason when JSON).
    Status {
        code: u16,
        reason: String,
        /// `details.kind` of the Status: the resource the answer is about, e.g. `namespaces`
        /// when the namespace of the request does not exist.
        kind: String,
        /// A 409 whose causes are other field managers' fields (not a stale write).
        field_manager_conflict: bool,
        message: String,
    },
    /// No HTTP answer: connection refused, DNS, TLS, timeout.
    Transport(String),
}

impl From<kube::Error> for Failure {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => Failure::Status {
                code: status.code,
                reason: status.reason.clone(),
                kind: details_kind(&status).to_string(),
                field_manager_conflict: is_field_manager_conflict(&status),
                message: status.message.clone(),
            },
            other => {
                // The chain carries the useful part ("Connection refused").
                Failure::Transport(crate::error_chain::flatten(&other))
            }
        }
    }
}

/// `details.kind` of a 404 whose namespace is missing (the API server's NamespaceLifecycle
/// admission answers `namespaces "x" not found` with it), as opposed to the object's own kind.
pub const NAMESPACES: &str = "namespaces";

/// `details.kind` of an API server's Status (empty when it has no details).
pub fn details_kind(status: &kube::core::Status) -> &str {
    status
        .details
        .as_ref()
        .map_or("", |details| details.kind.as_str())
}

/// The cause type of a server-side apply conflict with another field manager.
const FIELD_MANAGER_CONFLICT: &str = "FieldManagerConflict";

/// Whether `status` is a server-side apply conflict with another field manager: a 409
/// Conflict whose causes name the fields (a stale resourceVersion is a 409 Conflict without
/// causes; both checked against the stack's kube-apiserver).
pub fn is_field_manager_conflict(status: &kube::core::Status) -> bool {
    status.is_conflict()
        && status
            .details
            .iter()
            .flat_map(|details| &details.causes)
            .any(|cause| cause.reason == FIELD_MANAGER_CONFLICT)
}

pub fn map(cluster: &Cluster, attempt: &Attempt<'_>, failure: Failure) -> Error {
    let context = cluster.context.clone();
    let resource = attempt.resource.to_string();
    let namespace = attempt.namespace.unwrap_or_default().to_string();
    let name = attempt.name.unwrap_or_default().to_string();
    match failure {
        Failure::Transport(message) => Error::Unreachable {
            context,
            server: cluster.server.clone(),
            timeout: connect::CONNECT_TIMEOUT,
            message,
        },
        Failure::Status {
            code: 401, message, ..
        } => Error::Unauthorized {
            context,
            server: cluster.server.clone(),
            message,
        },
        Failure::Status {
            code: 403, message, ..
        } => Error::Forbidden {
            context,
            user: cluster.user.clone(),
            verb: attempt.verb,
            resource,
            namespace: attempt.namespace.map(str::to_string),
            message,
        },
        // Another 409 (a write that stayed stale through every retry) falls through to `Api`:
        // taking over fields would not help it.
        Failure::Status {
            code: 409,
            field_manager_conflict: true,
            message,
            ..
        } => Error::Conflict {
            context,
            resource,
            namespace,
            name,
            message,
        },
        Failure::Status {
            code: 422, message, ..
        }
        | Failure::Status {
            code: 400, message, ..
        } => Error::Invalid {
            context,
            resource,
            namespace,
            name,
            message,
        },
        Failure::Status {
            code: 404,
            reason,
            kind,
            ..
        } => {
            if kind == NAMESPACES {
                Error::NamespaceMissing { context, namespace }
            } else if reason == "NotFound" && !name.is_empty() {
                Error::NotFound {
                    context,
                    resource,
                    namespace,
                    name,
                }
            } else {
                // A bare "404 page not found" (not a Status): the API path itself does not exist.
                let kind = crate::plugin::spec::Kind::ALL
                    .into_iter()
                    .find(|kind| kind.resource() == attempt.resource)
                    .unwrap_or_default();
                Error::CrdMissing {
                    kind: kind.name(),
                    context,
                    server: cluster.server.clone(),
                    resource: kind.plural(),
                    api_version: crate::plugin::spec::API_VERSION,
                }
            }
        }
        Failure::Status { code, message, .. } => Error::Api {
            context,
            verb: attempt.verb,
            resource,
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cluster() -> Cluster {
        let config = kube::Config::new("https://10.0.0.1:6443".parse().unwrap());
        Cluster {
            client: kube::Client::try_from(config).unwrap(),
            context: "prod".into(),
            server: "https://10.0.0.1:6443".into(),
            default_namespace: "default".into(),
            user: "alice".into(),
        }
    }

    fn status(code: u16, reason: &str, message: &str) -> Failure {
        status_about(code, reason, "", message)
    }

    fn status_about(code: u16, reason: &str, kind: &str, message: &str) -> Failure {
        Failure::Status {
            code,
            reason: reason.into(),
            kind: kind.into(),
            field_manager_conflict: false,
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn error_mapping() {
        crate::tls::install_crypto_provider();
        let cluster = cluster().await;
        let attempt = Attempt {
            verb: "patch",
            resource: "wasmplugins.extensions.istio.io",
            namespace: Some("demo"),
            name: Some("ctx"),
        };
        let cases = [
            (
                status(403, "Forbidden", "User \"alice\" cannot patch resource"),
                vec![
                    "alice cannot patch wasmplugins.extensions.istio.io in namespace demo",
                    "RBAC",
                    "prod",
                ],
            ),
            (
                Failure::Status {
                    code: 409,
                    reason: "Conflict".into(),
                    kind: String::new(),
                    field_manager_conflict: true,
                    message: "Apply failed with 1 conflict: conflict with \"other\": .spec.url"
                        .into(),
                },
                vec!["conflict with \"other\"", "--force-conflicts", "demo/ctx"],
            ),
            (
                status_about(
                    409,
                    "Conflict",
                    "wasmplugins",
                    "Operation cannot be fulfilled on wasmplugins.extensions.istio.io \"ctx\": the object has been modified",
                ),
                vec!["HTTP 409", "the object has been modified"],
            ),
            (
                status_about(
                    404,
                    "NotFound",
                    "namespaces",
                    "namespaces \"demo\" not found",
                ),
                vec![
                    "namespace \"demo\" not found",
                    "kubectl create namespace demo",
                ],
            ),
            (
                status_about(
                    404,
                    "NotFound",
                    "wasmplugins",
                    "wasmplugins.extensions.istio.io \"ctx\" not found",
                ),
                vec!["demo/ctx not found"],
            ),
            (
                status(404, "Failed to parse error data", "404 page not found"),
                vec![
                    "WasmPlugin CRD not found: is Istio installed in this cluster?",
                    "10.0.0.1:6443",
                ],
            ),
            (
                status(422, "Invalid", "spec.sha256: Invalid value: \"x\""),
                vec!["rejected", "spec.sha256: Invalid value"],
            ),
            (
                status(401, "Unauthorized", "Unauthorized"),
                vec!["did not accept the credentials of context prod", "HTTP 401"],
            ),
            (
                status(500, "InternalError", "etcd down"),
                vec!["HTTP 500", "etcd down"],
            ),
            (
                Failure::Transport("connection refused".into()),
                vec![
                    "cannot reach the API server https://10.0.0.1:6443",
                    "prod",
                    "connection refused",
                ],
            ),
        ];
        for (failure, wanted) in cases {
            let text = map(&cluster, &attempt, failure.clone()).to_string();
            for part in wanted {
                assert!(
                    text.contains(part),
                    "{failure:?}: wanted {part:?} in {text}"
                );
            }
        }
    }
}
