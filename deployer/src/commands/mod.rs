//! One module per CLI verb. Each exposes an `Args` struct (clap) and `run`.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod apply;
pub mod args;
pub mod build;
pub mod completion;
pub mod delete;
pub mod history;
pub mod inspect;
pub mod list;
pub mod local;
pub mod logs;
pub mod migrate;
pub mod pull;
pub mod push;
pub mod render;
pub mod rollback;
pub mod sign;
pub mod status;
pub mod verify;

#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    about = "Take a proxy-wasm filter from source to a running Istio mesh",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a proxy-wasm crate (the bundled filter by default) to a small wasm32-wasip1 module.
    Build(build::Args),
    /// Check a module's proxy-wasm ABI exports (a file, or oci://REF).
    Inspect(inspect::Args),
    /// Package a module as an OCI image Istio can fetch and push it to a registry.
    Push(push::Args),
    /// Fetch a module from a registry with Istio's rules.
    Pull(pull::Args),
    /// Sign an image in cosign's format (a sha256-<hex>.sig image beside it).
    Sign(sign::Args),
    /// Check an image's cosign signature against a public key (exit 0 valid, 1 not, 2 could not check).
    Verify(verify::Args),
    /// Create or update an Istio WasmPlugin or TrafficExtension (server-side apply).
    Apply(apply::Args),
    /// Print the WasmPlugin (or TrafficExtension) that `apply` would send, for GitOps.
    Render(render::Args),
    /// Delete a WasmPlugin or TrafficExtension.
    Delete(delete::Args),
    /// List WasmPlugins and TrafficExtensions.
    List(list::Args),
    /// Replace a WasmPlugin with the equivalent TrafficExtension, without a gap.
    Migrate(migrate::Args),
    /// Re-apply an earlier revision of a plugin's spec.
    Rollback(rollback::Args),
    /// List the revisions of a plugin's spec that rollback can restore.
    History(history::Args),
    /// Stream what the sidecars say about a plugin.
    Logs(logs::Args),
    /// Answer "is my plugin running?" in one screen.
    Status(status::Args),
    /// Run the filter in a local Envoy through func-e (the lab).
    Local(local::Args),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completion(completion::Args),
}

/// The exit statuses, the same for every command (README: "Exit codes").
pub const EXIT_CODES: &str = "Exit codes:
  0  done; for status, inspect, build and verify: every check passed
  1  checked and found a problem (status, inspect, build, verify)
  2  usage error, or the command could not do its work or its checks (unreachable
     registry or cluster, missing object, refused write)";

/// The exit status of a command that failed (anything but a check's verdict).
pub const FAILED: u8 = 2;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
        Command::Push(args) => push::run(args).await,
        Command::Pull(args) => pull::run(args).await,
        Command::Sign(args) => sign::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Render(args) => render::run(args).await,
        Command::Delete(args) => delete::run(args).await,
        Command::List(args) => list::run(args).await,
        Command::Rollback(args) => rollback::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Logs(args) => logs::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Local(args) => local::run(args).await,
        Command::History(args) => history::run(args).await,
        Command::Completion(args) => completion::run(args).await,
    }
}
