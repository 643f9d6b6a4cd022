//! `deployer sign REF --key cosign.key`: sign the image Istio would pull for REF in cosign's
//! format (a `sha256-<hex>.sig` image in the same repository).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use deployer::oci::{ImageRef, RegistryArgs};
use deployer::output;
use deployer::sign::{self, Password, PrivateKey};

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Image reference (tag or digest; `oci://` optional). An index is signed at its
    /// linux/amd64 entry, the manifest Istio pulls.
    #[arg(value_name = "REF")]
    reference: String,
    /// Private key: cosign's encrypted key (password from COSIGN_PASSWORD, else asked on the
    /// terminal), or a PEM PKCS#8/SEC1 ECDSA P-256 key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Output format: text, json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: output::Format,
    #[command(flatten)]
    registry: RegistryArgs,
}

const EXAMPLES: &str = "Examples:
  COSIGN_PASSWORD=... deployer sign localhost:5000/filters/logger:v1 --key cosign.key --plain-http
  deployer sign ghcr.io/acme/logger@sha256:<hex> --key ec-p256.pem -o json";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = ImageRef::parse(&args.reference)?;
    // The key is read (and its password checked) before any request.
    let key = PrivateKey::load(&args.key, Password::EnvOrPrompt)?;
    let options = args.registry.into_options()?;
    let signed = sign::sign(&reference, None, &key, &options)
        .await
        .with_context(|| format!("cannot sign {reference}"))?;
    print(&signed, args.output)?;
    Ok(ExitCode::SUCCESS)
}

pub fn print(signed: &sign::Signed, format: output::Format) -> anyhow::Result<()> {
    output::print(format, signed, || {
        let what = if signed.already_signed {
            "already signed by this key"
        } else {
            "signed"
        };
        format!(
            "{what}: {}\nsignature: {} ({})\nkey:       {}\n",
            signed.digest, signed.signature_ref, signed.signature_digest, signed.key_fingerprint
        )
    })?;
    Ok(())
}
