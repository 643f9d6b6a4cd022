//! `deployer apply`: build a WasmPlugin or TrafficExtension from flags (or -f), pin its image to
//! a digest, check it,
//! and server-side apply it to one or more clusters. Everything that can fail without a write
//! (flags, validation, digest, credentials, the CRD, the API server's dry run when more than
//! one write follows) is done for every context before the first write.
use std::process::ExitCode;

use deployer::cluster::pull_secret::{self, RegistryCredential};
use deployer::cluster::{Applied, Cluster, DryRun};
use deployer::oci::{self, Credentials, RegistryArgs};
use deployer::output::{ObjectFormat, print_objects, print_value};
use deployer::plugin::flags::{Draft, SpecFlags};
use deployer::plugin::image::ImageSource;
use deployer::plugin::spec::WasmPluginManifest;
use kube::api::DynamicObject;

use super::args::{ClusterArgs, DryRunArgs, DryRunMode, VerifyArgs, check, pin, verify_pinned};

#[derive(Debug, clap::Args)]
#[command(mut_arg("namespace", |arg| arg.help(NAMESPACE_HELP)), after_long_help = EXAMPLES)]
pub struct Args {
    /// WasmPlugin / TrafficExtension name (default: metadata.name from -f).
    pub name: Option<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Take over fields another field manager owns (server-side apply conflicts).
    #[arg(long)]
    pub force_conflicts: bool,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
    /// Create/update a kubernetes.io/dockerconfigjson Secret in the plugin's namespace with only
    /// this image's registry credentials (from the docker config) and reference it.
    #[arg(long)]
    pub pull_secret_from_docker_config: bool,
    /// Print the applied object(s) as yaml or json instead of one line per cluster.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// -f can name the namespace too.
const NAMESPACE_HELP: &str =
    "Namespace of the plugin (default: -f's metadata.namespace, else the context's namespace)";

const EXAMPLES: &str = "Examples:
  deployer apply context-logger -n demo --image localhost:5000/filters/logger:v1 --selector app=web
  deployer apply -f wasmplugin.yaml --context staging --context prod
  deployer apply context-logger -n demo --image ghcr.io/acme/logger:v1 --dry-run=server -o yaml
  deployer apply context-logger -n demo --image ghcr.io/acme/logger:v1 --verify-key cosign.pub";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut draft = args
        .spec
        .draft(args.name.as_deref(), args.cluster.namespace.as_deref())?;
    let registry = args.registry.clone().into_options()?;
    // Bad input is refused before the registry is asked for a digest; the spec rules do not
    // depend on the namespace, which may only be known once a cluster is connected.
    check(
        &draft,
        draft.namespace.as_deref().unwrap_or("default"),
        args.spec.skip_client_validation,
    )?;
    let verify_key = args.verify.load()?;
    pin(&mut draft, args.spec.no_pin, &registry).await?;
    if let Some(key) = &verify_key {
        verify_pinned(&mut draft, key, &registry).await?;
    }
    let credential = if args.pull_secret_from_docker_config {
        Some(docker_config_credential(&draft)?)
    } else {
        None
    };
    if credential.is_some() && draft.spec.image_pull_secret.is_none() {
        draft.spec.image_pull_secret = Some(format!("{}-pull", draft.name));
    }

