//! `deployer pull REF -o FILE.wasm`: fetch a module by Istio's rules and write it atomically.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use deployer::oci::{self, ImageRef, RegistryArgs, Verdict};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference, e.g. localhost:5000/filters/logger:v1 or oci://...@sha256:...
    #[arg(value_name = "REF")]
    reference: String,
    /// Where to write the module.
    #[arg(short = 'o', long = "output", value_name = "FILE.wasm")]
    output: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
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
    write_atomically(&args.output, &module)?;
    let layout = match &fetched.verdict {
        Verdict::Compatible(layout) => layout.to_string(),
        Verdict::Rejected(reason) => reason.clone(),
    };
    println!(
        "pulled {reference} -> {} ({} bytes; {layout})",
        args.output.display(),
        module.len()
    );
    println!("digest: {}", fetched.manifest_digest);
    if let Some(index) = &fetched.index {
        println!(
            "index:  {} ({} entry taken, as Istio takes it)",
            index.index_digest, index.platform
        );
    }
    println!("url:    {}", fetched.pinned_url());
    let report = deployer::module::inspect(&module);
    if !report.loadable() {
        eprintln!(
            "warning: Istio would fetch this module, but Envoy would not load it (run `deployer inspect {}`)",
            args.output.display()
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

/// `deployer inspect oci://REF`: fetch by Istio's rules, then the module report and the verdict
/// "Istio-compatible: yes/no (why)". Succeeds only when Istio would fetch it and Envoy load it.
pub async fn inspect_oci(
    reference: &str,
    registry: RegistryArgs,
    format: deployer::output::Format,
) -> anyhow::Result<ExitCode> {
    use deployer::output::Format;
    let reference = ImageRef::parse(reference)?;
    let options = registry.into_options()?;
    let spinner = deployer::output::spinner(format!("fetching {reference}"));
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
    match format {
        Format::Text => {
            println!("image    {source}");
            println!("digest   {}", fetched.manifest_digest);
            if let Some(index) = &fetched.index {
                println!(
                    "index    {} ({} entry, the one Istio's agent fetches)",
                    index.index_digest, index.platform
                );
            }
            println!("url      {}", fetched.pinned_url());
            match &report {
                Some(report) => {
                    println!();
                    super::inspect::print(&source, report, Format::Text)?;
                }
                None => println!("\nno wasm module found in the image"),
            }
            println!(
                "Istio-compatible: {} ({why})",
                if compatible { "yes" } else { "no" }
            );
        }
        Format::Json | Format::Yaml => {
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
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&value)?),
                _ => print!("{}", serde_yaml::to_string(&value)?),
            }
        }
    }
    let loadable = report.as_ref().is_some_and(|report| report.loadable());
    Ok(if compatible && loadable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
