//! `deployer verify REF --key cosign.pub`: exit 0 when the image Istio would pull for REF
//! carries a cosign signature by the key, 1 with the reason when it does not (unsigned, or no
//! signature valid under the key), 2 when that could not be checked (registry, key file).
use std::path::PathBuf;
use std::process::ExitCode;

use deployer::oci::{ImageRef, RegistryArgs};
use deployer::output;
use deployer::sign::{self, PublicKey};

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Image reference (tag or digest; `oci://` optional).
    #[arg(value_name = "REF")]
    reference: String,
    /// Public key (PEM), e.g. the cosign.pub of `cosign generate-key-pair`.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Output format: text, json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: output::Format,
    #[command(flatten)]
    registry: RegistryArgs,
}

const EXAMPLES: &str = "Examples:
  deployer verify localhost:5000/filters/logger:v1 --key cosign.pub --plain-http
  deployer verify ghcr.io/acme/logger@sha256:<hex> --key cosign.pub -o json

Exit status: 0 validly signed, 1 not signed or no valid signature under the key, 2 could not
check (unreachable registry, unreadable key).";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = ImageRef::parse(&args.reference)?;
    let key = PublicKey::load(&args.key)?;
    let options = args.registry.into_options()?;
    let verified = match sign::verify(&reference, &key, &options).await {
        Ok(verified) => verified,
        // The check ran and the answer is no: a verdict, not a failure to check.
        Err(err @ (sign::Error::Unsigned { .. } | sign::Error::Invalid { .. })) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err.into()),
    };
    output::print(args.output, &verified, || {
        format!(
            "verified: {} ({})\nsignature: {}\nkey:       {}\n",
            reference.name(),
            verified.digest,
            verified.signature_ref,
            verified.key_fingerprint
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
