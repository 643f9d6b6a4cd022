//! Building a WasmPlugin from CLI flags, optionally on top of `-f plugin.yaml`.
//! Shared by `apply` and `render` (both flatten `SpecFlags`), so they produce the same object.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Error;
use super::image::ImageSource;
use super::spec::*;
use crate::oci::ImageRef;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct SpecFlags {
    /// Module location: [REGISTRY/]REPO[:TAG][@sha256:DIGEST] (OCI, Docker Hub without REGISTRY), or an https://, http://, file:// url.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Start from a WasmPlugin manifest (YAML or JSON); flags given as well override its fields.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Workloads to attach to, as labels: k=v[,k=v...] (repeatable). Excludes --target-ref.
    #[arg(long, value_name = "K=V,...")]
    pub selector: Vec<String>,
    /// Attach to a resource: KIND/NAME or KIND.GROUP/NAME, e.g. Gateway/ingress (repeatable, at most 16).
    #[arg(long = "target-ref", value_name = "KIND/NAME")]
    pub target_refs: Vec<String>,
    /// Plugin configuration from a JSON or YAML file holding an object.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set one configuration key: a.b=value (value parsed as JSON when it is, else a string; repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Root id the module sees (Istio's `pluginName`).
    #[arg(long)]
    pub plugin_name: Option<String>,
    /// Where in the filter chain the plugin runs.
    #[arg(long, ignore_case = true)]
    pub phase: Option<Phase>,
    /// Order among plugins in the same phase (higher runs first).
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// What the proxy does when the module cannot be fetched or fails.
    #[arg(long, ignore_case = true)]
    pub fail_strategy: Option<FailStrategy>,
    /// When the proxy fetches the image again.
    #[arg(long, ignore_case = true)]
    pub pull_policy: Option<PullPolicy>,
    /// Name of a kubernetes.io/dockerconfigjson Secret in the plugin's namespace.
    #[arg(long, value_name = "SECRET")]
    pub pull_secret: Option<String>,
    /// Plugin type: an HTTP filter or a network (TCP) filter.
    #[arg(long = "type", ignore_case = true)]
    pub plugin_type: Option<PluginType>,
    /// Traffic to run on: MODE[:PORT,...] or :PORT,... with MODE client|server|client-and-server|undefined (repeatable).
    #[arg(long = "match", value_name = "MODE:PORTS")]
    pub matches: Vec<String>,
    /// VM environment variable: NAME=VALUE (inline) or NAME (taken from the proxy's host environment; repeatable).
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Expected sha256 (64 hex) of the manifest (oci) or module (http/https); set by pinning for OCI images.
    #[arg(long)]
    pub sha256: Option<String>,
    /// Resource kind: wasmplugin (wp), trafficextension (te), or auto: WasmPlugin unless --lua,
    /// -f's kind or the existing object of that name says TrafficExtension.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub kind: KindChoice,
    /// Inline Lua (TrafficExtension `spec.lua.inlineCode`) from FILE instead of a wasm image;
    /// at most 64 KiB, defining envoy_on_request and/or envoy_on_response.
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    pub lua: Option<PathBuf>,
    /// Keep the image tag instead of pinning it to its manifest digest.
    #[arg(long)]
    pub no_pin: bool,
    /// Send the spec without client-side checks, so the API server's own validation answers
    /// (for testing that path).
    #[arg(long, hide = true)]
    pub skip_client_validation: bool,
}

/// A WasmPlugin built from flags, before the tag is pinned and before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub name: String,
    /// From `-n` or the file; `None` means the cluster context's default.
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Annotations the deployer sets (the verified key); a file's own are not carried over,
    /// as before, since they are often another tool's bookkeeping.
    pub annotations: BTreeMap<String, String>,
    pub spec: WasmPluginSpec,
    /// The kind the input fixes (`--kind`, `--lua`, `-f`'s kind); `None`: decided by what the
    /// cluster has (`auto`), WasmPlugin when nothing says otherwise.
    pub kind: Option<Kind>,
}

