//! Client-side checks with the rules Istio's WasmPlugin CRD enforces (FACTS.md), plus the
//! Kubernetes label syntax for selectors, so mistakes are caught before anything is sent and
//! every problem is reported in one run.
use super::spec::{EnvValueSource, Kind, LuaConfig, PolicyTargetReference, WasmPluginSpec};

/// TrafficExtension's CRD caps `lua.inlineCode` at 65536 characters; Istio's API says 64KB.
pub const MAX_LUA_BYTES: usize = 64 * 1024;

/// `problems` for either kind: a WasmPlugin has no Lua; a TrafficExtension has exactly one of
/// wasm or lua (its CRD's CEL rule) and no deprecated `targetRef`.
pub fn problems_for(kind: Kind, name: &str, namespace: &str, spec: &WasmPluginSpec) -> Vec<String> {
    let has_wasm = wasm_part_set(spec);
    match (kind, &spec.lua) {
        (Kind::WasmPlugin, None) => problems(name, namespace, spec),
        (Kind::WasmPlugin, Some(_)) => {
            let mut out = problems(name, namespace, spec);
            out.push(
                "spec.lua: only a TrafficExtension runs Lua (use --kind trafficextension)".into(),
            );
            out
        }
        (Kind::TrafficExtension, lua) => {
            let mut out = if has_wasm || lua.is_none() {
                problems(name, namespace, spec)
            } else {
                // No wasm part: its url rule does not apply.
                let mut without_url = spec.clone();
                without_url.url = "oci://placeholder/x".into();
                problems(name, namespace, &without_url)
            };
            if spec.target_ref.is_some() {
                out.push(
                    "spec.targetRef: TrafficExtension has no targetRef (deprecated in WasmPlugin); use targetRefs".into(),
                );
            }
            match lua {
                Some(_) if has_wasm => out.push(
                    "spec: exactly one of wasm or lua must be set, this TrafficExtension has both"
                        .into(),
                ),
                Some(lua) => check_lua(lua, &mut out),
                None if !has_wasm => out.push(
                    "spec: exactly one of wasm or lua must be set, this TrafficExtension has neither (--image or --lua)".into(),
                ),
                None => {}
            }
            out
        }
    }
}

/// Whether any field of the wasm part is set (a Lua spec has none).
pub fn wasm_part_set(spec: &WasmPluginSpec) -> bool {
    !spec.url.is_empty()
        || spec.sha256.is_some()
        || spec.image_pull_policy.is_some()
        || spec.image_pull_secret.is_some()
        || spec.plugin_config.is_some()
        || spec.plugin_name.is_some()
        || spec.fail_strategy.is_some()
        || spec.vm_config.is_some()
        || spec.plugin_type.is_some()
        || spec.verification_key.is_some()
}

/// Istio's limits for inline Lua, and the entry points Envoy's Lua filter calls: a script
/// without either would load and never run.
pub fn check_lua(lua: &LuaConfig, out: &mut Vec<String>) {
    let code = &lua.inline_code;
    if code.trim().is_empty() {
        out.push("spec.lua.inlineCode: empty".into());
        return;
    }
    if code.len() > MAX_LUA_BYTES {
        out.push(format!(
            "spec.lua.inlineCode: {} bytes, at most {MAX_LUA_BYTES} (64 KiB) allowed; use a wasm module for larger filters",
            code.len()
        ));
    }
    if !defines_function(code, "envoy_on_request") && !defines_function(code, "envoy_on_response") {
        out.push(
            "spec.lua.inlineCode: defines neither envoy_on_request nor envoy_on_response, so Envoy would never call it".into(),
        );
    }
}

/// `function NAME(` or `NAME = function(` outside a `--` comment line.
fn defines_function(code: &str, name: &str) -> bool {
    code.lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .any(|line| {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            words.windows(2).any(|w| w == ["function", name])
                || (words.first() == Some(&name) && line.contains('=') && line.contains("function"))
        })
}

/// Istio's CRD caps `targetRefs` at 16 entries.
pub const MAX_TARGET_REFS: usize = 16;

