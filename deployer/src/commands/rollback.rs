//! `deployer rollback NAME [--to REVISION]`: re-apply a spec from the revision history that
//! `apply` keeps on the resource (the previous one by default).
use std::process::ExitCode;

use deployer::cluster::DryRun;
use deployer::cluster::wasmplugin::history_of;
use deployer::plugin::spec::{KindChoice, WasmPluginManifest};

use deployer::oci::RegistryArgs;
use deployer::output::{ObjectFormat, print_objects};

use super::args::{ClusterArgs, VERIFIED_KEY_ANNOTATION, VerifyArgs, verify_url};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// WasmPlugin name.
    pub name: String,
    /// Revision to restore (see --history); default: the one before the current.
    #[arg(long, value_name = "REVISION")]
    pub to: Option<u64>,
    /// Print the recorded revisions instead of rolling back.
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// wasmplugin (wp), trafficextension (te), or auto: the WasmPlugin of that name if there
    /// is one, else the TrafficExtension.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub kind: KindChoice,
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
    /// As for apply: refuse, before any write, unless the revision's image is validly signed
    /// by this key. Without it the rolled-back object carries no verified-key annotation, since
    /// nothing vouched for its image this time.
    #[command(flatten)]
    pub verify: VerifyArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let verify_key = args.verify.load()?;
    let registry = args.registry.clone().into_options()?;
    let clusters = args.cluster.connect_all().await?;
    // Every cluster's target revision is found before the first write.
    let mut plans = Vec::new();
    for cluster in &clusters {
        let namespace = args
            .cluster
            .namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace.clone());
        let kind = cluster
            .resolve_kind(args.kind, &namespace, &args.name)
            .await?;
        cluster.ensure_crd_of(kind).await?;
        let live = cluster
            .get_object(kind, &namespace, &args.name)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} {namespace}/{} not found (context {}): nothing to roll back",
                    kind.name().to_lowercase(),
                    args.name,
                    cluster.context
                )
            })?;
        let history = history_of(&live)?;
        if args.history {
            for revision in &history.revisions {
                let current = if Some(revision) == history.latest() {
                    "  (current)"
                } else {
                    ""
                };
                println!(
                    "{:>4}  {}  {}{current}",
                    revision.revision, revision.applied_at, revision.spec.url
                );
            }
            continue;
        }
        let target = history.target(&args.name, args.to)?.clone();
        let mut manifest =
            WasmPluginManifest::of_kind(kind, &args.name, &namespace, target.spec.clone());
        if let Some(labels) = &live.metadata.labels {
            manifest.metadata.labels = labels.clone().into_iter().collect();
        }
        if let Some(key) = &verify_key {
            verify_url(&manifest.spec.url, key, &registry).await?;
            manifest
                .metadata
                .annotations
                .insert(VERIFIED_KEY_ANNOTATION.to_string(), key.fingerprint.clone());
        }
        plans.push((cluster, manifest, target.revision));
    }
    let mut objects = Vec::new();
    for (cluster, manifest, from) in plans {
        let applied = cluster
            .apply_plugin(&manifest, args.force_conflicts, DryRun::Off)
            .await?;
        if args.output.is_none() {
            let note = if clusters.len() > 1 {
                format!(", context {}", cluster.context)
            } else {
                String::new()
            };
            let revision = applied
                .revision
                .map(|r| format!(" as revision {r}"))
                .unwrap_or_default();
            println!(
                "{}/{} rolled back to revision {from}{revision} ({}, url {}{note})",
                manifest.kind.singular_resource(),
                args.name,
                applied.outcome,
                manifest.spec.url
            );
        }
        objects.push(applied.object);
    }
    if let Some(format) = args.output {
        print_objects(&objects, format)?;
    }
    Ok(ExitCode::SUCCESS)
}
