//! The `kubernetes.io/dockerconfigjson` Secret Istio reads for `imagePullSecret`: it must be in
//! the plugin's namespace and of that type (FACTS.md). It holds only the one registry's
//! credentials, never the user's whole docker config.
use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use serde_json::json;

use super::errors::{self, Attempt, Failure};
use super::{Cluster, DryRun, Error, FIELD_MANAGER};

pub const SECRET_TYPE: &str = "kubernetes.io/dockerconfigjson";

/// One registry's credentials. Debug never shows them.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryCredential {
    Basic {
        username: String,
        password: String,
    },
    /// docker `identitytoken` (OAuth2 refresh token).
    IdentityToken(String),
    /// docker `registrytoken` (bearer token).
    RegistryToken(String),
}

impl std::fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryCredential::Basic { username, .. } => write!(
                f,
                "Basic {{ username: {username:?}, password: <redacted> }}"
            ),
            RegistryCredential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            RegistryCredential::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// The `.dockerconfigjson` bytes: `{"auths": {REGISTRY: {...}}}` with exactly one entry.
pub fn docker_config_json(registry: &str, credential: &RegistryCredential) -> Vec<u8> {
    let entry = match credential {
        RegistryCredential::Basic { username, password } => {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            json!({ "username": username, "password": password, "auth": auth })
        }
        RegistryCredential::IdentityToken(token) => json!({ "identitytoken": token }),
        RegistryCredential::RegistryToken(token) => json!({ "registrytoken": token }),
    };
    serde_json::to_vec(&json!({ "auths": { registry: entry } })).expect("JSON value serializes")
}

pub fn secret(
    name: &str,
    namespace: &str,
    registry: &str,
    credential: &RegistryCredential,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "deployer".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.to_string()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(docker_config_json(registry, credential)),
        )])),
        ..Default::default()
    }
}

impl Cluster {
    /// Creates or updates the pull Secret (server-side apply, same field manager as the plugin).
    pub async fn apply_pull_secret(
        &self,
        secret: &Secret,
        force: bool,
        dry_run: DryRun,
    ) -> Result<(), Error> {
        let namespace = secret
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| self.default_namespace.clone());
        let name = secret.metadata.name.clone().unwrap_or_default();
        let mut body = secret.clone();
        // Server-side apply needs apiVersion/kind in the body; the typed struct omits them.
        let mut value = serde_json::to_value(&body).expect("Secret serializes");
        value["apiVersion"] = json!("v1");
        value["kind"] = json!("Secret");
        body.metadata.managed_fields = None;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        params.dry_run = dry_run == DryRun::Server;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        self.bounded(async {
            api.patch(&name, &params, &Patch::Apply(&value))
                .await
                .map(|_| ())
                .map_err(|err| {
                    errors::map(
                        self,
                        &Attempt {
                            verb: "patch",
                            resource: "secrets",
                            namespace: Some(&namespace),
                            name: Some(&name),
                        },
                        Failure::from(err),
                    )
                })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_only_that_registry() {
        let credential = RegistryCredential::Basic {
            username: "u".into(),
            password: "p4ss".into(),
        };
        let bytes = docker_config_json("127.0.0.1:5000", &credential);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["auths"].as_object().unwrap().len(), 1);
        assert_eq!(value["auths"]["127.0.0.1:5000"]["auth"], "dTpwNHNz");
        let secret = secret("ctx-pull", "demo", "127.0.0.1:5000", &credential);
        assert_eq!(secret.type_.as_deref(), Some(SECRET_TYPE));
        assert!(!format!("{credential:?}").contains("p4ss"));
    }
}