/// Every problem found in `spec` (empty when valid), each prefixed with its field path.
pub fn problems(name: &str, namespace: &str, spec: &WasmPluginSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(why) = dns_subdomain(name) {
        out.push(format!("metadata.name {name:?}: {why}"));
    }
    if let Err(why) = dns_label(namespace) {
        out.push(format!("metadata.namespace {namespace:?}: {why}"));
    }
    check_url(&spec.url, &mut out);
    if let Some(sha) = &spec.sha256
        && !(sha.is_empty() || is_sha256_hex(sha))
    {
        out.push(format!("spec.sha256 {sha:?}: must be 64 lower-case hex characters (the digest without `sha256:`)"));
    }
    let attachments = [
        spec.selector.is_some(),
        spec.target_ref.is_some(),
        !spec.target_refs.is_empty(),
    ];
    if attachments.iter().filter(|set| **set).count() > 1 {
        out.push("spec: set at most one of selector, targetRef and targetRefs".to_string());
    }
    if let Some(selector) = &spec.selector {
        for (key, value) in &selector.match_labels {
            if let Err(why) = label_key(key) {
                out.push(format!("spec.selector.matchLabels key {key:?}: {why}"));
            }
            if let Err(why) = label_value(value) {
                out.push(format!(
                    "spec.selector.matchLabels[{key}] value {value:?}: {why}"
                ));
            }
        }
    }
    if spec.target_refs.len() > MAX_TARGET_REFS {
        out.push(format!(
            "spec.targetRefs: {} entries, at most {MAX_TARGET_REFS} allowed",
            spec.target_refs.len()
        ));
    }
    if let Some(target) = &spec.target_ref {
        check_target("spec.targetRef", target, &mut out);
    }
    for (i, target) in spec.target_refs.iter().enumerate() {
        check_target(&format!("spec.targetRefs[{i}]"), target, &mut out);
    }
    if let Some(secret) = &spec.image_pull_secret
        && let Err(why) = dns_subdomain(secret)
    {
        out.push(format!(
            "spec.imagePullSecret {secret:?}: {why} (it names a Secret in the plugin's namespace)"
        ));
    }
    if let Some(config) = &spec.plugin_config
        && !config.is_object()
    {
        out.push("spec.pluginConfig: must be a JSON object (a map of keys to values)".to_string());
    }
    if let Some(plugin_name) = &spec.plugin_name
        && (plugin_name.is_empty() || plugin_name.len() > 256)
    {
        out.push("spec.pluginName: must be 1 to 256 characters when set".to_string());
    }
    for (i, selector) in spec.matches.iter().enumerate() {
        // The CRD makes `ports` a list map keyed by number: the API server refuses a repeat.
        let mut seen = std::collections::BTreeSet::new();
        for (j, port) in selector.ports.iter().enumerate() {
            if !seen.insert(port.number) {
                out.push(format!(
                    "spec.match[{i}].ports[{j}].number {}: listed twice in this match",
                    port.number
                ));
            }
            if !(1..=65535).contains(&port.number) {
                out.push(format!(
                    "spec.match[{i}].ports[{j}].number {}: must be between 1 and 65535",
                    port.number
                ));
            }
        }
    }
    if let Some(vm) = &spec.vm_config {
        if vm.env.len() > 256 {
            out.push(format!(
                "spec.vmConfig.env: {} entries, at most 256 allowed",
                vm.env.len()
            ));
        }
        // istiod refuses a repeated name ("duplicate env"), and so does the CRD (a list map
        // keyed by name).
        let mut seen = std::collections::BTreeSet::new();
        for (i, env) in vm.env.iter().enumerate() {
            if !env.name.is_empty() && !seen.insert(env.name.as_str()) {
                out.push(format!(
                    "spec.vmConfig.env[{i}].name {:?}: listed twice (Istio refuses duplicate env names)",
                    env.name
                ));
            }
            if env.name.is_empty() || env.name.len() > 256 {
                out.push(format!(
                    "spec.vmConfig.env[{i}].name: must be 1 to 256 characters"
                ));
            }
            if env.value.as_ref().is_some_and(|v| v.len() > 2048) {
                out.push(format!(
                    "spec.vmConfig.env[{i}].value: at most 2048 characters"
                ));
            }
            if env.value_from == Some(EnvValueSource::Host) && env.value.is_some() {
                out.push(format!(
                    "spec.vmConfig.env[{i}] {:?}: a HOST variable takes its value from the proxy; drop `value`",
                    env.name
                ));
            }
        }
    }
    out
}

