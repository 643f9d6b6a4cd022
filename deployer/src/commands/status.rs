//! `deployer status NAME`: one screen that answers "is my plugin running?"; exit 0 only when
//! every check passes.
use std::process::ExitCode;

use deployer::mesh::admin::Running;
use deployer::mesh::logline::TRANSLATED_SUFFIX;
use std::collections::BTreeMap;

use deployer::mesh::status::{self, PodCheck, PodState, Report};
use deployer::mesh::{PROXY_CONTAINER, pods};
use deployer::oci::RegistryArgs;
use deployer::output::Format;

use anyhow::Context;

use super::args::PluginArgs;

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Output format: text, json or yaml (json and yaml are always complete).
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Format,
    /// At most this many pods' logs read at once (like kubectl's --max-log-requests).
    #[arg(long, value_name = "N", default_value_t = pods::MAX_LOG_REQUESTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_log_requests: u32,
    /// Read the sidecar log of at most N running pods: beyond it, a sample with pods of every
    /// controller, node, proxy image and log level, restarted or unready sidecars first. The
    /// rest are counted as "not read". 0: read every pod.
    #[arg(long, value_name = "N", default_value_t = deployer::mesh::sample::DEFAULT_SAMPLE)]
    pub sample: usize,
    /// Pods (and per-pod problems and notes) listed one by one in the text output; beyond it
    /// the pods are counted by state, problem pods listed first. 0: list all. `-o json` is
    /// always complete.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_pods_shown: usize,
    /// How to reach the registry to check the image.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

const EXAMPLES: &str = "Examples:
  deployer status context-logger -n demo
  deployer status context-logger -n demo -o json | jq .pods
  deployer status context-logger --kind te --context staging
  deployer status context-logger -n demo --context eu-1 --context us-1   # every cluster

Exit status: 0 when every check passes, 1 when a check found a problem, 2 when the checks
could not run (no cluster, no such plugin, bad flags). With several --context, one report per
cluster (-o json: a list of them), and 1 when any cluster has a problem.";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.registry.into_options()?;
    let clusters = args.plugin.cluster.connect_all().await?;
    let reading = status::Reading {
        max_log_requests: args.max_log_requests as usize,
        sample: args.sample,
    };
    // Clusters are checked at once: each is its own API server and registry round trips.
    let reports = futures::future::try_join_all(clusters.iter().map(|cluster| {
        let (plugin, options) = (&args.plugin, &options);
        async move {
            let namespace = plugin.cluster.namespace_in(cluster);
            let found =
                deployer::mesh::plugin::find(cluster, plugin.kind, &namespace, &plugin.name)
                    .await
                    .with_context(|| format!("context {}", cluster.context))?;
            anyhow::Ok(status::report(cluster, found, options, reading).await)
        }
    }))
    .await?;
    let limit = if args.max_pods_shown == 0 {
        usize::MAX
    } else {
        args.max_pods_shown
    };
    match reports.as_slice() {
        [report] => deployer::output::print(args.output, report, || text(report, limit))?,
        several => deployer::output::print(args.output, several, || {
            several
                .iter()
                .map(|report| text(report, limit))
                .collect::<Vec<_>>()
                .join("\n")
        })?,
    }
    Ok(if reports.iter().all(Report::healthy) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints at most `limit` of the items, then how many more there are: a fleet can have a
/// problem per pod.
fn capped(out: &mut String, label: &str, items: &[String], limit: usize) {
    use std::fmt::Write;
    for item in items.iter().take(limit) {
        let _ = writeln!(out, "{label}: {item}");
    }
    if items.len() > limit {
        let _ = writeln!(
            out,
            "{label}: ... and {} more (-o json lists all)",
            items.len() - limit
        );
    }
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not checked",
    }
}

/// One line on what a pod's Envoy runs in the plugin's place (ECDS, through its admin).
fn envoy_text(running: &Running) -> String {
    match running {
        Running::Loaded {
            name,
            digest,
            root_id,
        } => format!(
            "{name} loaded, module {} (root_id {root_id:?})",
            digest.as_deref().unwrap_or("from a file of unknown digest")
        ),
        Running::DenyAll { name } => {
            format!("{name}: DENY-ALL filter in its place (fetch failed, FAIL_CLOSE)")
        }
        Running::AllowAll { name } => {
            format!("{name}: allow-all filter in its place (fetch failed, FAIL_OPEN)")
        }
        Running::Absent => "no filter config for the plugin (not sent yet, or not selected)".into(),
    }
}

