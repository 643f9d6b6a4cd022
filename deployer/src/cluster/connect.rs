//! A kube client for one kubeconfig context, with bounded connect/read time so an unreachable
//! API server fails fast and names itself.
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::Error;

/// Connect timeout: loopback and LAN servers answer in milliseconds; a dead address should not
/// hang a deploy for the OS default (minutes).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on every request (apply of one small object takes milliseconds on a healthy server).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    /// `None`: the kubeconfig's current context.
    pub context: Option<String>,
}

#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The context's name, for reports and errors.
    pub context: String,
    pub server: String,
    pub default_namespace: String,
    /// Who we are, for RBAC errors (kubeconfig user name).
    pub user: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// A context's client configuration, read from the kubeconfig the one way every client of
/// the deployer reads it (the API clients here, the log streams of `logs -f`).
pub(crate) struct Loaded {
    /// With the connect, read and write bounds set.
    pub config: kube::Config,
    pub context: String,
    /// Who we are, for RBAC errors (kubeconfig user name).
    pub user: String,
}

impl Loaded {
    /// Loads the kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else ~/.kube/config) and
    /// resolves the context (`--context`, else current-context).
    pub async fn load(options: &ConnectOptions) -> Result<Self, Error> {
        let kubeconfig = match &options.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|err| Error::Kubeconfig {
            path: options.kubeconfig.clone(),
            message: err.to_string(),
        })?;
        let context = options
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .ok_or_else(|| Error::Kubeconfig {
                path: options.kubeconfig.clone(),
                message: "no current-context set: pass --context NAME".into(),
            })?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(Error::Context {
                context,
                message: format!("not in the kubeconfig (contexts: {})", known.join(", ")),
            });
        }
        let user = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
            .unwrap_or_else(|| "the current user".into());
        let kube_options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
            .await
            .map_err(|err| Error::Context {
                context: context.clone(),
                message: err.to_string(),
            })?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(REQUEST_TIMEOUT);
        config.write_timeout = Some(REQUEST_TIMEOUT);
        Ok(Self {
            config,
            context,
            user,
        })
    }

    /// The client (no request is sent yet).
    // The module's one error type, as every cluster call returns it; built once per command.
    #[allow(clippy::result_large_err)]
    pub fn client(self) -> Result<kube::Client, Error> {
        crate::tls::install_crypto_provider();
        kube::Client::try_from(self.config).map_err(|err| Error::Context {
            context: self.context,
            message: err.to_string(),
        })
    }
}

impl Cluster {
    /// Builds a client for the context `options` name. No request is sent yet.
    pub async fn connect(options: &ConnectOptions) -> Result<Self, Error> {
        let loaded = Loaded::load(options).await?;
        let server = loaded
            .config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let default_namespace = loaded.config.default_namespace.clone();
        let (context, user) = (loaded.context.clone(), loaded.user.clone());
        Ok(Self {
            client: loaded.client()?,
            context,
            server,
            default_namespace,
            user,
        })
    }

    /// Runs one request with the overall bound, turning a timeout into `Unreachable`.
    pub async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(REQUEST_TIMEOUT + CONNECT_TIMEOUT, request).await {
            Ok(result) => result,
            Err(_) => Err(Error::Unreachable {
                context: self.context.clone(),
                server: self.server.clone(),
                timeout: REQUEST_TIMEOUT + CONNECT_TIMEOUT,
                message: "no answer".into(),
            }),
        }
    }
}