fn check_url(url: &str, out: &mut Vec<String>) {
    if url.is_empty() {
        out.push(
            "spec.url: required (an oci://, https://, http:// or file:// module location)"
                .to_string(),
        );
        return;
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "oci" | "http" | "https" | "file") {
            out.push(format!(
                "spec.url {url:?}: scheme {scheme:?} is not one of oci, http, https, file"
            ));
        } else if rest.is_empty() {
            out.push(format!("spec.url {url:?}: nothing after the scheme"));
        }
    }
}

/// An `oci://` (or scheme-less) url that the reference grammar refuses: push, pull and the
/// pinning would refuse it, and so does Istio's agent (go-containerregistry). Checked for
/// what apply and render write, not in [`problems_for`], so `migrate` still copies a stored
/// object as it is.
pub fn url_reference_problem(url: &str) -> Option<String> {
    match url.split_once("://") {
        Some(("oci", rest)) if !rest.is_empty() => {}
        None if !url.is_empty() => {}
        _ => return None,
    }
    let reason = match crate::oci::ImageRef::parse(url).err()? {
        crate::oci::Error::InvalidReference { reason, .. } => reason,
        other => other.to_string(),
    };
    Some(format!(
        "spec.url {url:?}: not an image reference: {reason}"
    ))
}

fn check_target(path: &str, target: &PolicyTargetReference, out: &mut Vec<String>) {
    let kind_ok = target.kind.len() <= 63
        && target.kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && target.kind.ends_with(|c: char| c.is_ascii_alphanumeric())
        && target
            .kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if target.kind.is_empty() {
        out.push(format!("{path}.kind: required (e.g. Gateway or Service)"));
    } else if !kind_ok {
        out.push(format!(
            "{path}.kind {:?}: must be at most 63 letters, digits and '-', starting with a letter",
            target.kind
        ));
    }
    if target.name.is_empty() || target.name.len() > 253 {
        out.push(format!(
            "{path}.name {:?}: must be 1 to 253 characters",
            target.name
        ));
    }
    if !target.group.is_empty()
        && let Err(why) = dns_subdomain(&target.group)
    {
        out.push(format!("{path}.group {:?}: {why}", target.group));
    }
    if let Some(namespace) = target.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        out.push(format!(
            "{path}.namespace {namespace:?}: must be empty: Istio does not support cross-namespace \
             targets (the target must be in the plugin's namespace)"
        ));
    }
    // istiod's validatePolicyTargetReference: only these group/kind pairs, the empty group
    // standing for the core group.
    if !target.kind.is_empty() {
        let group = if target.group.is_empty() {
            "core"
        } else {
            target.group.as_str()
        };
        if !ALLOWED_TARGETS.contains(&(group, target.kind.as_str())) {
            let hint = match ALLOWED_TARGETS
                .iter()
                .find(|(_, kind)| *kind == target.kind)
            {
                Some(("core", _)) => " (leave group empty for a Service)".to_string(),
                Some((group, _)) => format!(" (a {} needs group {group})", target.kind),
                None => String::new(),
            };
            out.push(format!(
                "{path}: Istio targets only a Service, ServiceEntry (networking.istio.io), Gateway or \
                 GatewayClass (gateway.networking.k8s.io), not group {:?} kind {:?}{hint}",
                target.group, target.kind
            ));
        }
    }
}

/// (group, kind) pairs istiod accepts in targetRef(s) (pkg/config/validation's
/// `allowedTargetRefs`: Service, ServiceEntry, KubernetesGateway, GatewayClass).
const ALLOWED_TARGETS: [(&str, &str); 4] = [
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
];

pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// RFC 1123 subdomain, as Kubernetes requires for object names.
pub fn dns_subdomain(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    for part in text.split('.') {
        dns_label_chars(part)
            .map_err(|_| "must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit".to_string())?;
    }
    Ok(())
}

/// RFC 1123 label, as Kubernetes requires for namespace names.
pub fn dns_label(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    dns_label_chars(text)
}

fn dns_label_chars(text: &str) -> Result<(), String> {
    let ok_inner = text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok_inner && ends(text.as_bytes().first()) && ends(text.as_bytes().last()) {
        Ok(())
    } else {
        Err("must be lower-case letters, digits and '-', starting and ending with a letter or digit".into())
    }
}

