//! Flags (and what they do) that several commands share: which clusters and namespace, dry
//! runs, signature checks, and the spec steps apply and render run alike. Kept out of any one
//! command's module so commands depend on this, never on each other.
use std::path::PathBuf;

use anyhow::Context as _;
use deployer::cluster::{Cluster, ConnectOptions};
use deployer::oci::{self, ImageRef};
use deployer::plugin::flags::Draft;
use deployer::plugin::image::ImageSource;
use deployer::plugin::spec::{Kind, KindChoice};
use deployer::sign::{self, PublicKey};
use kube::api::DynamicObject;

/// Shared by apply and render: refuse an image without a valid cosign signature.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// Public key (PEM, e.g. cosign.pub): refuse, before any write, unless the pinned image
    /// (the manifest Istio pulls) has a valid cosign signature by it; the key's fingerprint is
    /// recorded in the `wasm-deployer.io/verified-key` annotation.
    #[arg(long, value_name = "FILE")]
    pub verify_key: Option<PathBuf>,
}

/// The annotation that records which key vouched for the image at apply time.
pub const VERIFIED_KEY_ANNOTATION: &str = "wasm-deployer.io/verified-key";

impl VerifyArgs {
    /// Reads the key (offline, before the registry is asked anything).
    pub fn load(&self) -> anyhow::Result<Option<PublicKey>> {
        Ok(self
            .verify_key
            .as_deref()
            .map(PublicKey::load)
            .transpose()?)
    }
}

/// Refuses unless the image the pinned url names carries a valid signature by `key`, then
/// records the key's fingerprint on the draft.
pub async fn verify_pinned(
    draft: &mut Draft,
    key: &PublicKey,
    registry: &oci::Options,
) -> anyhow::Result<()> {
    verify_url(&draft.spec.url, key, registry).await?;
    draft
        .annotations
        .insert(VERIFIED_KEY_ANNOTATION.to_string(), key.fingerprint.clone());
    Ok(())
}

/// Refuses unless `url` is an oci:// url pinned to a digest whose image (the manifest Istio
/// pulls) carries a valid signature by `key`.
pub async fn verify_url(url: &str, key: &PublicKey, registry: &oci::Options) -> anyhow::Result<()> {
    let ImageSource::Oci(reference) = ImageSource::parse(url)? else {
        anyhow::bail!(
            "--verify-key checks cosign signatures of OCI images; {url} is not an oci:// url"
        );
    };
    if reference.digest().is_none() {
        // A tag can move between the check and Istio's pull: only a digest is what was checked.
        anyhow::bail!(
            "--verify-key needs the url pinned to a digest (drop --no-pin, or give REF@sha256:...)"
        );
    }
    let refusal = || format!("refusing {url}: nothing was written");
    // The digest Istio compares: for an index, its linux/amd64 entry's.
    let digest = oci::resolve_digest(&reference.to_string(), registry)
        .await
        .with_context(refusal)?;
    sign::verify_digest(&reference, &digest, key, registry)
        .await
        .with_context(refusal)?;
    Ok(())
}

/// Which clusters and namespace: the flags of every command that talks to a cluster, spelled
/// as kubectl spells them. Commands that read one cluster (migrate, history)
/// take `--context` once: see [`ONE_CONTEXT_HELP`].
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Namespace of the plugin (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// kubeconfig context (default: its current-context); repeat to act on several clusters.
    #[arg(long = "context", value_name = "NAME")]
    pub contexts: Vec<String>,
    /// kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// The plugin a command acts on: its name, where it lives, and which kind (history, logs,
/// status, delete, rollback).
#[derive(Debug, Clone, clap::Args)]
pub struct PluginArgs {
    /// The WasmPlugin's (or TrafficExtension's) name.
    pub name: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// wasmplugin (wp), trafficextension (te), or auto: the WasmPlugin of that name if there
    /// is one, else the TrafficExtension.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub kind: KindChoice,
}

/// `--context`'s help where only one cluster is read; with `#[command(mut_arg("contexts",
/// one_context))]` the flag also refuses a second value (a usage error, exit 2).
pub const ONE_CONTEXT_HELP: &str = "kubeconfig context (default: its current-context)";

pub fn one_context(arg: clap::Arg) -> clap::Arg {
    arg.help(ONE_CONTEXT_HELP).action(clap::ArgAction::Set)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRunMode {
    Client,
    Server,
}

/// `--dry-run[=client|server]`, as kubectl spells it (apply, delete, rollback).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct DryRunArgs {
    /// client: check and print, send nothing; server: the API server checks the change and
    /// stores nothing. `--dry-run` alone is client.
    #[arg(long = "dry-run", value_enum, value_name = "MODE", num_args = 0..=1,
          require_equals = true, default_missing_value = "client")]
    pub mode: Option<DryRunMode>,
}

