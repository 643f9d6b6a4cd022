//! WasmPlugin and TrafficExtension reads and writes (one code path, the kind picks the API
//! resource): server-side apply with the fixed field manager, the revision history annotation,
//! and created/configured/unchanged from what the server says.
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};

use super::errors::{self, Attempt, Failure};
use super::{Cluster, Error, FIELD_MANAGER};
use crate::plugin::history::{self, History};
use crate::plugin::spec::{self, Kind, KindChoice, WasmPluginManifest};

pub const RESOURCE: &str = "wasmplugins.extensions.istio.io";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    Off,
    /// The API server runs admission and validation but stores nothing.
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Applied {
    pub outcome: Outcome,
    /// The object as the server returned it (managedFields dropped: noise for users).
    pub object: DynamicObject,
    /// The revision number the applied spec has in the history.
    pub revision: Option<u64>,
}

pub fn api_resource() -> ApiResource {
    api_resource_of(Kind::WasmPlugin)
}

pub fn api_resource_of(kind: Kind) -> ApiResource {
    ApiResource {
        group: spec::GROUP.into(),
        version: spec::VERSION.into(),
        api_version: spec::API_VERSION.into(),
        kind: kind.name().into(),
        plural: kind.plural().into(),
    }
}

/// The kind of a stored object, from its type (WasmPlugin when the type is missing).
pub fn kind_of(object: &DynamicObject) -> Kind {
    object
        .types
        .as_ref()
        .and_then(|types| Kind::from_name(&types.kind))
        .unwrap_or_default()
}

/// The history a re-apply of `manifest` would write, given the live object (if any).
pub fn next_history(
    live: Option<&DynamicObject>,
    manifest: &WasmPluginManifest,
    now: &str,
) -> History {
    let annotation = live
        .and_then(|o| o.metadata.annotations.as_ref())
        .and_then(|a| a.get(history::ANNOTATION));
    // History is a convenience for rollback: an unreadable one is started afresh rather than
    // failing the apply.
    let (mut history, _unreadable) =
        History::recover(&manifest.metadata.name, annotation.map(String::as_str));
    history.record(&manifest.spec, now);
    history
}

/// Writes of the plugin tried when other writers keep moving its resourceVersion: each round
/// lets at least one writer through, so this many concurrent applies all land.
const MAX_WRITE_ATTEMPTS: u32 = 10;

/// The API server's answer to a resourceVersion precondition that no longer holds (a write in
/// between), as opposed to a field-manager conflict, which is also a 409 Conflict.
fn is_stale_write(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status)
        if status.is_conflict() && !errors::is_field_manager_conflict(status))
}

pub fn history_of(object: &DynamicObject) -> Result<History, crate::plugin::Error> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let annotation = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(history::ANNOTATION));
    History::parse(&name, annotation.map(String::as_str))
}

