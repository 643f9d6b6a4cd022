//! `deployer status NAME`: one screen that answers "is my plugin running?"; exit 0 only when
//! every check passes.
use std::path::PathBuf;
use std::process::ExitCode;

use deployer::cluster::{Cluster, ConnectOptions};
use deployer::mesh::PROXY_CONTAINER;
use deployer::mesh::logline::TRANSLATED_SUFFIX;
use deployer::mesh::status::{self, Report};
use deployer::oci::RegistryArgs;
use deployer::output::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The WasmPlugin's name.
    pub name: String,
    /// Namespace of the WasmPlugin (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Format,
    /// wasmplugin (wp), trafficextension (te), or auto: the WasmPlugin of that name if there
    /// is one, else the TrafficExtension.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub kind: deployer::plugin::spec::KindChoice,
    /// How to reach the registry to check the image.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.registry.into_options()?;
    let cluster = Cluster::connect(&ConnectOptions {
        kubeconfig: args.kubeconfig,
        context: args.context,
    })
    .await?;
    let namespace = args
        .namespace
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let plugin = deployer::mesh::plugin::find(&cluster, args.kind, &namespace, &args.name).await?;
    let report = status::report(&cluster, plugin, &options).await;
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(&report)?),
        Format::Text => print!("{}", text(&report)),
    }
    Ok(if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not checked",
    }
}

fn text(report: &Report) -> String {
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
    for pod in &report.pods {
        let _ = writeln!(
            out,
            "  {}  {}  {PROXY_CONTAINER}: {}  wasm:info: {}",
            pod.pod.name,
            pod.pod.phase,
            if pod.pod.has_proxy { "yes" } else { "NO" },
            if pod.wasm_info_logged { "yes" } else { "no" }
        );
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
            (None, None) if pod.pod.has_proxy => {
                let _ = writeln!(out, "    latest: (no line about this plugin yet)");
            }
            _ => {}
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if report.healthy() {
        let _ = writeln!(
            out,
            "OK: the plugin is applied, its image is good, and {} pod(s) run it",
            report.pods.len()
        );
    } else {
        for problem in &report.problems {
            let _ = writeln!(out, "PROBLEM: {problem}");
        }
    }
    out
}
