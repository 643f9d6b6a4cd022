//! `deployer inspect`: the Rust counterpart of `wasm-objdump -x` for proxy-wasm modules, with a
//! verdict on whether Envoy would load the module.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use deployer::module::{self, Report};
use deployer::output::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Module to inspect: a .wasm file, or oci://REF (fetched by Istio's rules).
    pub module: String,
    /// Output format; json and yaml are for scripts.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    /// Registry options, used with oci://REF.
    #[command(flatten)]
    pub registry: deployer::oci::RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Seam for registry images: the OCI branch plugs in here and yields a Report the same way.
    if args.module.starts_with("oci://") {
        return super::pull::inspect_oci(&args.module, args.registry, args.output).await;
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

pub fn print(source: &str, report: &Report, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Text => print!("{}", render_text(source, report)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&machine_view(source, report)?)?
        ),
        Format::Yaml => print!("{}", serde_yaml::to_string(&machine_view(source, report)?)?),
    }
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

pub fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({:.1} KiB)", bytes as f64 / 1024.0)
    }
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