    if args.dry_run.mode == Some(DryRunMode::Client) {
        // Nothing is sent; the namespace falls back to the context's when a kubeconfig exists.
        let clusters = args.cluster.connect_all().await.unwrap_or_default();
        let namespace = draft
            .namespace
            .clone()
            .or_else(|| clusters.first().map(|c| c.default_namespace.clone()))
            .unwrap_or_else(|| "default".into());
        check(&draft, &namespace, args.spec.skip_client_validation)?;
        let manifest = draft.manifest(&namespace);
        match args.output {
            Some(format) => print_value(&serde_json::to_value(&manifest)?, format)?,
            None => println!(
                "{}/{} checked (dry run: client, nothing sent)",
                manifest.kind.singular_resource(),
                draft.name
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }

    let clusters = args.cluster.connect_all().await?;
    let mut plans: Vec<(Cluster, WasmPluginManifest)> = Vec::new();
    for cluster in clusters {
        let namespace = draft
            .namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace.clone());
        let mut draft = draft.clone();
        if draft.kind.is_none() {
            // auto: the kind of the object already there (WasmPlugin when both or none are).
            draft.kind = Some(
                cluster
                    .resolve_kind(args.spec.kind, &namespace, &draft.name)
                    .await?,
            );
        }
        check(&draft, &namespace, args.spec.skip_client_validation)?;
        plans.push((cluster, draft.manifest(&namespace)));
    }
    let dry_run = args.dry_run.server();
    let writes = plans.len() * if credential.is_some() { 2 } else { 1 };
    for (cluster, manifest) in &plans {
        cluster.ensure_crd_of(manifest.kind).await?;
        if writes > 1 && dry_run == DryRun::Off {
            // The API server's own validation, RBAC and conflict checks for every write, so a
            // rejection in the last one does not leave the first ones changed.
            if let Some(secret) = pull_secret_for(&credential, cluster, manifest) {
                cluster
                    .apply_pull_secret(&secret, args.force_conflicts, DryRun::Server)
                    .await?;
            }
            cluster
                .apply_plugin(manifest, args.force_conflicts, DryRun::Server)
                .await?;
        }
    }

    let mut results: Vec<(String, Applied)> = Vec::new();
    let mut failures = 0;
    for (cluster, manifest) in &plans {
        let outcome = async {
            let Some(secret) = pull_secret_for(&credential, cluster, manifest) else {
                return cluster
                    .apply_plugin(manifest, args.force_conflicts, dry_run)
                    .await;
            };
            let secret_name = secret.metadata.name.clone().unwrap_or_default();
            let namespace = secret.metadata.namespace.clone().unwrap_or_default();
            // Until the plugin has moved to the new image, the Secret keeps the registries it
            // already had: a failed plugin write then leaves the old plugin able to pull.
            let existing = cluster.get_pull_secret(&namespace, &secret_name).await?;
            let first = pull_secret::transitional(existing.as_ref(), &secret);
            cluster
                .apply_pull_secret(&first, args.force_conflicts, dry_run)
                .await?;
            if args.output.is_none() {
                println!(
                    "secret/{secret_name} applied ({SECRET_NOTE}{})",
                    context_note(&plans, cluster)
                );
            }
            let applied = cluster
                .apply_plugin(manifest, args.force_conflicts, dry_run)
                .await?;
            if first != secret {
                // The plugin has moved; a failure here leaves an extra registry entry, which
                // pulls nothing, so the apply stands and the user is told.
                if let Err(err) = cluster
                    .apply_pull_secret(&secret, args.force_conflicts, dry_run)
                    .await
                {
                    eprintln!(
                        "warning: secret/{secret_name} still holds the previous registry's entry: {err}"
                    );
                }
            }
            Ok(applied)
        }
        .await;
        match outcome {
            Ok(applied) => {
                if args.output.is_none() {
                    let revision = applied
                        .revision
                        .map(|r| format!(", revision {r}"))
                        .unwrap_or_default();
                    let dry = if dry_run == DryRun::Server {
                        "server dry run, "
                    } else {
                        ""
                    };
                    println!(
                        "{}/{} {} ({dry}namespace {}{revision}{})",
                        manifest.kind.singular_resource(),
                        manifest.metadata.name,
                        applied.outcome,
                        manifest.metadata.namespace.as_deref().unwrap_or_default(),
                        context_note(&plans, cluster)
                    );
                }
                results.push((cluster.context.clone(), applied));
            }
            Err(err) if plans.len() > 1 => {
                eprintln!("error: context {}: {err}", cluster.context);
                failures += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
    if let Some(format) = args.output {
        let objects: Vec<&DynamicObject> =
            results.iter().map(|(_, applied)| &applied.object).collect();
        print_objects(&objects, format)?;
    }
    if failures > 0 {
        anyhow::bail!("{failures} of {} clusters failed (see above)", plans.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// The pull Secret to write next to `manifest`, when --pull-secret-from-docker-config is set.
fn pull_secret_for(
    credential: &Option<(String, RegistryCredential)>,
    cluster: &Cluster,
    manifest: &WasmPluginManifest,
) -> Option<k8s_openapi::api::core::v1::Secret> {
    let (registry, credential) = credential.as_ref()?;
    let name = manifest.spec.image_pull_secret.as_deref()?;
    let namespace = manifest
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(&cluster.default_namespace);
    Some(pull_secret::secret(name, namespace, registry, credential))
}

const SECRET_NOTE: &str = "kubernetes.io/dockerconfigjson, one registry";

fn context_note(plans: &[(Cluster, WasmPluginManifest)], cluster: &Cluster) -> String {
    if plans.len() > 1 {
        format!(", context {}", cluster.context)
    } else {
        String::new()
    }
}

/// The image registry's credentials from the docker config, as the pull Secret will hold them:
/// the `auths` key and the credential.
fn docker_config_credential(draft: &Draft) -> anyhow::Result<(String, RegistryCredential)> {
    let ImageSource::Oci(reference) = ImageSource::parse(&draft.spec.url)? else {
        anyhow::bail!(
            "--pull-secret-from-docker-config needs an OCI image (oci://...), not {}",
            draft.spec.url
        );
    };
    let registry = reference.credential_key().to_string();
    let resolved = oci::auth::from_docker_config(&registry)?;
    let credential = match resolved.credentials {
        Credentials::Basic { username, password } => RegistryCredential::Basic {
            username,
            password: password.expose().to_string(),
        },
        Credentials::IdentityToken(token) => {
            RegistryCredential::IdentityToken(token.expose().to_string())
        }
        Credentials::RegistryToken(token) => {
            RegistryCredential::RegistryToken(token.expose().to_string())
        }
        Credentials::Anonymous => anyhow::bail!(
            "--pull-secret-from-docker-config: the docker config ({}) has no credentials for {registry}; run `docker login {registry}` (or add an auths entry) first",
            oci::auth::docker_config_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        ),
    };
    Ok((oci::auth::secret_key(&registry), credential))
}
