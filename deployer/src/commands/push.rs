//! `deployer push [FILE.wasm] REF`: validate, package reproducibly, upload, print what the
//! WasmPlugin needs (pinned url and sha256).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use deployer::oci::{self, Format, ImageRef, Metadata, PushEvent, RegistryArgs};
use deployer::output;

#[derive(Debug, clap::Args)]
#[command(
    override_usage = "deployer push [OPTIONS] [FILE.wasm] <REF>",
    after_long_help = EXAMPLES
)]
pub struct Args {
    /// [FILE.wasm] REF: the module (default: the freshly built filter) and the image
    /// reference, e.g. localhost:5000/filters/logger:v1 (`oci://` optional).
    #[arg(value_name = "[FILE.wasm] REF", num_args = 1..=2, required = true)]
    targets: Vec<String>,
    /// Image layout: `compat` (one tar+gzip layer with plugin.wasm) or `oci` (two-layer raw
    /// variant). Istio and Envoy Gateway load both. (`-o` is the output format, as everywhere.)
    #[arg(long, value_enum, default_value_t, value_name = "LAYOUT")]
    layout: Format,
    /// org.opencontainers.image.source annotation (default: the git remote `origin`, if any).
    #[arg(long)]
    source: Option<String>,
    /// org.opencontainers.image.revision annotation (default: the git commit, if any).
    #[arg(long)]
    revision: Option<String>,
    /// Output format: text, json or yaml (json/yaml: {digest, size, url, sha256} for scripts).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: output::Format,
    /// Sign the pushed image in cosign's format with this private key (as `deployer sign`);
    /// the key and its password are checked before anything is uploaded.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

const EXAMPLES: &str = "Examples:
  deployer push logger.wasm localhost:5000/filters/logger:v1 --plain-http
  deployer push localhost:5000/filters/logger:v1 --plain-http    # builds the filter first
  deployer push logger.wasm ghcr.io/acme/logger:v1 --layout oci --sign-key cosign.key -o json";

#[derive(serde::Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    outcome: &'a oci::PushOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<deployer::sign::Signed>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (file, reference) = match args.targets.as_slice() {
        [reference] => (None, reference),
        [file, reference] => (Some(PathBuf::from(file)), reference),
        _ => unreachable!("clap allows one or two values"),
    };
    // Everything that can be refused offline is refused before the first request.
    let reference = ImageRef::parse(reference)?;
    let file = match file {
        Some(file) => file,
        None => default_module().await?,
    };
    // By its size first: a module over Istio's limit is refused without reading it whole.
    let size = std::fs::metadata(&file)
        .with_context(|| format!("cannot read module {}", file.display()))?
        .len();
    oci::istio::check_module_size(size)
        .with_context(|| format!("refusing to push {}", file.display()))?;
    let module =
        std::fs::read(&file).with_context(|| format!("cannot read module {}", file.display()))?;
    let report = deployer::module::inspect(&module);
    if !report.loadable() {
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "refusing to push {}: Envoy would not load it:\n  - {}\n(run `deployer inspect {}` for the full report)",
            file.display(),
            problems.join("\n  - "),
            file.display()
        );
    }
    let sign_key = args
        .sign_key
        .as_deref()
        .map(|path| deployer::sign::PrivateKey::load(path, deployer::sign::Password::EnvOrPrompt))
        .transpose()?;
    let options = args.registry.into_options()?;
    let metadata = Metadata {
        source: args
            .source
            .or_else(|| git(&file, &["remote", "get-url", "origin"])),
        revision: args.revision.or_else(|| git(&file, &["rev-parse", "HEAD"])),
        title: None,
        created: None,
    }
    .with_source_date_epoch()?;
    let image = oci::image::package(&module, args.layout, &metadata)?;

    let bar = output::interactive().then(|| {
        let bar = indicatif::ProgressBar::new(image.total_bytes());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message("pushing");
        bar
    });
    let progress = |event: PushEvent| {
        let Some(bar) = &bar else { return };
        match event {
            PushEvent::Started { .. } => {}
            PushEvent::BlobSkipped { size, .. } | PushEvent::BlobUploaded { size, .. } => {
                bar.inc(size)
            }
            PushEvent::ManifestUploaded { size, .. } => bar.inc(size),
        }
    };
    let result = oci::push(&image, &reference, &options, &progress).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcome = result.with_context(|| {
        format!(
            "push of {} to {reference} failed (the tag was not changed)",
            file.display()
        )
    })?;

    let signature = match &sign_key {
        Some(key) => Some(
            deployer::sign::sign(&reference, Some(&outcome.digest), key, &options)
                .await
                .with_context(|| {
                    format!(
                        "pushed {} but could not sign it (retry with `deployer sign {}`)",
                        outcome.url, outcome.url
                    )
                })?,
        ),
        None => None,
    };
    let report = Report {
        outcome: &outcome,
        signature,
    };
    output::print(args.output, &report, || {
        use std::fmt::Write;
        let layout = match args.layout {
            Format::Compat => "compat image",
            Format::Oci => "oci two-layer image",
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "pushed {} to {reference} ({layout}; {} blob(s) uploaded, {} already there, {} bytes)",
            file.display(),
            outcome.uploaded_blobs,
            outcome.skipped_blobs,
            outcome.uploaded_bytes
        );
        let _ = writeln!(out, "digest: {}", outcome.digest);
        let _ = writeln!(out, "url:    {}", outcome.url);
        let _ = writeln!(
            out,
            "sha256: {}  (WasmPlugin spec.sha256: for oci:// urls Istio checks the manifest digest)",
            outcome.sha256
        );
        if let Some(signed) = &report.signature {
            let _ = writeln!(
                out,
                "signed: {} (key {})",
                signed.signature_ref, signed.key_fingerprint
            );
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

/// No FILE: build the crate around the current directory (the bundled filter by default)
/// exactly as `deployer build` does, and push what it produced.
async fn default_module() -> anyhow::Result<PathBuf> {
    eprintln!("no FILE.wasm given: building the filter first (as `deployer build`)");
    let request = deployer::build::Request {
        quiet: true,
        ..Default::default()
    };
    let built = tokio::task::spawn_blocking(move || deployer::build::build(&request))
        .await
        .context("build task panicked")?
        .context("cannot build the default module: pass FILE.wasm, or fix the build")?;
    Ok(built.module)
}

/// A git fact about the module's directory, if it is in a repository.
fn git(file: &Path, args: &[&str]) -> Option<String> {
    let dir = file
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let value = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !value.is_empty()).then_some(value)
}
