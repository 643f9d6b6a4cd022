//! `deployer build`: compile a proxy-wasm crate to a small wasm32-wasip1 module and report what
//! came out (path, size, sha256, ABI version, and whether Envoy would load it).
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use deployer::build::{self, Built, Request};
use deployer::module::{self, Report};
use deployer::output::{self, Format, human_size};
use serde_json::json;

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Cargo.toml of the crate (or its directory) to build instead of the bundled filter.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package to build in that workspace (default: context-logger, else the only cdylib crate).
    #[arg(short, long, value_name = "NAME")]
    pub package: Option<String>,
    /// Output format: text, json or yaml (for scripts; cargo's output is then shown only on
    /// failure).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

const EXAMPLES: &str = "Examples:
  deployer build                                   # the bundled filter
  deployer build --manifest-path ../my-filter -p my-filter
  deployer build -o json | jq -r .module

Exit status: 0 built and loadable, 1 built but Envoy would not load it, 2 could not build.";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let request = Request {
        manifest_path: args.manifest_path,
        package: args.package,
        quiet: args.output != Format::Text || !output::interactive(),
    };
    let started = Instant::now();
    let (built, report) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Built, Report)> {
            let built = build::build(&request)?;
            let report = module::inspect_file(&built.module)?;
            Ok((built, report))
        })
        .await
        .context("build task panicked")??;
    let seconds = started.elapsed().as_secs_f64();

    output::print(args.output, &machine_view(&built, &report, seconds), || {
        render_text(&built, &report, seconds)
    })?;
    Ok(if report.loadable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn machine_view(built: &Built, report: &Report, seconds: f64) -> serde_json::Value {
    json!({
        "package": built.package,
        "module": built.module,
        "size": report.size,
        "sha256": report.sha256,
        "abi_version": report.abi_version,
        "loadable": report.loadable(),
        "problems": report.problems,
        "warnings": report.warnings,
        "toolchain": built.toolchain.name(),
        "target": built.target,
        "profile": built.profile,
        "seconds": (seconds * 10.0).round() / 10.0,
    })
}

fn render_text(built: &Built, report: &Report, seconds: f64) -> String {
    let abi = report
        .abi_version
        .as_deref()
        .map_or("none".to_string(), |version| {
            format!("proxy-wasm {version}")
        });
    let mut out = format!(
        "built {} for {} (profile {}, {} toolchain) in {seconds:.1}s\n\
         module   {}\nsize     {}\nsha256   {}\nABI      {abi}\n",
        built.package,
        built.target,
        built.profile,
        built.toolchain.name(),
        built.module.display(),
        human_size(report.size),
        report.sha256,
    );
    for warning in &report.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    if report.loadable() {
        out.push_str("loadable by Envoy: yes\n");
    } else {
        out.push_str("loadable by Envoy: no\n");
        for problem in &report.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    out
}