/// `[prefix/]name`: prefix a DNS subdomain, name a qualified name of at most 63 characters.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        dns_subdomain(prefix).map_err(|why| format!("prefix {prefix:?} {why}"))?;
    }
    if name.is_empty() || name.len() > 63 {
        return Err("name part must be 1 to 63 characters".into());
    }
    if name.contains('*') {
        return Err("wildcards are not supported".into());
    }
    qualified_chars(name)
}

/// Empty, or at most 63 characters of letters, digits, '-', '_', '.', alphanumeric at both ends.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!("{} characters, at most 63 allowed", value.len()));
    }
    if value.contains('*') {
        return Err("wildcards are not supported".into());
    }
    if value.is_empty() {
        Ok(())
    } else {
        qualified_chars(value)
    }
}

fn qualified_chars(text: &str) -> Result<(), String> {
    let inner = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    if inner && ends(text.as_bytes().first()) && ends(text.as_bytes().last()) {
        Ok(())
    } else {
        Err(
            "must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::*;
    use super::*;

    fn base() -> WasmPluginSpec {
        WasmPluginSpec {
            url: "oci://registry.local/ctx:v1".into(),
            ..Default::default()
        }
    }

    fn target(kind: &str, name: &str) -> PolicyTargetReference {
        let group = match kind {
            "Gateway" | "GatewayClass" => "gateway.networking.k8s.io",
            "ServiceEntry" => "networking.istio.io",
            _ => "",
        };
        PolicyTargetReference {
            kind: kind.into(),
            name: name.into(),
            group: group.into(),
            ..Default::default()
        }
    }

    fn env(names: &[&str]) -> Option<VmConfig> {
        Some(VmConfig {
            env: names
                .iter()
                .map(|name| EnvVar {
                    name: name.to_string(),
                    value_from: None,
                    value: Some("v".into()),
                })
                .collect(),
        })
    }

    #[test]
    fn validation_table() {
        let sha = "a".repeat(64);
        let labels = |k: &str, v: &str| {
            Some(WorkloadSelector {
                match_labels: [(k.to_string(), v.to_string())].into(),
            })
        };
        // (case, spec change, expected substring of the problem or None when valid)
        type Edit = Box<dyn Fn(&mut WasmPluginSpec)>;
        let cases: Vec<(&str, Edit, Option<&str>)> = vec![
            ("minimal", Box::new(|_| {}), None),
            (
                "no url",
                Box::new(|s| s.url.clear()),
                Some("spec.url: required"),
            ),
            (
                "bad scheme",
                Box::new(|s| s.url = "ftp://x/y".into()),
                Some("scheme \"ftp\""),
            ),
            (
                "no scheme means oci",
                Box::new(|s| s.url = "registry.local/x:v1".into()),
                None,
            ),
            (
                "https",
                Box::new(|s| s.url = "https://h/x.wasm".into()),
                None,
            ),
            (
                "file",
                Box::new(|s| s.url = "file:///opt/x.wasm".into()),
                None,
            ),
            (
                "good sha",
                Box::new(move |s| s.sha256 = Some(sha.clone())),
                None,
            ),
            (
                "empty sha",
                Box::new(|s| s.sha256 = Some(String::new())),
                None,
            ),
            (
                "short sha",
                Box::new(|s| s.sha256 = Some("abc".into())),
                Some("spec.sha256"),
            ),
            (
                "upper sha",
                Box::new(|s| s.sha256 = Some("A".repeat(64))),
                Some("spec.sha256"),
            ),
            (
                "prefixed sha",
                Box::new(|s| s.sha256 = Some(format!("sha256:{}", "a".repeat(57)))),
                Some("spec.sha256"),
            ),
            (
                "label",
                Box::new(move |s| s.selector = labels("app", "web")),
                None,
            ),
            (
                "prefixed label",
                Box::new(move |s| s.selector = labels("app.kubernetes.io/name", "web")),
                None,
            ),
            (
                "empty label value",
                Box::new(move |s| s.selector = labels("app", "")),
                None,
            ),
            (
                "label value 64",
                Box::new(move |s| s.selector = labels("app", &"v".repeat(64))),
                Some("at most 63"),
            ),
            (
                "label wildcard",
                Box::new(move |s| s.selector = labels("app", "we*")),
                Some("wildcards"),
            ),
            (
                "label key empty",
                Box::new(move |s| s.selector = labels("", "x")),
                Some("key \"\""),
            ),
            (
                "label key bad",
                Box::new(move |s| s.selector = labels("-app", "x")),
                Some("key \"-app\""),
            ),
            (
                "selector and targetRefs",
                Box::new(move |s| {
                    s.selector = labels("app", "x");
                    s.target_refs = vec![target("Gateway", "gw")];
                }),
                Some("at most one of selector"),
            ),
            (
                "targetRef and targetRefs",
                Box::new(|s| {
                    s.target_ref = Some(target("Gateway", "a"));
                    s.target_refs = vec![target("Gateway", "gw")];
                }),
                Some("at most one of selector"),
            ),
            (
                "16 targets",
                Box::new(|s| s.target_refs = vec![target("Gateway", "gw"); 16]),
                None,
            ),
            (
                "17 targets",
                Box::new(|s| s.target_refs = vec![target("Gateway", "gw"); 17]),
                Some("at most 16"),
            ),
            (
                "target without kind",
                Box::new(|s| s.target_refs = vec![target("", "gw")]),
                Some("targetRefs[0].kind"),
            ),
            (
                "every kind Istio targets",
                Box::new(|s| {
                    s.target_refs = ["Gateway", "GatewayClass", "Service", "ServiceEntry"]
                        .iter()
                        .map(|kind| target(kind, "t"))
                        .collect()
                }),
                None,
            ),
            (
                "Service in group core",
                Box::new(|s| {
                    let mut t = target("Service", "web");
                    t.group = "core".into();
                    s.target_refs = vec![t];
                }),
                None,
            ),
            (
                "Gateway without its group",
                Box::new(|s| {
                    let mut t = target("Gateway", "gw");
                    t.group.clear();
                    s.target_refs = vec![t];
                }),
                Some("a Gateway needs group gateway.networking.k8s.io"),
            ),
            (
                "a Deployment",
                Box::new(|s| {
                    let mut t = target("Deployment", "web");
                    t.group = "apps".into();
                    s.target_ref = Some(t);
                }),
                Some("spec.targetRef: Istio targets only"),
            ),
            (
                "cross-namespace target",
                Box::new(|s| {
                    let mut t = target("Service", "web");
                    t.namespace = Some("other".into());
                    s.target_refs = vec![t];
                }),
                Some("cross-namespace"),
            ),
            (
                "empty namespace is the plugin's",
                Box::new(|s| {
                    let mut t = target("Service", "web");
                    t.namespace = Some(String::new());
                    s.target_refs = vec![t];
                }),
                None,
            ),
            (
                "duplicate port in one match",
                Box::new(|s| {
                    s.matches = vec![TrafficSelector {
                        mode: None,
                        ports: vec![PortSelector { number: 80 }, PortSelector { number: 80 }],
                    }]
                }),
                Some("spec.match[0].ports[1].number 80: listed twice"),
            ),
            (
                "same port in two matches",
                Box::new(|s| s.matches = vec![port(80), port(80)]),
                None,
            ),
            (
                "duplicate env",
                Box::new(|s| s.vm_config = env(&["A", "B", "A"])),
                Some("spec.vmConfig.env[2].name \"A\": listed twice"),
            ),
            (
                "distinct env",
                Box::new(|s| s.vm_config = env(&["A", "B"])),
                None,
            ),
            (
                "config object",
                Box::new(|s| s.plugin_config = Some(serde_json::json!({"a": 1}))),
                None,
            ),
            (
                "config array",
                Box::new(|s| s.plugin_config = Some(serde_json::json!([1]))),
                Some("JSON object"),
            ),
            (
                "port 0",
                Box::new(|s| s.matches = vec![port(0)]),
                Some("between 1 and 65535"),
            ),
            (
                "port 65535",
                Box::new(|s| s.matches = vec![port(65535)]),
                None,
            ),
            (
                "port 65536",
                Box::new(|s| s.matches = vec![port(65536)]),
                Some("between 1 and 65535"),
            ),
            (
                "pull secret name",
                Box::new(|s| s.image_pull_secret = Some("Bad_Name".into())),
                Some("imagePullSecret"),
            ),
            (
                "env host with value",
                Box::new(|s| {
                    s.vm_config = Some(VmConfig {
                        env: vec![EnvVar {
                            name: "A".into(),
                            value_from: Some(EnvValueSource::Host),
                            value: Some("x".into()),
                        }],
                    })
                }),
                Some("HOST variable"),
            ),
        ];
        for (case, edit, expected) in cases {
            let mut spec = base();
            edit(&mut spec);
            let found = problems("ctx-logger", "default", &spec);
            match expected {
                None => assert!(found.is_empty(), "{case}: unexpected {found:?}"),
                Some(text) => assert!(
                    found.iter().any(|p| p.contains(text)),
                    "{case}: wanted {text:?} in {found:?}"
                ),
            }
        }
    }

    #[test]
    fn oci_urls_follow_the_reference_grammar() {
        for (url, refused) in [
            ("oci://registry.local/x:v1", false),
            ("registry.local/x:v1", false),
            ("oci://logger:v1", false),
            ("https://h/X.wasm", false),
            ("file:///opt/X.wasm", false),
            ("", false),
            ("oci://registry.local/X:v1", true),
            ("registry.local/x@sha256:aa", true),
            ("oci://r/x:", true),
        ] {
            let problem = url_reference_problem(url);
            assert_eq!(problem.is_some(), refused, "{url}: {problem:?}");
            if let Some(problem) = problem {
                assert!(
                    problem.starts_with(&format!("spec.url {url:?}")),
                    "{problem}"
                );
            }
        }
    }

    fn port(number: i64) -> TrafficSelector {
        TrafficSelector {
            mode: None,
            ports: vec![PortSelector { number }],
        }
    }

    #[test]
    fn names_and_namespaces() {
        assert!(
            problems("Bad", "default", &base())
                .iter()
                .any(|p| p.starts_with("metadata.name"))
        );
        assert!(
            problems("ok.name", "a.b", &base())
                .iter()
                .any(|p| p.starts_with("metadata.namespace"))
        );
        assert!(problems("ok", "ns-1", &base()).is_empty());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut spec = base();
        spec.url.clear();
        spec.sha256 = Some("x".into());
        assert_eq!(problems("x", "default", &spec).len(), 2);
    }

    #[test]
    fn wasm_or_lua_by_kind() {
        let lua = |code: &str| {
            Some(LuaConfig {
                inline_code: code.to_string(),
            })
        };
        let wasm = WasmPluginSpec {
            url: "oci://r/x:1".into(),
            ..Default::default()
        };
        let script = "function envoy_on_request(handle)\n  handle:logInfo('x')\nend\n";
        let lua_only = WasmPluginSpec {
            lua: lua(script),
            ..Default::default()
        };
        let both = WasmPluginSpec {
            lua: lua(script),
            ..wasm.clone()
        };
        let check = |kind, spec: &WasmPluginSpec| problems_for(kind, "n", "ns", spec).join("; ");
        assert_eq!(check(Kind::TrafficExtension, &wasm), "");
        assert_eq!(check(Kind::TrafficExtension, &lua_only), "");
        assert!(check(Kind::TrafficExtension, &both).contains("has both"));
        let neither = check(Kind::TrafficExtension, &WasmPluginSpec::default());
        assert!(neither.contains("has neither"), "{neither}");
        assert!(check(Kind::WasmPlugin, &lua_only).contains("only a TrafficExtension runs Lua"));
        let big = format!("{script}{}", "-- padding\n".repeat(70 * 1024 / 11));
        let too_big = WasmPluginSpec {
            lua: lua(&big),
            ..Default::default()
        };
        assert!(check(Kind::TrafficExtension, &too_big).contains("at most 65536"));
        let no_entry = WasmPluginSpec {
            lua: lua("-- function envoy_on_request(h)\nlocal x = 1\n"),
            ..Default::default()
        };
        assert!(check(Kind::TrafficExtension, &no_entry).contains("defines neither"));
        let assigned = WasmPluginSpec {
            lua: lua("envoy_on_response = function(h) end\n"),
            ..Default::default()
        };
        assert_eq!(check(Kind::TrafficExtension, &assigned), "");
    }
}
