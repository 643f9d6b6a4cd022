//! `deployer render`: print the WasmPlugin `apply` would send (same flags, same pinning), for
//! GitOps, or with --helm-values the values file for charts/wasm-plugin.
use std::process::ExitCode;

use deployer::oci::RegistryArgs;
use deployer::output::{ObjectFormat, print_value};
use deployer::plugin::flags::SpecFlags;

use super::args::{VerifyArgs, check, pin, verify_pinned};

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// WasmPlugin name (default: metadata.name from -f).
    pub name: Option<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Namespace written to metadata (default: none, so GitOps tools set it).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Print a values file for the charts/wasm-plugin Helm chart instead of the resource.
    #[arg(long)]
    pub helm_values: bool,
    /// Output format: yaml or json.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: ObjectFormat,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

const EXAMPLES: &str = "Examples:
  deployer render context-logger --image ghcr.io/acme/logger:v1 --selector app=web > plugin.yaml
  deployer render -f wasmplugin.yaml -n demo -o json
  deployer render context-logger --image ghcr.io/acme/logger:v1 --helm-values > values.yaml";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut draft = args
        .spec
        .draft(args.name.as_deref(), args.namespace.as_deref())?;
    let registry = args.registry.into_options()?;
    let namespace = draft.namespace.clone();
    // Checked as if in "default" when no namespace is given; the spec rules do not depend on it.
    // Checked before pinning so bad input never reaches the registry, and after it for the url.
    let validate = |draft: &deployer::plugin::flags::Draft| {
        check(
            draft,
            namespace.as_deref().unwrap_or("default"),
            args.spec.skip_client_validation,
        )
    };
    validate(&draft)?;
    let verify_key = args.verify.load()?;
    pin(&mut draft, args.spec.no_pin, &registry).await?;
    if let Some(key) = &verify_key {
        verify_pinned(&mut draft, key, &registry).await?;
    }
    validate(&draft)?;
    let value = if args.helm_values {
        deployer::plugin::helm::values(&draft.name, &draft.labels, &draft.spec, draft.kind())?
    } else {
        let mut manifest = draft.manifest(namespace.as_deref().unwrap_or_default());
        manifest.metadata.namespace = namespace;
        serde_json::to_value(&manifest)?
    };
    print_value(&value, args.output)?;
    Ok(ExitCode::SUCCESS)
}
