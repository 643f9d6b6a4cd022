//! `deployer list`: the WasmPlugins of a namespace (or all with -A), as a table or JSON.
use std::process::ExitCode;

use deployer::output::Format;
use deployer::plugin::read;
use deployer::plugin::spec::{Kind, KindChoice, phase_on_wire};
use deployer::plugin::wire_enum::WireEnum;
use kube::api::DynamicObject;
use serde::Serialize;

use super::args::ClusterArgs;

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only this kind: wasmplugin (wp) or trafficextension (te); auto lists both.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub kind: KindChoice,
    /// List across all namespaces.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Output format: text (a table), json or yaml.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Format,
}

const EXAMPLES: &str = "Examples:
  deployer list -n demo
  deployer list -A -o json
  deployer list --kind te --context staging --context prod";

#[derive(Debug, Serialize)]
struct Row {
    context: String,
    kind: String,
    name: String,
    namespace: String,
    /// The url without its digest: what was deployed, as people name it.
    image: String,
    /// `sha256:<hex>` from the url or the sha256 field, when pinned.
    digest: Option<String>,
    phase: Option<String>,
    /// `app=web,tier=front`, `Gateway/ingress,...`, or `-` (every workload in the namespace).
    attached_to: String,
    /// Seconds since creation.
    age_seconds: Option<i64>,
    url: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let clusters = args.cluster.connect_all().await?;
    let mut rows = Vec::new();
    for cluster in &clusters {
        let namespace = if args.all_namespaces {
            None
        } else {
            Some(
                args.cluster
                    .namespace
                    .clone()
                    .unwrap_or_else(|| cluster.default_namespace.clone()),
            )
        };
        for kind in kinds(cluster, args.kind).await? {
            for object in cluster.list_objects(kind, namespace.as_deref()).await? {
                rows.push(row(&cluster.context, kind, &object));
            }
        }
    }
    deployer::output::print(args.output, &rows, || {
        // The table prints itself (and its "none found" note on stderr).
        print_table(&rows, clusters.len() > 1);
        String::new()
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The kinds to list: the one named, else both, leaving out TrafficExtension on a cluster whose
/// Istio predates it (its CRD is missing) so older meshes still list their WasmPlugins.
async fn kinds(
    cluster: &deployer::cluster::Cluster,
    choice: KindChoice,
) -> anyhow::Result<Vec<Kind>> {
    if let Some(kind) = choice.explicit() {
        cluster.ensure_crd_of(kind).await?;
        return Ok(vec![kind]);
    }
    cluster.ensure_crd_of(Kind::WasmPlugin).await?;
    let mut kinds = vec![Kind::WasmPlugin];
    match cluster.ensure_crd_of(Kind::TrafficExtension).await {
        Ok(()) => kinds.push(Kind::TrafficExtension),
        Err(deployer::cluster::Error::CrdMissing { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(kinds)
}

/// One object's row, from the spec in the one model. Read leniently: fields a newer Istio adds
/// must not break `list` (a spec that cannot be read at all lists with its name only).
fn row(context: &str, kind: Kind, object: &DynamicObject) -> Row {
    let stored = object.data.get("spec").cloned().unwrap_or_default();
    let spec = read::lenient(kind, &stored).unwrap_or_default();
    // A Lua TrafficExtension has no image.
    let url = if spec.url.is_empty() && spec.lua.is_some() {
        "(lua)".to_string()
    } else {
        spec.url.clone()
    };
    let (image, url_digest) = match url.split_once('@') {
        Some((image, digest)) => (image.to_string(), Some(digest.to_string())),
        None => (url.clone(), None),
    };
    let digest = url_digest.or_else(|| {
        spec.sha256
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|hex| format!("sha256:{hex}"))
    });
    let labels = spec.selector.as_ref().map(|s| &s.match_labels);
    let targets: Vec<String> = spec
        .target_refs
        .iter()
        .chain(&spec.target_ref)
        .map(ToString::to_string)
        .collect();
    let attached_to = match labels {
        Some(labels) if !labels.is_empty() => labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        _ if !targets.is_empty() => targets.join(","),
        _ => "-".to_string(),
    };
    let age_seconds = object
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| k8s_openapi::jiff::Timestamp::now().as_second() - t.0.as_second());
    Row {
        context: context.to_string(),
        kind: kind.name().to_string(),
        name: object.metadata.name.clone().unwrap_or_default(),
        namespace: object.metadata.namespace.clone().unwrap_or_default(),
        image,
        digest,
        phase: spec
            .phase
            .as_ref()
            .map(|phase| phase_on_wire(kind, phase.as_str()).to_string()),
        attached_to,
        age_seconds,
        url,
    }
}

/// kubectl-style age: 42s, 7m, 3h, 12d.
fn age(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{}s", s.max(0)),
        Some(s) if s < 2 * 3600 => format!("{}m", s / 60),
        Some(s) if s < 2 * 86400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86400),
    }
}

fn print_table(rows: &[Row], with_context: bool) {
    if rows.is_empty() {
        eprintln!("no WasmPlugins or TrafficExtensions found");
        return;
    }
    let short = |d: &Option<String>| {
        d.as_deref()
            .map(|d| d.trim_start_matches("sha256:").chars().take(12).collect())
            .unwrap_or_else(|| "-".to_string())
    };
    let mut table: Vec<Vec<String>> = vec![
        [
            "CONTEXT",
            "KIND",
            "NAME",
            "NAMESPACE",
            "IMAGE",
            "DIGEST",
            "PHASE",
            "SELECTOR/TARGETS",
            "AGE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    for r in rows {
        table.push(vec![
            r.context.clone(),
            r.kind.clone(),
            r.name.clone(),
            r.namespace.clone(),
            r.image.clone(),
            short(&r.digest),
            r.phase.clone().unwrap_or_else(|| "-".into()),
            r.attached_to.clone(),
            age(r.age_seconds),
        ]);
    }
    let skip = usize::from(!with_context);
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| table.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .skip(skip)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(Some(5)), "5s");
        assert_eq!(age(Some(600)), "10m");
        assert_eq!(age(Some(3 * 3600)), "3h");
        assert_eq!(age(Some(5 * 86400)), "5d");
        assert_eq!(age(None), "-");
    }

    #[test]
    fn rows_from_objects() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
            "metadata": {"name": "ctx", "namespace": "demo"},
            "spec": {"url": "oci://r/x@sha256:abc", "phase": "STATS", "targetRefs": [{"kind": "Gateway", "name": "gw"}]}
        }))
        .unwrap();
        let r = row("kind", Kind::WasmPlugin, &object);
        assert_eq!(r.kind, "WasmPlugin");
        assert_eq!(
            (
                r.image.as_str(),
                r.digest.as_deref(),
                r.attached_to.as_str()
            ),
            ("oci://r/x", Some("sha256:abc"), "Gateway/gw")
        );
    }

    #[test]
    fn a_newer_istio_s_fields_and_values_still_list() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
            "metadata": {"name": "ctx", "namespace": "demo"},
            "spec": {"url": "oci://r/x:1", "phase": "EARLY", "futureField": [1]}
        }))
        .unwrap();
        let r = row("kind", Kind::WasmPlugin, &object);
        assert_eq!(
            (r.image.as_str(), r.phase.as_deref(), r.attached_to.as_str()),
            ("oci://r/x:1", Some("EARLY"), "-")
        );
    }

    #[test]
    fn traffic_extension_rows_read_the_wasm_part() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "extensions.istio.io/v1alpha1", "kind": "TrafficExtension",
            "metadata": {"name": "ctx", "namespace": "demo"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "wasm": {"url": "oci://r/x@sha256:abc"}}
        }))
        .unwrap();
        let r = row("kind", Kind::TrafficExtension, &object);
        assert_eq!(
            (r.kind.as_str(), r.image.as_str(), r.attached_to.as_str()),
            ("TrafficExtension", "oci://r/x", "app=web")
        );
        let lua: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "extensions.istio.io/v1alpha1", "kind": "TrafficExtension",
            "metadata": {"name": "lua", "namespace": "demo"},
            "spec": {"lua": {"inlineCode": "function envoy_on_request(h) end"}}
        }))
        .unwrap();
        assert_eq!(row("kind", Kind::TrafficExtension, &lua).image, "(lua)");
    }
}
