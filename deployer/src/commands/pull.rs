//! `deployer pull REF -O FILE.wasm`: fetch a module by Istio's rules and write it atomically.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use deployer::oci::{self, ImageRef, RegistryArgs, Verdict};
use deployer::output::{self, Format};

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Image reference, e.g. localhost:5000/filters/logger:v1 or oci://...@sha256:...
    #[arg(value_name = "REF")]
    reference: String,
    /// Where to write the module (`-o` is the output format, as in every command).
    #[arg(short = 'O', long, value_name = "FILE.wasm")]
    output_file: PathBuf,
    /// Output format: text, json or yaml (json/yaml: {file, size, digest, url, index} for scripts).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    registry: RegistryArgs,
}

const EXAMPLES: &str = "Examples:
  deployer pull localhost:5000/filters/logger:v1 -O logger.wasm --plain-http
  deployer pull oci://ghcr.io/acme/logger@sha256:<hex> -O logger.wasm -o json";

#[derive(serde::Serialize)]
struct Report<'a> {
    file: &'a std::path::Path,
    size: usize,
    digest: &'a str,
    url: String,
    /// Istio's verdict on the image layout.
    layout: String,
    /// The index the digest was taken from, when the reference named one.
    index: Option<serde_json::Value>,
    /// Whether Envoy would load the module (`deployer inspect FILE` says why not).
    loadable: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = ImageRef::parse(&args.reference)?;
    let options = args.registry.into_options()?;
    let spinner = deployer::output::spinner(format!("pulling {reference}"));
    let pulled = oci::pull(&reference, &options).await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let (module, fetched) = pulled?;
    write_atomically(&args.output_file, &module)?;
    let layout = match &fetched.verdict {
        Verdict::Compatible(layout) => layout.to_string(),
        Verdict::Rejected(reason) => reason.clone(),
    };
    let loadable = deployer::module::inspect(&module).loadable();
    let report = Report {
        file: &args.output_file,
        size: module.len(),
        digest: &fetched.manifest_digest,
        url: fetched.pinned_url(),
        layout,
        index: fetched.index.as_ref().map(
            |index| serde_json::json!({ "digest": index.index_digest, "platform": index.platform }),
        ),
        loadable,
    };
    output::print(args.output, &report, || {
        use std::fmt::Write;
        let mut out = format!(
            "pulled {reference} -> {} ({} bytes; {})\ndigest: {}\n",
            report.file.display(),
            report.size,
            report.layout,
            report.digest
        );
        if let Some(index) = &fetched.index {
            let _ = writeln!(
                out,
                "index:  {} ({} entry taken, as Istio takes it)",
                index.index_digest, index.platform
            );
        }
        let _ = writeln!(out, "url:    {}", report.url);
        out
    })?;
    if !loadable {
        eprintln!(
            "warning: Istio would fetch this module, but Envoy would not load it (run `deployer inspect {}`)",
            args.output_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Never leaves a half-written module behind: write beside the target, then rename.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    temp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
