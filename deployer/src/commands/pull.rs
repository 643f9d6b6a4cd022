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
