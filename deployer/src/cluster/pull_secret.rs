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

/// The Secret to write while the plugin still points at its old image: `desired` plus every
/// other registry's `auths` entry the `existing` Secret holds. Writing `desired` alone first
/// would take the old registry's credentials away from the running plugin before it has
/// moved; a failed plugin write would then leave the old plugin unable to pull. Once the
/// plugin has moved, `desired` itself is written. Entries are copied as they are, never
/// parsed into credentials; an unreadable existing Secret contributes nothing.
pub fn transitional(existing: Option<&Secret>, desired: &Secret) -> Secret {
    let auths = |secret: &Secret| -> Option<serde_json::Map<String, serde_json::Value>> {
        let bytes = secret.data.as_ref()?.get(".dockerconfigjson")?;
        let value: serde_json::Value = serde_json::from_slice(&bytes.0).ok()?;
        value.get("auths")?.as_object().cloned()
    };
    let (Some(mut merged), Some(wanted)) = (existing.and_then(auths), auths(desired)) else {
        return desired.clone();
    };
    if merged.keys().all(|registry| wanted.contains_key(registry)) {
        return desired.clone();
    }
    merged.extend(wanted);
    let mut secret = desired.clone();
    let bytes = serde_json::to_vec(&json!({ "auths": merged })).expect("JSON value serializes");
    secret.data = Some(BTreeMap::from([(
        ".dockerconfigjson".to_string(),
        ByteString(bytes),
    )]));
    secret
}

impl Cluster {
    /// The Secret as stored, if it exists.
    pub async fn get_pull_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Secret>, Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        self.bounded(async {
            api.get_opt(name).await.map_err(|err| {
                errors::map(
                    self,
                    &Attempt {
                        verb: "get",
                        resource: "secrets",
                        namespace: Some(namespace),
                        name: Some(name),
                    },
                    Failure::from(err),
                )
            })
        })
        .await
    }

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

    fn registries(secret: &Secret) -> Vec<String> {
        let bytes = &secret.data.as_ref().unwrap()[".dockerconfigjson"].0;
        let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        value["auths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn the_old_registry_stays_until_the_plugin_has_moved() {
        let old = secret(
            "p",
            "demo",
            "old:5000",
            &RegistryCredential::IdentityToken("t1".into()),
        );
        let new = secret(
            "p",
            "demo",
            "new:5000",
            &RegistryCredential::IdentityToken("t2".into()),
        );
        let first = transitional(Some(&old), &new);
        assert_eq!(registries(&first), ["new:5000", "old:5000"]);
        // The new registry's entry is the new one, the old one's is kept byte for byte.
        let bytes = &first.data.as_ref().unwrap()[".dockerconfigjson"].0;
        let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(value["auths"]["new:5000"]["identitytoken"], "t2");
        assert_eq!(value["auths"]["old:5000"]["identitytoken"], "t1");
        // Same registry, no Secret yet, or an unreadable one: nothing to keep.
        let renewed = secret(
            "p",
            "demo",
            "old:5000",
            &RegistryCredential::IdentityToken("t3".into()),
        );
        assert_eq!(transitional(Some(&old), &renewed), renewed);
        assert_eq!(transitional(None, &new), new);
        let mut broken = old.clone();
        broken.data = Some(BTreeMap::from([(
            ".dockerconfigjson".into(),
            ByteString(b"{".to_vec()),
        )]));
        assert_eq!(transitional(Some(&broken), &new), new);
    }
}