impl Draft {
    /// The OCI reference to resolve to a digest, when the url is a tag that pinning should fix.
    pub fn needs_pin(&self, no_pin: bool) -> Result<Option<ImageRef>, Error> {
        if no_pin || self.spec.url.is_empty() {
            return Ok(None);
        }
        match ImageSource::parse(&self.spec.url)? {
            ImageSource::Oci(reference) if reference.digest().is_none() => Ok(Some(reference)),
            _ => Ok(None),
        }
    }

    /// Rewrites the url to `oci://REPO@DIGEST` and sets `sha256` to the digest's hex.
    pub fn pin(&mut self, reference: &ImageRef, digest: &str) {
        self.spec.url = reference.digest_url(digest);
        self.spec.sha256 = sha256_hex(digest);
    }

    /// The kind this draft becomes: as decided, else WasmPlugin.
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or_default()
    }

    pub fn manifest(&self, namespace: &str) -> WasmPluginManifest {
        let mut manifest =
            WasmPluginManifest::of_kind(self.kind(), &self.name, namespace, self.spec.clone());
        manifest.metadata.labels = self.labels.clone();
        manifest.metadata.annotations = self.annotations.clone();
        manifest
    }

    /// Every CRD rule, client-side. Skipped only by the hidden test flag.
    pub fn validate(&self, namespace: &str) -> Result<(), Error> {
        let mut problems =
            super::validate::problems_for(self.kind(), &self.name, namespace, &self.spec);
        problems.extend(super::validate::url_reference_problem(&self.spec.url));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                name: self.name.clone(),
                problems,
            })
        }
    }
}

/// The `sha256` field for a digest: its hex when it is a sha256 digest. Istio compares that
/// field with a sha256 of the manifest, so another algorithm's digest (which the reference
/// grammar allows) pins through the url alone.
fn sha256_hex(digest: &str) -> Option<String> {
    digest.strip_prefix("sha256:").map(str::to_string)
}

