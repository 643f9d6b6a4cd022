//! `deployer delete NAME`: remove a WasmPlugin from each selected cluster.
use std::process::ExitCode;

use deployer::cluster::DryRun;

use super::args::{DryRunArgs, DryRunMode, PluginArgs};

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Succeed when the plugin does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
}

const EXAMPLES: &str = "Examples:
  deployer delete context-logger -n demo
  deployer delete context-logger -n demo --kind te --ignore-not-found
  deployer delete context-logger --context staging --context prod --dry-run=server";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let clusters = args.plugin.cluster.connect_all().await?;
    for cluster in &clusters {
        if let Some(kind) = args.plugin.kind.explicit() {
            cluster.ensure_crd_of(kind).await?;
        }
    }
    let several = clusters.len() > 1;
    for cluster in &clusters {
        let namespace = args
            .plugin
            .cluster
            .namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace.clone());
        let note = if several {
            format!(", context {}", cluster.context)
        } else {
            String::new()
        };
        let kind = cluster
            .resolve_kind(args.plugin.kind, &namespace, &args.plugin.name)
            .await?;
        let resource = kind.singular_resource();
        let dry_run = match args.dry_run.mode {
            Some(DryRunMode::Client) => {
                // Client dry run: only check that there is something to delete.
                if cluster
                    .get_object(kind, &namespace, &args.plugin.name)
                    .await?
                    .is_none()
                    && !args.ignore_not_found
                {
                    anyhow::bail!(
                        "{} {namespace}/{} not found (context {})",
                        kind.name().to_lowercase(),
                        args.plugin.name,
                        cluster.context
                    );
                }
                println!(
                    "{resource}/{} deleted (dry run: client, namespace {namespace}{note})",
                    args.plugin.name
                );
                continue;
            }
            Some(DryRunMode::Server) => DryRun::Server,
            None => DryRun::Off,
        };
        match cluster
            .delete_object(kind, &namespace, &args.plugin.name, dry_run)
            .await
        {
            Ok(()) => {
                let dry = if dry_run == DryRun::Server {
                    "server dry run, "
                } else {
                    ""
                };
                println!(
                    "{resource}/{} deleted ({dry}namespace {namespace}{note})",
                    args.plugin.name
                );
            }
            Err(deployer::cluster::Error::NotFound { .. }) if args.ignore_not_found => {
                println!(
                    "{resource}/{} not found, nothing to delete (namespace {namespace}{note})",
                    args.plugin.name
                );
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