impl DryRunArgs {
    /// What to ask the API server for once past a client dry run.
    pub fn server(self) -> deployer::cluster::DryRun {
        if self.mode == Some(DryRunMode::Server) {
            deployer::cluster::DryRun::Server
        } else {
            deployer::cluster::DryRun::Off
        }
    }
}

impl ClusterArgs {
    /// The one cluster of a command that reads one (clap has refused a second --context).
    pub async fn connect_one(&self) -> anyhow::Result<Cluster> {
        Ok(Cluster::connect(&self.connect_options_one()).await?)
    }

    pub fn connect_options_one(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.contexts.first().cloned(),
        }
    }

    /// `-n`, else the context's namespace.
    pub fn namespace_in(&self, cluster: &Cluster) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace.clone())
    }

    /// Builds a client per context (no request yet); fails before any write if one is unusable.
    pub async fn connect_all(&self) -> anyhow::Result<Vec<Cluster>> {
        let mut clusters = Vec::new();
        for options in self.connect_options_all() {
            clusters.push(Cluster::connect(&options).await?);
        }
        Ok(clusters)
    }

    /// How to reach each cluster `connect_all` connects to, in the same order.
    pub fn connect_options_all(&self) -> Vec<ConnectOptions> {
        let contexts: Vec<Option<String>> = if self.contexts.is_empty() {
            vec![None]
        } else {
            self.contexts.iter().cloned().map(Some).collect()
        };
        contexts
            .into_iter()
            .map(|context| ConnectOptions {
                kubeconfig: self.kubeconfig.clone(),
                context,
            })
            .collect()
    }
}

impl PluginArgs {
    /// The plugin as stored in `cluster`, of the kind `--kind` picks (auto: the WasmPlugin of
    /// that name if there is one, else the TrafficExtension); not found is an error that says
    /// what was looked for, then `consequence` (e.g. ": nothing to roll back").
    pub async fn live(
        &self,
        cluster: &Cluster,
        consequence: &str,
    ) -> anyhow::Result<(Kind, DynamicObject)> {
        let (namespace, name) = (self.cluster.namespace_in(cluster), &self.name);
        let kind = cluster.resolve_kind(self.kind, &namespace, name).await?;
        cluster.ensure_crd_of(kind).await?;
        let live = cluster
            .get_object(kind, &namespace, name)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} {namespace}/{name} not found (context {}){consequence}",
                    kind.name().to_lowercase(),
                    cluster.context
                )
            })?;
        Ok((kind, live))
    }
}

pub fn check(draft: &Draft, namespace: &str, skip: bool) -> anyhow::Result<()> {
    if !skip {
        draft.validate(namespace)?;
    }
    Ok(())
}

/// Digest pinning: a tag becomes `oci://REPO@sha256:...` plus `sha256`, resolved once at the
/// registry before anything is written anywhere.
pub async fn pin(draft: &mut Draft, no_pin: bool, registry: &oci::Options) -> anyhow::Result<()> {
    if let Some(reference) = draft.needs_pin(no_pin)? {
        let digest = resolve_digest(&reference, registry).await?;
        draft.pin(&reference, &digest);
    }
    Ok(())
}

async fn resolve_digest(reference: &ImageRef, registry: &oci::Options) -> anyhow::Result<String> {
    oci::resolve_digest(&reference.to_string(), registry)
        .await
        .with_context(|| {
            format!("cannot pin {reference} to a digest (use --no-pin to keep the tag)")
        })
}