impl SpecFlags {
    /// Builds the draft: the file (if any) first, then each flag on top.
    pub fn draft(&self, name: Option<&str>, namespace: Option<&str>) -> Result<Draft, Error> {
        let mut draft = match &self.file {
            Some(path) => from_file(path)?,
            None => Draft {
                name: String::new(),
                namespace: None,
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                spec: WasmPluginSpec::default(),
                kind: None,
            },
        };
        if let Some(kind) = self.kind.explicit() {
            draft.kind = Some(kind);
        }
        if let Some(path) = &self.lua {
            if draft.kind == Some(Kind::WasmPlugin) {
                return Err(Error::Flag {
                    flag: "--lua",
                    value: path.display().to_string(),
                    reason: "Lua runs only in a TrafficExtension; drop --kind wasmplugin (or use --kind trafficextension)".into(),
                });
            }
            let code = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
            draft.kind = Some(Kind::TrafficExtension);
            // The Lua replaces a wasm part from -f: a TrafficExtension has one or the other.
            let spec = &mut draft.spec;
            spec.url.clear();
            spec.sha256 = None;
            spec.image_pull_policy = None;
            spec.image_pull_secret = None;
            spec.plugin_config = None;
            spec.plugin_name = None;
            spec.fail_strategy = None;
            spec.vm_config = None;
            spec.plugin_type = None;
            spec.verification_key = None;
            spec.lua = Some(LuaConfig { inline_code: code });
        }
        if let Some(name) = name {
            draft.name = name.to_string();
        }
        if draft.name.is_empty() {
            return Err(Error::Missing(
                "a plugin NAME is required (positional, or metadata.name in -f)".into(),
            ));
        }
        if let Some(namespace) = namespace {
            draft.namespace = Some(namespace.to_string());
        }
        let spec = &mut draft.spec;
        if let Some(image) = &self.image {
            spec.sha256 = None;
            spec.url = match ImageSource::parse(image)? {
                ImageSource::Oci(reference) => {
                    if !self.no_pin {
                        spec.sha256 = reference.digest().and_then(sha256_hex);
                    }
                    reference.url()
                }
                ImageSource::Url(url) => url,
            };
        }
        if spec.url.is_empty() && spec.lua.is_none() && draft.kind != Some(Kind::TrafficExtension) {
            return Err(Error::Missing(
                "--image REF is required (or spec.url in -f)".into(),
            ));
        }
        if let Some(sha) = &self.sha256 {
            spec.sha256 = Some(sha.trim_start_matches("sha256:").to_string());
        }
        if !self.selector.is_empty() {
            let mut labels = BTreeMap::new();
            for item in self
                .selector
                .iter()
                .flat_map(|s| s.split(','))
                .filter(|s| !s.is_empty())
            {
                let (key, value) = item.split_once('=').ok_or_else(|| Error::Flag {
                    flag: "--selector",
                    value: item.to_string(),
                    reason: "expected KEY=VALUE".into(),
                })?;
                labels.insert(key.trim().to_string(), value.trim().to_string());
            }
            spec.selector = Some(WorkloadSelector {
                match_labels: labels,
            });
            spec.target_ref = None;
            spec.target_refs.clear();
        }
        if !self.target_refs.is_empty() {
            spec.target_refs = self
                .target_refs
                .iter()
                .map(|t| parse_target_ref(t))
                .collect::<Result<_, _>>()?;
            spec.target_ref = None;
            if self.selector.is_empty() {
                spec.selector = None;
            }
        }
        if self.config.is_some() || !self.set.is_empty() {
            let mut config = match &self.config {
                Some(path) => read_config(path)?,
                None => match spec.plugin_config.take() {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                },
            };
            for item in &self.set {
                set_path(&mut config, item)?;
            }
            spec.plugin_config = Some(Value::Object(config));
        }
        if let Some(plugin_name) = &self.plugin_name {
            spec.plugin_name = Some(plugin_name.clone());
        }
        spec.phase = self.phase.clone().or(spec.phase.take());
        spec.priority = self.priority.or(spec.priority);
        spec.fail_strategy = self.fail_strategy.clone().or(spec.fail_strategy.take());
        spec.image_pull_policy = self.pull_policy.clone().or(spec.image_pull_policy.take());
        spec.plugin_type = self.plugin_type.clone().or(spec.plugin_type.take());
        if let Some(secret) = &self.pull_secret {
            spec.image_pull_secret = Some(secret.clone());
        }
        if !self.matches.is_empty() {
            spec.matches = self
                .matches
                .iter()
                .map(|m| parse_match(m))
                .collect::<Result<_, _>>()?;
        }
        if !self.env.is_empty() {
            let env = self
                .env
                .iter()
                .map(|e| parse_env(e))
                .collect::<Result<Vec<_>, _>>()?;
            spec.vm_config = Some(VmConfig { env });
        }
        Ok(draft)
    }
}

fn from_file(path: &Path) -> Result<Draft, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Kind, apiVersion and the kind's spec shape are checked while parsing.
    let manifest: WasmPluginManifest = serde_yaml::from_str(&text).map_err(|err| Error::Parse {
        path: path.to_path_buf(),
        what: "WasmPlugin or TrafficExtension manifest",
        message: err.to_string(),
    })?;
    Ok(Draft {
        kind: Some(manifest.kind),
        name: manifest.metadata.name,
        namespace: manifest.metadata.namespace,
        labels: manifest.metadata.labels,
        annotations: BTreeMap::new(),
        spec: manifest.spec,
    })
}

