//! `deployer inspect`: the Rust counterpart of `wasm-objdump -x` for proxy-wasm modules, with a
//! verdict on whether Envoy would load the module.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use deployer::module::{self, Report};
use deployer::oci::{self, ImageRef, RegistryArgs, Verdict};
use deployer::output::{self, Format, human_size};

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Module to inspect: a .wasm file, or oci://REF (fetched by Istio's rules).
    pub module: String,
    /// Output format: text, json or yaml (json and yaml are for scripts).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    /// Registry options, used with oci://REF.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

const EXAMPLES: &str = "Examples:
  deployer inspect target/wasm32-wasip1/wasm-release/context_logger.wasm
  deployer inspect oci://localhost:5000/filters/logger:v1 --plain-http
  deployer inspect logger.wasm -o json | jq .exports

Exit status: 0 loadable (and for oci://, fetchable by Istio), 1 not, 2 could not check.";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.module.starts_with("oci://") {
        return inspect_oci(&args.module, args.registry, args.output).await;
    }
    let path = Path::new(&args.module);
    let report = tokio::task::spawn_blocking({
        let path = path.to_path_buf();
        move || module::inspect_file(&path)
    })
    .await
    .context("inspect task panicked")??;
    print(&args.module, &report, args.output)?;
    Ok(if report.loadable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print(source: &str, report: &Report, format: Format) -> anyhow::Result<()> {
    output::print(format, &machine_view(source, report)?, || {
        render_text(source, report)
    })?;
    Ok(())
}

/// The report plus where it came from and the verdict, flat, for scripts.
fn machine_view(source: &str, report: &Report) -> anyhow::Result<serde_json::Value> {
    let mut value = serde_json::to_value(report)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("source".into(), source.into());
        object.insert("loadable".into(), report.loadable().into());
    }
    Ok(value)
}

/// `deployer inspect oci://REF`: fetch by Istio's rules, then the module report and the verdict
/// "Istio-compatible: yes/no (why)". Succeeds only when Istio would fetch it and Envoy load it.
async fn inspect_oci(
    reference: &str,
    registry: RegistryArgs,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let reference = ImageRef::parse(reference)?;
    let options = registry.into_options()?;
    let spinner = output::spinner(format!("fetching {reference}"));
    let fetched = oci::fetch(&reference, &options).await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let fetched = fetched?;
    let report = fetched.module.as_deref().map(deployer::module::inspect);
    let (compatible, why) = match &fetched.verdict {
        Verdict::Compatible(layout) => (true, layout.to_string()),
        Verdict::Rejected(reason) => (false, reason.clone()),
    };
    let source = format!("oci://{reference}");
    let value = serde_json::json!({
        "source": source,
        "digest": fetched.manifest_digest,
        "url": fetched.pinned_url(),
        "index": fetched.index.as_ref().map(|index| serde_json::json!({
            "digest": index.index_digest,
            "platform": index.platform,
        })),
        "istio_compatible": compatible,
        "istio_reason": why,
        "loadable": report.as_ref().map(|report| report.loadable()),
        "module": report,
    });
    output::print(format, &value, || {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "image    {source}");
        let _ = writeln!(out, "digest   {}", fetched.manifest_digest);
        if let Some(index) = &fetched.index {
            let _ = writeln!(
                out,
                "index    {} ({} entry, the one Istio's agent fetches)",
                index.index_digest, index.platform
            );
        }
        let _ = writeln!(out, "url      {}", fetched.pinned_url());
        match &report {
            Some(report) => {
                let _ = writeln!(out);
                out.push_str(&render_text(&source, report));
            }
            None => {
                let _ = writeln!(out, "\nno wasm module found in the image");
            }
        }
        let yes = if compatible { "yes" } else { "no" };
        let _ = writeln!(out, "Istio-compatible: {yes} ({why})");
        out
    })?;
    let loadable = report.as_ref().is_some_and(|report| report.loadable());
    Ok(if compatible && loadable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render_text(source: &str, report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "module   {source}");
    let _ = writeln!(out, "size     {}", human_size(report.size));
    let _ = writeln!(out, "sha256   {}", report.sha256);
    let abi = report
        .abi_version
        .as_deref()
        .map_or("none".to_string(), |version| {
            format!("proxy-wasm {version}")
        });
    let _ = writeln!(out, "ABI      {abi}");
    let wasi = if report.wasi.is_empty() {
        "no WASI imports".to_string()
    } else {
        report.wasi.join(", ")
    };
    let _ = writeln!(out, "WASI     {wasi}");

    if !report.imports.is_empty() {
        let mut modules: Vec<&str> = report
            .imports
            .iter()
            .map(|import| import.module.as_str())
            .collect();
        modules.dedup();
        modules.sort_unstable();
        modules.dedup();
        let _ = writeln!(out, "\nimports ({}):", report.imports.len());
        for module in modules {
            let names: Vec<&str> = report
                .imports
                .iter()
                .filter(|import| import.module == module)
                .map(|import| import.name.as_str())
                .collect();
            let _ = writeln!(out, "  {module}: {}", names.join(", "));
        }
    }

    if !report.exports.is_empty() {
        let _ = writeln!(out, "\nexports ({}):", report.exports.len());
        let width = report
            .exports
            .iter()
            .map(|export| export.name.len())
            .max()
            .unwrap_or(0);
        for export in &report.exports {
            let shape = export.signature.as_deref().unwrap_or(export.kind);
            let _ = writeln!(
                out,
                "  {:width$}  {:28}  {}",
                export.name, shape, export.meaning
            );
        }
    }

    if !report.warnings.is_empty() {
        let _ = writeln!(out);
        for warning in &report.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
    }

    let _ = writeln!(out);
    if report.loadable() {
        let _ = writeln!(out, "loadable by Envoy: yes");
    } else {
        let _ = writeln!(out, "loadable by Envoy: no");
        for problem in &report.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}
