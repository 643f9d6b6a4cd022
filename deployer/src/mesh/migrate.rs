//! `deployer migrate`: a WasmPlugin becomes the equivalent TrafficExtension. What is here has
//! no I/O: the TrafficExtension built from the stored WasmPlugin, and what the sidecars' lines
//! say about the two while both exist.
//!
//! An Istio with TrafficExtension serves every WasmPlugin as a translated TrafficExtension named
//! `<ns>.<name>~istio-translated-wasmplugin` in Envoy, and a native TrafficExtension as
//! `<ns>.<name>` (pilot/pkg/model/extensions.go: `resourceName := e.Namespace + "." + e.Name`;
//! the translation adds the suffix in pilot/pkg/config/kube/extensions/translate.go). So while
//! both objects exist, each sidecar runs both filters and their lines can be told apart by
//! that one word.
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;

use super::logline::{self, FETCH_ERROR_PREFIX, TRANSLATED_SUFFIX};
use crate::plugin::spec::{Kind, WasmPluginManifest};
use crate::plugin::validate;
use crate::plugin::{history, read};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("WasmPlugin {namespace}/{name} cannot be read as a spec this tool knows: {message}")]
    Spec {
        namespace: String,
        name: String,
        message: String,
    },
    #[error(
        "the TrafficExtension for {namespace}/{name} would be invalid:\n  - {}\nnothing was changed",
        problems.join("\n  - ")
    )]
    Invalid {
        namespace: String,
        name: String,
        problems: Vec<String>,
    },
}

/// The TrafficExtension equivalent to the stored WasmPlugin `object`: the same spec (the
/// deprecated `targetRef` becomes a one-entry `targetRefs`, which TrafficExtension has
/// instead), its labels, and its revision history annotation.
pub fn traffic_extension_for(object: &DynamicObject) -> Result<WasmPluginManifest, Error> {
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let stored = object.data.get("spec").cloned().unwrap_or_default();
    // Strict: a field this tool does not know would be lost in the TrafficExtension.
    let mut spec = read::strict(Kind::WasmPlugin, &stored).map_err(|message| Error::Spec {
        namespace: namespace.clone(),
        name: name.clone(),
        message,
    })?;
    if let Some(target) = spec.target_ref.take()
        && spec.target_refs.is_empty()
    {
        spec.target_refs.push(target);
    }
    let problems = validate::problems_for(Kind::TrafficExtension, &name, &namespace, &spec);
    if !problems.is_empty() {
        return Err(Error::Invalid {
            namespace,
            name,
            problems,
        });
    }
    let mut manifest = WasmPluginManifest::of_kind(Kind::TrafficExtension, &name, &namespace, spec)
        .with_labels(object.metadata.labels.as_ref());
    // The history goes with the object (apply_plugin_from extends it); other annotations
    // belong to whoever wrote them on the WasmPlugin.
    if let Some(text) = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(history::ANNOTATION))
    {
        manifest
            .metadata
            .annotations
            .insert(history::ANNOTATION.into(), text.clone());
    }
    Ok(manifest)
}

/// Which of the two a module line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The WasmPlugin (Envoy name `<ns>.<name>~istio-translated-wasmplugin`).
    WasmPlugin,
    /// The TrafficExtension (Envoy name `<ns>.<name>`).
    TrafficExtension,
}

/// What one sidecar's log says about the two, from a given moment on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodLines {
    pub wasm_plugin: Vec<Timestamp>,
    pub traffic_extension: Vec<Timestamp>,
    /// The agent's fetch errors and Envoy's load errors about the TrafficExtension.
    pub errors: Vec<String>,
}

impl PodLines {
    /// Reads `log` (one pod's `istio-proxy` lines) for the plugin `<namespace>.<name>`,
    /// keeping lines at or after `since`.
    pub fn scan(log: &str, namespace: &str, name: &str, url: &str, since: Timestamp) -> Self {
        let native = format!("{namespace}.{name}");
        let translated = format!("{native}{TRANSLATED_SUFFIX}");
        let matcher = logline::Matcher::traffic_extension(&native, "", url);
        let mut out = PodLines::default();
        for line in log.lines() {
            let Some(at) = logline::line_time(line) else {
                continue;
            };
            if at < since {
                continue;
            }
            match logline::logged_plugin_name(line) {
                Some(word) if word == translated => out.wasm_plugin.push(at),
                Some(word) if word == native => out.traffic_extension.push(at),
                _ => {
                    // The fetch error names only the url, which both share: an error after
                    // the TrafficExtension was applied may be either's, and either way the
                    // new one cannot be trusted to run.
                    let failed = line.contains(FETCH_ERROR_PREFIX)
                        || matches!(matcher.classify(line), Some(logline::Kind::LoadError));
                    if failed {
                        out.errors.push(line.to_string());
                    }
                }
            }
        }
        out
    }