fn read_config(path: &Path) -> Result<Map<String, Value>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_error = |message: String| Error::Parse {
        path: path.to_path_buf(),
        what: "plugin configuration",
        message,
    };
    // YAML 1.2 is a superset of JSON, but serde_json gives better messages for .json files.
    let value: Value = if path.extension().is_some_and(|ext| ext == "json") {
        serde_json::from_str(&text).map_err(|err| parse_error(err.to_string()))?
    } else {
        serde_yaml::from_str(&text).map_err(|err| parse_error(err.to_string()))?
    };
    match value {
        Value::Object(map) => Ok(map),
        other => Err(parse_error(format!(
            "the top level must be an object (a map of keys to values), found {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `a.b.c=value`: creates intermediate objects; the value is JSON when it parses, else a string.
fn set_path(config: &mut Map<String, Value>, item: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::Flag {
        flag: "--set",
        value: item.to_string(),
        reason: reason.to_string(),
    };
    let (path, raw) = item
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE"))?;
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(bad("empty key segment"));
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let (last, parents) = keys.split_last().expect("split yields at least one key");
    let mut node = config;
    for key in parents {
        let entry = node
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            return Err(bad(&format!("{key:?} already holds a non-object value")));
        }
        node = entry.as_object_mut().expect("checked is_object");
    }
    node.insert(last.to_string(), value);
    Ok(())
}

/// `KIND/NAME` with the group inferred for well-known kinds, or `KIND.GROUP/NAME`.
pub fn parse_target_ref(text: &str) -> Result<PolicyTargetReference, Error> {
    let bad = |reason: String| Error::Flag {
        flag: "--target-ref",
        value: text.to_string(),
        reason,
    };
    let (kind_group, name) = text
        .split_once('/')
        .ok_or_else(|| bad("expected KIND/NAME, e.g. Gateway/ingress".into()))?;
    let (kind, group) = match kind_group.split_once('.') {
        Some((kind, group)) => (kind, group.to_string()),
        None => {
            let group = match kind_group {
                "Gateway" | "GatewayClass" => "gateway.networking.k8s.io",
                "Service" => "",
                "ServiceEntry" => "networking.istio.io",
                other => {
                    return Err(bad(format!(
                        "no default group for kind {other:?}: write KIND.GROUP/NAME (known kinds: Gateway, GatewayClass, Service, ServiceEntry)"
                    )));
                }
            };
            (kind_group, group.to_string())
        }
    };
    if kind.is_empty() || name.is_empty() || name.contains('/') {
        return Err(bad("expected KIND/NAME, e.g. Gateway/ingress".into()));
    }
    Ok(PolicyTargetReference {
        group,
        kind: kind.to_string(),
        name: name.to_string(),
        namespace: None,
    })
}

/// `MODE`, `MODE:PORT,PORT` or `:PORT,PORT`.
pub fn parse_match(text: &str) -> Result<TrafficSelector, Error> {
    let bad = |reason: String| Error::Flag {
        flag: "--match",
        value: text.to_string(),
        reason,
    };
    let (mode, ports) = match text.split_once(':') {
        Some((mode, ports)) => (mode, ports),
        None if text.chars().all(|c| c.is_ascii_digit() || c == ',') => ("", text),
        None => (text, ""),
    };
    let mode = if mode.is_empty() {
        None
    } else {
        Some(
            <WorkloadMode as clap::ValueEnum>::from_str(mode, true).map_err(|_| {
                bad(format!(
                    "unknown mode {mode:?}: use client, server, client-and-server or undefined"
                ))
            })?,
        )
    };
    let ports = ports
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim()
                .parse::<i64>()
                .map(|number| PortSelector { number })
                .map_err(|_| bad(format!("{p:?} is not a port number")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if mode.is_none() && ports.is_empty() {
        return Err(bad("give a mode, ports, or both".into()));
    }
    Ok(TrafficSelector { mode, ports })
}

/// `NAME=VALUE` is an inline value; a bare `NAME` takes the proxy host's variable.
pub fn parse_env(text: &str) -> Result<EnvVar, Error> {
    match text.split_once('=') {
        Some((name, value)) => Ok(EnvVar {
            name: name.to_string(),
            value_from: Some(EnvValueSource::Inline),
            value: Some(value.to_string()),
        }),
        None if !text.is_empty() => Ok(EnvVar {
            name: text.to_string(),
            value_from: Some(EnvValueSource::Host),
            value: None,
        }),
        None => Err(Error::Flag {
            flag: "--env",
            value: text.into(),
            reason: "expected NAME=VALUE or NAME".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(image: &str) -> SpecFlags {
        SpecFlags {
            image: Some(image.into()),
            ..Default::default()
        }
    }

    #[test]
    fn every_flag_lands_in_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.yaml");
        std::fs::write(&config, "level: info\nnested:\n  a: 1\n").unwrap();
        let f = SpecFlags {
            selector: vec!["app=web,tier=front".into(), "team=a".into()],
            config: Some(config),
            set: vec!["nested.b=true".into(), "name=x".into(), "n=5".into()],
            plugin_name: Some("ctx".into()),
            phase: Some(Phase::Stats),
            priority: Some(-3),
            fail_strategy: Some(FailStrategy::FailOpen),
            pull_policy: Some(PullPolicy::Always),
            pull_secret: Some("regcred".into()),
            plugin_type: Some(PluginType::Http),
            matches: vec!["server:80,8080".into(), "client".into(), ":9090".into()],
            env: vec!["A=1".into(), "HOSTNAME".into()],
            ..flags("127.0.0.1:5000/f/ctx:v1")
        };
        let draft = f.draft(Some("ctx-logger"), Some("demo")).unwrap();
        let s = &draft.spec;
        assert_eq!(
            (draft.name.as_str(), draft.namespace.as_deref()),
            ("ctx-logger", Some("demo"))
        );
        assert_eq!(s.url, "oci://127.0.0.1:5000/f/ctx:v1");
        assert_eq!(s.selector.as_ref().unwrap().match_labels.len(), 3);
        assert_eq!(
            s.plugin_config,
            Some(
                serde_json::json!({"level": "info", "nested": {"a": 1, "b": true}, "name": "x", "n": 5})
            )
        );
        assert_eq!(
            (&s.phase, s.priority, &s.fail_strategy),
            (&Some(Phase::Stats), Some(-3), &Some(FailStrategy::FailOpen))
        );
        assert_eq!(
            (&s.image_pull_policy, s.image_pull_secret.as_deref()),
            (&Some(PullPolicy::Always), Some("regcred"))
        );
        assert_eq!(s.plugin_type, Some(PluginType::Http));
        assert_eq!(
            s.matches[0],
            TrafficSelector {
                mode: Some(WorkloadMode::Server),
                ports: vec![PortSelector { number: 80 }, PortSelector { number: 8080 }]
            }
        );
        assert_eq!(s.matches[1].mode, Some(WorkloadMode::Client));
        assert_eq!(
            s.matches[2],
            TrafficSelector {
                mode: None,
                ports: vec![PortSelector { number: 9090 }]
            }
        );
        let env = &s.vm_config.as_ref().unwrap().env;
        assert_eq!(
            env[0],
            EnvVar {
                name: "A".into(),
                value_from: Some(EnvValueSource::Inline),
                value: Some("1".into())
            }
        );
        assert_eq!(env[1].value_from, Some(EnvValueSource::Host));
        assert_eq!(s.plugin_name.as_deref(), Some("ctx"));
        draft.validate("demo").unwrap();
    }

    #[test]
    fn pinning() {
        let draft = flags("reg.io/f/ctx:v1").draft(Some("p"), None).unwrap();
        let reference = draft
            .needs_pin(false)
            .unwrap()
            .expect("a tag needs pinning");
        assert!(draft.needs_pin(true).unwrap().is_none());
        let mut pinned = draft.clone();
        let digest = format!("sha256:{}", "b".repeat(64));
        pinned.pin(&reference, &digest);
        assert_eq!(pinned.spec.url, format!("oci://reg.io/f/ctx@{digest}"));
        assert_eq!(pinned.spec.sha256, Some("b".repeat(64)));
        // A digest in the reference pins without a registry round trip.
        let draft = flags(&format!("reg.io/f/ctx:v1@{digest}"))
            .draft(Some("p"), None)
            .unwrap();
        assert!(draft.needs_pin(false).unwrap().is_none());
        assert_eq!(draft.spec.url, format!("oci://reg.io/f/ctx@{digest}"));
        assert_eq!(draft.spec.sha256, Some("b".repeat(64)));
        // http(s) urls are never resolved.
        let draft = flags("https://h/x.wasm").draft(Some("p"), None).unwrap();
        assert!(draft.needs_pin(false).unwrap().is_none());
    }

    #[test]
    fn target_refs() {
        let t = parse_target_ref("Gateway/ingress").unwrap();
        assert_eq!(
            (t.group.as_str(), t.kind.as_str(), t.name.as_str()),
            ("gateway.networking.k8s.io", "Gateway", "ingress")
        );
        assert_eq!(parse_target_ref("Service/web").unwrap().group, "");
        assert_eq!(
            parse_target_ref("ServiceEntry/x").unwrap().group,
            "networking.istio.io"
        );
        assert_eq!(
            parse_target_ref("Thing.example.com/x").unwrap().group,
            "example.com"
        );
        assert!(
            parse_target_ref("Thing/x")
                .unwrap_err()
                .to_string()
                .contains("KIND.GROUP/NAME")
        );
        assert!(parse_target_ref("Gateway").is_err());
        let f = SpecFlags {
            target_refs: vec!["Gateway/a".into(), "Gateway/b".into()],
            ..flags("reg.io/x:v")
        };
        assert_eq!(f.draft(Some("p"), None).unwrap().spec.target_refs.len(), 2);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let cases: Vec<(SpecFlags, &str)> = vec![
            (
                SpecFlags {
                    selector: vec!["app".into()],
                    ..flags("reg.io/x:v")
                },
                "--selector",
            ),
            (
                SpecFlags {
                    set: vec!["novalue".into()],
                    ..flags("reg.io/x:v")
                },
                "--set",
            ),
            (
                SpecFlags {
                    matches: vec!["sideways:80".into()],
                    ..flags("reg.io/x:v")
                },
                "--match",
            ),
            (
                SpecFlags {
                    matches: vec!["server:http".into()],
                    ..flags("reg.io/x:v")
                },
                "--match",
            ),
            (
                SpecFlags {
                    env: vec!["".into()],
                    ..flags("reg.io/x:v")
                },
                "--env",
            ),
            // A bare name is Docker Hub's `library/nope`, as push reads it; upper case is not.
            (flags("reg.io/Nope"), "--image"),
            (SpecFlags::default(), "--image"),
        ];
        for (f, flag) in cases {
            let err = f.draft(Some("p"), None).unwrap_err().to_string();
            assert!(err.contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn config_must_be_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, "[1, 2]").unwrap();
        let f = SpecFlags {
            config: Some(path),
            ..flags("reg.io/x:v")
        };
        let err = f.draft(Some("p"), None).unwrap_err().to_string();
        assert!(
            err.contains("must be an object") && err.contains("c.json"),
            "{err}"
        );
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(
            &path,
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: from-file\n  namespace: team\nspec:\n  url: oci://reg.io/x:v1\n  phase: AUTHN\n  selector:\n    matchLabels: {app: web}\n",
        )
        .unwrap();
        // What `kubectl get -o yaml` adds (server metadata, status) is accepted and dropped.
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "  namespace: team\n",
            "  namespace: team\n  resourceVersion: \"7\"\n  uid: x\n",
        ) + "status: {}\n";
        std::fs::write(&path, text).unwrap();
        let f = SpecFlags {
            file: Some(path.clone()),
            phase: Some(Phase::Stats),
            ..Default::default()
        };
        let draft = f.draft(None, None).unwrap();
        assert_eq!(
            (draft.name.as_str(), draft.namespace.as_deref()),
            ("from-file", Some("team"))
        );
        assert_eq!(
            (draft.spec.phase, draft.spec.url.as_str()),
            (Some(Phase::Stats), "oci://reg.io/x:v1")
        );
        // --target-ref replaces the file's selector instead of producing an invalid mix.
        let f = SpecFlags {
            file: Some(path),
            target_refs: vec!["Gateway/gw".into()],
            ..Default::default()
        };
        let draft = f.draft(None, None).unwrap();
        assert!(draft.spec.selector.is_none());
        std::fs::write(
            dir.path().join("bad.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nspec: {}\n",
        )
        .unwrap();
        let f = SpecFlags {
            file: Some(dir.path().join("bad.yaml")),
            ..Default::default()
        };
        assert!(
            f.draft(None, None)
                .unwrap_err()
                .to_string()
                .contains("expected apiVersion")
        );
    }
}
