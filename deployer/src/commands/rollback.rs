//! `deployer rollback NAME [REVISION]`: re-apply a spec from the revision history that `apply`
//! keeps on the resource (the previous one by default; `deployer history NAME` lists them).
use std::process::ExitCode;

use deployer::cluster::DryRun;
use deployer::cluster::wasmplugin::history_of;
use deployer::plugin::spec::WasmPluginManifest;

use deployer::oci::RegistryArgs;
use deployer::output::{ObjectFormat, print_objects};

use super::args::{
    DryRunArgs, DryRunMode, PluginArgs, VERIFIED_KEY_ANNOTATION, VerifyArgs, verify_url,
};

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Revision to restore (`deployer history NAME` lists them); default: the one before the
    /// current.
    #[arg(value_name = "REVISION")]
    pub revision: Option<u64>,
    /// The revision as a flag, as earlier releases took it.
    #[arg(
        long,
        value_name = "REVISION",
        hide = true,
        conflicts_with = "revision"
    )]
    pub to: Option<u64>,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Print the restored object(s) as yaml or json instead of one line per cluster.
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

const EXAMPLES: &str = "Examples:
  deployer rollback context-logger -n demo             # to the revision before the current
  deployer history context-logger -n demo              # list the revisions
  deployer rollback context-logger 2 -n demo           # to revision 2
  deployer rollback context-logger 2 -n demo --dry-run -o yaml";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let verify_key = args.verify.load()?;
    let registry = args.registry.clone().into_options()?;
    let clusters = args.plugin.cluster.connect_all().await?;
    // Every cluster's target revision is found before the first write.
    let mut plans = Vec::new();
    for cluster in &clusters {
        let namespace = args.plugin.cluster.namespace_in(cluster);
        let (kind, live) = args.plugin.live(cluster, ": nothing to roll back").await?;
        let history = history_of(&live)?;
        let target = history
            .target(&args.plugin.name, args.revision.or(args.to))?
            .clone();
        let mut manifest =
            WasmPluginManifest::of_kind(kind, &args.plugin.name, &namespace, target.spec.clone());
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
    let note = |cluster: &deployer::cluster::Cluster| {
        if clusters.len() > 1 {
            format!(", context {}", cluster.context)
        } else {
            String::new()
        }
    };
    if args.dry_run.mode == Some(DryRunMode::Client) {
        // Nothing is sent: the objects are what a rollback would apply.
        for (cluster, manifest, from) in &plans {
            if args.output.is_none() {
                println!(
                    "{}/{} would roll back to revision {from} (dry run: client, nothing sent; url {}{})",
                    manifest.kind.singular_resource(),
                    args.plugin.name,
                    manifest.spec.url,
                    note(cluster)
                );
            }
        }
        if let Some(format) = args.output {
            let manifests: Vec<&WasmPluginManifest> = plans.iter().map(|(_, m, _)| m).collect();
            print_objects(&manifests, format)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dry_run = args.dry_run.server();
    let mut objects = Vec::new();
    for (cluster, manifest, from) in plans {
        let applied = cluster
            .apply_plugin(&manifest, args.force_conflicts, dry_run)
            .await?;
        if args.output.is_none() {
            let revision = applied
                .revision
                .filter(|_| dry_run == DryRun::Off)
                .map(|r| format!(" as revision {r}"))
                .unwrap_or_default();
            let dry = if dry_run == DryRun::Server {
                "server dry run, "
            } else {
                ""
            };
            println!(
                "{}/{} rolled back to revision {from}{revision} ({dry}{}, url {}{})",
                manifest.kind.singular_resource(),
                args.plugin.name,
                applied.outcome,
                manifest.spec.url,
                note(cluster)
            );
        }
        objects.push(applied.object);
    }
    if let Some(format) = args.output {
        print_objects(&objects, format)?;
    }
    Ok(ExitCode::SUCCESS)
}