    pub fn first_traffic_extension(&self) -> Option<Timestamp> {
        self.traffic_extension.iter().min().copied()
    }

    pub fn last_wasm_plugin(&self) -> Option<Timestamp> {
        self.wasm_plugin.iter().max().copied()
    }

    /// Make-before-break: how long both ran here, from the TrafficExtension's first line to
    /// the WasmPlugin's last (zero when they did not overlap; `None` without lines of both).
    pub fn both_ran(&self) -> Option<f64> {
        let (first, last) = (self.first_traffic_extension()?, self.last_wasm_plugin()?);
        Some(seconds_between(first, last).max(0.0))
    }

    /// Break-before-make: how long neither ran, from the WasmPlugin's last line to the
    /// TrafficExtension's first (`None` without lines of both).
    pub fn gap(&self) -> Option<f64> {
        let (last, first) = (self.last_wasm_plugin()?, self.first_traffic_extension()?);
        Some(seconds_between(last, first).max(0.0))
    }
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_nanosecond() - from.as_nanosecond()) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, name: &str) -> String {
        format!(
            "{at}\tinfo\tenvoy wasm source/extensions/common/wasm/context.cc:1151\twasm log {name}: NewHttpContext\tthread=20"
        )
    }

    #[test]
    fn both_ran_from_the_first_new_line_to_the_last_old_one() {
        let log = [
            line(
                "2026-11-29T10:00:00.000000Z",
                "demo.ctx~istio-translated-wasmplugin",
            ),
            line(
                "2026-11-29T10:00:01.000000Z",
                "demo.ctx~istio-translated-wasmplugin",
            ),
            line("2026-11-29T10:00:01.200000Z", "demo.ctx"),
            line(
                "2026-11-29T10:00:02.500000Z",
                "demo.ctx~istio-translated-wasmplugin",
            ),
            line("2026-11-29T10:00:03.000000Z", "demo.ctx"),
            line("2026-11-29T10:00:03.000000Z", "demo.ctx-other"),
        ]
        .join("\n");
        let since: Timestamp = "2026-11-29T10:00:00.500000Z".parse().unwrap();
        let lines = PodLines::scan(&log, "demo", "ctx", "oci://r/x:1", since);
        assert_eq!(
            (lines.wasm_plugin.len(), lines.traffic_extension.len()),
            (2, 2)
        );
        assert!((lines.both_ran().unwrap() - 1.3).abs() < 1e-6);
        assert_eq!(lines.gap(), Some(0.0));
    }

    #[test]
    fn the_gap_is_from_the_last_old_line_to_the_first_new_one() {
        let log = [
            line(
                "2026-11-29T10:00:01.000000Z",
                "demo.ctx~istio-translated-wasmplugin",
            ),
            line("2026-11-29T10:00:01.750000Z", "demo.ctx"),
        ]
        .join("\n");
        let lines = PodLines::scan(&log, "demo", "ctx", "", Timestamp::UNIX_EPOCH);
        assert!((lines.gap().unwrap() - 0.75).abs() < 1e-6);
        assert_eq!(lines.both_ran(), Some(0.0));
    }

    #[test]
    fn the_traffic_extension_keeps_spec_labels_and_history() {
        let mut object = DynamicObject::new(
            "ctx",
            &crate::cluster::wasmplugin::api_resource_of(Kind::WasmPlugin),
        )
        .within("demo")
        .data(serde_json::json!({"spec": {
            "url": "oci://r/x@sha256:aa", "pluginName": "root", "phase": "UNSPECIFIED_PHASE",
            "targetRef": {"kind": "Service", "name": "web"}
        }}));
        object.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        object.metadata.annotations = Some(
            [
                (history::ANNOTATION.to_string(), "[]".to_string()),
                ("other".to_string(), "x".to_string()),
            ]
            .into(),
        );
        let manifest = traffic_extension_for(&object).unwrap();
        let wire = serde_json::to_value(&manifest).unwrap();
        assert_eq!(wire["kind"], "TrafficExtension");
        assert_eq!(
            wire["spec"],
            serde_json::json!({
                "targetRefs": [{"kind": "Service", "name": "web"}], "phase": "UNSPECIFIED",
                "wasm": {"url": "oci://r/x@sha256:aa", "pluginName": "root"}
            })
        );
        assert_eq!(wire["metadata"]["labels"]["team"], "a");
        assert_eq!(wire["metadata"]["annotations"][history::ANNOTATION], "[]");
        assert!(wire["metadata"]["annotations"].get("other").is_none());
    }
}