impl Cluster {
    fn plugins(&self, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &api_resource_of(kind)),
            None => Api::all_with(self.client.clone(), &api_resource_of(kind)),
        }
    }

    fn fail(
        &self,
        kind: Kind,
        verb: &'static str,
        namespace: Option<&str>,
        name: Option<&str>,
        err: kube::Error,
    ) -> Error {
        errors::map(
            self,
            &Attempt {
                verb,
                resource: kind.resource(),
                namespace,
                name,
            },
            Failure::from(err),
        )
    }

    /// Checks discovery for the WasmPlugin resource, so a missing CRD is named as such instead
    /// of surfacing as a puzzling 404 on the first write.
    pub async fn ensure_crd(&self) -> Result<(), Error> {
        self.ensure_crd_of(Kind::WasmPlugin).await
    }

    pub async fn ensure_crd_of(&self, kind: Kind) -> Result<(), Error> {
        let found = self
            .bounded(async {
                match self
                    .client
                    .list_api_group_resources(spec::API_VERSION)
                    .await
                {
                    Ok(list) => Ok(list.resources.iter().any(|r| r.name == kind.plural())),
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
                    Err(err) => Err(self.fail(kind, "discover", None, None, err)),
                }
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(Error::CrdMissing {
                kind: kind.name(),
                context: self.context.clone(),
                server: self.server.clone(),
                resource: kind.plural(),
                api_version: spec::API_VERSION,
            })
        }
    }

    pub async fn get_plugin(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, Error> {
        self.get_object(Kind::WasmPlugin, namespace, name).await
    }

    pub async fn get_object(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, Error> {
        self.bounded(async {
            match self.plugins(kind, Some(namespace)).get(name).await {
                Ok(object) => Ok(Some(object)),
                // The object is missing, not its namespace (`errors::map` names that one).
                Err(kube::Error::Api(status))
                    if status.is_not_found()
                        && errors::details_kind(&status) != errors::NAMESPACES =>
                {
                    Ok(None)
                }
                Err(err) => Err(self.fail(kind, "get", Some(namespace), Some(name), err)),
            }
        })
        .await
    }

    /// `--kind`'s answer for the object `namespace/name`: the kind named, else (`auto`) a
    /// WasmPlugin when one exists or no TrafficExtension does, else the TrafficExtension. A
    /// cluster without the TrafficExtension CRD counts as having none.
    pub async fn resolve_kind(
        &self,
        choice: KindChoice,
        namespace: &str,
        name: &str,
    ) -> Result<Kind, Error> {
        if let Some(kind) = choice.explicit() {
            return Ok(kind);
        }
        if self
            .get_object(Kind::WasmPlugin, namespace, name)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            return Ok(Kind::WasmPlugin);
        }
        match self
            .get_object(Kind::TrafficExtension, namespace, name)
            .await
        {
            Ok(Some(_)) => Ok(Kind::TrafficExtension),
            _ => Ok(Kind::WasmPlugin),
        }
    }

    /// Server-side applies `manifest` plus its revision history (read from the live object).
    pub async fn apply_plugin(
        &self,
        manifest: &WasmPluginManifest,
        force: bool,
        dry_run: DryRun,
    ) -> Result<Applied, Error> {
        self.apply_plugin_from(manifest, force, dry_run, None).await
    }

    /// `apply_plugin`, continuing the revision history of `history_from` (another object, e.g.
    /// the WasmPlugin a TrafficExtension replaces) when the target has none yet.
    pub async fn apply_plugin_from(
        &self,
        manifest: &WasmPluginManifest,
        force: bool,
        dry_run: DryRun,
        history_from: Option<&DynamicObject>,
    ) -> Result<Applied, Error> {
        let namespace = manifest
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(&self.default_namespace);
        let name = manifest.metadata.name.as_str();
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        params.dry_run = dry_run == DryRun::Server;
        // The history is read, extended and written back: two applies at once would both
        // extend the same revision list and the later write would drop the other's revision.
        // The live resourceVersion is sent as a precondition, so the API server refuses the
        // write when someone wrote in between; then the history is read again.
        let mut attempt = 1;
        let (live, history, mut object) = loop {
            let live = self.get_object(manifest.kind, namespace, name).await?;
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let history = next_history(live.as_ref().or(history_from), manifest, &now);
            let mut body = manifest.clone();
            body.metadata.namespace = Some(namespace.to_string());
            body.metadata
                .annotations
                .insert(history::ANNOTATION.into(), history.to_annotation());
            let mut body = serde_json::to_value(&body).expect("a manifest serializes to JSON");
            if let Some(version) = live
                .as_ref()
                .and_then(|object| object.metadata.resource_version.as_deref())
            {
                body["metadata"]["resourceVersion"] = serde_json::json!(version);
            }
            let written = self
                .bounded(async {
                    Ok(self
                        .plugins(manifest.kind, Some(namespace))
                        .patch(name, &params, &Patch::Apply(&body))
                        .await)
                })
                .await?;
            match written {
                Ok(object) => break (live, history, object),
                Err(err) if is_stale_write(&err) && attempt < MAX_WRITE_ATTEMPTS => {
                    // Writers that collided retry at different moments, or they collide again.
                    let jitter = u64::from(std::process::id() % 7 + attempt) * 15;
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                    attempt += 1;
                }
                Err(err) => {
                    return Err(self.fail(
                        manifest.kind,
                        "patch",
                        Some(namespace),
                        Some(name),
                        err,
                    ));
                }
            }
        };
        let outcome = match &live {
            None => Outcome::Created,
            Some(before) if dry_run == DryRun::Off => {
                if before.metadata.resource_version == object.metadata.resource_version {
                    Outcome::Unchanged
                } else {
                    Outcome::Configured
                }
            }
            // A dry run stores nothing, so the resourceVersion says nothing: compare content.
            Some(before) => {
                if before.data == object.data
                    && before.metadata.annotations == object.metadata.annotations
                    && before.metadata.labels == object.metadata.labels
                {
                    Outcome::Unchanged
                } else {
                    Outcome::Configured
                }
            }
        };
        object.metadata.managed_fields = None;
        let revision = history
            .revisions
            .iter()
            .rev()
            .find(|r| r.spec == manifest.spec)
            .map(|r| r.revision);
        Ok(Applied {
            outcome,
            object,
            revision,
        })
    }

    pub async fn list_plugins(&self, namespace: Option<&str>) -> Result<Vec<DynamicObject>, Error> {
        self.list_objects(Kind::WasmPlugin, namespace).await
    }

    pub async fn list_objects(
        &self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<Vec<DynamicObject>, Error> {
        self.bounded(async {
            self.plugins(kind, namespace)
                .list(&ListParams::default())
                .await
                .map(|list| list.items)
                .map_err(|err| self.fail(kind, "list", namespace, None, err))
        })
        .await
    }

    pub async fn delete_plugin(
        &self,
        namespace: &str,
        name: &str,
        dry_run: DryRun,
    ) -> Result<(), Error> {
        self.delete_object(Kind::WasmPlugin, namespace, name, dry_run)
            .await
    }

    pub async fn delete_object(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        dry_run: DryRun,
    ) -> Result<(), Error> {
        let params = DeleteParams {
            dry_run: dry_run == DryRun::Server,
            ..Default::default()
        };
        self.bounded(async {
            self.plugins(kind, Some(namespace))
                .delete(name, &params)
                .await
                .map(|_| ())
                .map_err(|err| self.fail(kind, "delete", Some(namespace), Some(name), err))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Status body as the stack's kube-apiserver (v1.35) sends it.
    fn answer(body: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_value(body).unwrap()))
    }

    #[test]
    fn a_stale_write_is_told_from_a_field_manager_conflict_by_its_causes() {
        let stale = answer(serde_json::json!({
            "status": "Failure", "code": 409, "reason": "Conflict",
            "message": "Operation cannot be fulfilled on wasmplugins.extensions.istio.io \"probe\": the object has been modified; please apply your changes to the latest version and try again",
            "details": {"name": "probe", "group": "extensions.istio.io", "kind": "wasmplugins"}
        }));
        assert!(is_stale_write(&stale));
        // Also the answer when the write is both stale and conflicting: the conflict wins.
        let conflict = answer(serde_json::json!({
            "status": "Failure", "code": 409, "reason": "Conflict",
            "message": "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.url",
            "details": {"causes": [
                {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\"", "field": ".spec.url"}
            ]}
        }));
        assert!(!is_stale_write(&conflict));
    }

    #[test]
    fn a_missing_namespace_is_told_from_a_missing_object_by_details_kind() {
        let kind = |body| match answer(body) {
            kube::Error::Api(status) => errors::details_kind(&status).to_string(),
            _ => unreachable!(),
        };
        // Server-side apply into a namespace that does not exist (NamespaceLifecycle).
        let namespace = kind(serde_json::json!({
            "status": "Failure", "code": 404, "reason": "NotFound",
            "message": "namespaces \"nope\" not found",
            "details": {"name": "nope", "kind": "namespaces"}
        }));
        assert_eq!(namespace, errors::NAMESPACES);
        // A GET answers about the object, even in a namespace that does not exist.
        let object = kind(serde_json::json!({
            "status": "Failure", "code": 404, "reason": "NotFound",
            "message": "wasmplugins.extensions.istio.io \"x\" not found",
            "details": {"name": "x", "group": "extensions.istio.io", "kind": "wasmplugins"}
        }));
        assert_eq!(object, "wasmplugins");
    }
}
