//! `deployer verify REF --key cosign.pub`: exit 0 when the image Istio would pull for REF
//! carries a cosign signature by the key, 1 with the reason otherwise.
use std::path::PathBuf;
use std::process::ExitCode;

use deployer::oci::{ImageRef, RegistryArgs};
use deployer::output;
use deployer::sign::{self, PublicKey};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference (tag or digest; `oci://` optional).
    #[arg(value_name = "REF")]
    reference: String,
    /// Public key (PEM), e.g. the cosign.pub of `cosign generate-key-pair`.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: output::Format,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = ImageRef::parse(&args.reference)?;
    let key = PublicKey::load(&args.key)?;
    let options = args.registry.into_options()?;
    let verified = sign::verify(&reference, &key, &options).await?;
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