fn text(report: &Report, limit: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let p = &report.plugin;
    let _ = writeln!(
        out,
        "{} {}/{} (context {}, generation {}, resourceVersion {})",
        p.kind, p.namespace, p.name, report.context, p.generation, p.resource_version
    );
    let _ = writeln!(out, "  url:           {}", p.url);
    if !p.sha256.is_empty() {
        let _ = writeln!(out, "  sha256:        {}", p.sha256);
    }
    let _ = writeln!(out, "  attached to:   {}", report.selector);
    let seen = report.envoy_names_seen();
    let envoy_name = if seen.is_empty() && p.kind == deployer::plugin::spec::Kind::TrafficExtension
    {
        // Istio names a native TrafficExtension `<ns>.<name>`, with no suffix.
        p.envoy_name()
    } else if seen.is_empty() {
        // Which form depends on the Istio version; nothing in the logs says yet.
        format!(
            "{0} (Istio up to 1.30) or {0}{1} (Istio 1.31+, via TrafficExtension)",
            p.envoy_name(),
            TRANSLATED_SUFFIX
        )
    } else {
        seen.join(", ")
    };
    let _ = writeln!(
        out,
        "  envoy name:    {envoy_name}  (root_id {:?}, phase {}, priority {}, {}, {})",
        p.plugin_name, p.phase, p.priority, p.fail_strategy, p.plugin_type
    );
    let image = &report.image;
    let _ = writeln!(out, "Image {}", image.url);
    let _ = writeln!(out, "  reachable:        {}", yes_no(image.reachable));
    let _ = writeln!(
        out,
        "  Istio-compatible: {}{}",
        yes_no(image.istio_compatible),
        image
            .layout
            .as_ref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default()
    );
    if let Some(digest) = &image.digest {
        let pin = match (image.matches_pin, &image.pinned) {
            (Some(true), _) => "matches the pinned sha256".to_string(),
            (Some(false), Some(pinned)) => format!("CHECKSUM MISMATCH: pinned {pinned}"),
            _ => "not pinned: sidecars take whatever the tag points to".to_string(),
        };
        let _ = writeln!(out, "  digest:           {digest} ({pin})");
    }
    if let Some(error) = &image.error {
        let _ = writeln!(out, "  error:            {error}");
    }
    let _ = writeln!(
        out,
        "Pods: {} selected, {} not selected",
        report.pods.len(),
        report.pods_not_selected
    );
    let summarised = report.pods.len() > limit;
    let mut shown: Vec<&PodCheck> = report.pods.iter().collect();
    if summarised {
        let mut counts: BTreeMap<PodState, usize> = BTreeMap::new();
        for pod in &report.pods {
            *counts.entry(pod.state).or_default() += 1;
        }
        let counts: Vec<String> = counts
            .iter()
            .map(|(state, n)| format!("{n} {}", state.describe()))
            .collect();
        let _ = writeln!(out, "  by state: {}", counts.join(", "));
        // Problem pods first (the state order), then by name as listed.
        shown.sort_by_key(|pod| pod.state);
        shown.truncate(limit);
    }
    for pod in shown {
        let _ = writeln!(
            out,
            "  {}  {}  {PROXY_CONTAINER}: {}  wasm:info: {}",
            pod.pod.name,
            pod.pod.phase,
            if pod.pod.has_proxy { "yes" } else { "NO" },
            if pod.wasm_info_logged { "yes" } else { "no" }
        );
        match (&pod.envoy, &pod.envoy_error) {
            (Some(running), _) => {
                let _ = writeln!(out, "    envoy: {}", envoy_text(running));
            }
            (None, Some(error)) => {
                let _ = writeln!(out, "    envoy: admin not read ({error})");
            }
            (None, None) => {}
        }
        match (&pod.latest, &pod.log_error) {
            (Some(latest), _) => {
                let when = if latest.stale {
                    " (before the plugin's last change)"
                } else {
                    ""
                };
                let _ = writeln!(out, "    latest{when}: {}", latest.line.replace('\t', " "));
            }
            (None, Some(error)) => {
                let _ = writeln!(out, "    log: {error}");
            }
            (None, None) if pod.state == PodState::NotRead => {
                let _ = writeln!(
                    out,
                    "    log: not read (outside the sample; --sample 0 reads all)"
                );
            }
            (None, None) if pod.pod.has_proxy => {
                let _ = writeln!(
                    out,
                    "    latest: (no line about this plugin since its last change)"
                );
            }
            _ => {}
        }
    }
    if summarised {
        let _ = writeln!(
            out,
            "  ... {} more pod(s) not listed (--max-pods-shown 0 lists all; -o json has every pod)",
            report.pods.len() - limit
        );
    }
    capped(&mut out, "note", &report.notes, limit);
    if report.healthy() {
        let read = report
            .pods
            .iter()
            .filter(|pod| pod.state != PodState::NotRead)
            .count();
        let _ = if read < report.pods.len() {
            writeln!(
                out,
                "OK: the plugin is applied, its image is good, and every pod read runs it ({read} read of {} selected)",
                report.pods.len()
            )
        } else {
            writeln!(
                out,
                "OK: the plugin is applied, its image is good, and {} pod(s) run it",
                report.pods.len()
            )
        };
    } else {
        capped(&mut out, "PROBLEM", &report.problems, limit);
    }
    out
}
