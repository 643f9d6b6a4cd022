//! Registry options shared by every command that talks to a registry (push, pull, inspect
//! oci://, apply's digest lookup): one clap struct to `#[command(flatten)]`, one validated type.
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use super::auth::Resolved;
use super::{Credentials, Error, RetryPolicy, Secret, Transport};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub transport: Transport,
    /// Explicit credentials and where they came from (named in errors); `None` means: look
    /// in the docker config, else anonymous.
    pub credentials: Option<Resolved>,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Registry user name (the password is read from stdin with --password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password (or token) from stdin, so it never shows in `ps` or history.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Also trust this PEM CA bundle for the registry's TLS certificate.
    #[arg(long, value_name = "CA.pem")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the registry's TLS certificate (never for production registries).
    #[arg(long, conflicts_with = "plain_http")]
    pub insecure: bool,
    /// Talk plain HTTP to the registry (local test registries).
    #[arg(long)]
    pub plain_http: bool,
    /// Attempts per registry request on 5xx/429/connection errors, first included.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        env = "DEPLOYER_REGISTRY_ATTEMPTS"
    )]
    pub attempts: u32,
    /// First pause between attempts, e.g. 500ms (doubles each time, capped at 8s).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "500ms",
        value_parser = crate::duration::positive,
        env = "DEPLOYER_REGISTRY_BACKOFF"
    )]
    pub retry_backoff: Duration,
    /// How long one registry request may wait for an answer, e.g. 30s, 2m (and the longest
    /// pause while a blob streams). With retries a command waits at most attempts x timeout +
    /// backoff.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        value_parser = crate::duration::positive,
        env = "DEPLOYER_REGISTRY_TIMEOUT"
    )]
    pub timeout: Duration,
}

impl RegistryArgs {
    /// Validates the flags and reads the password from stdin when asked to.
    pub fn into_options(self) -> Result<Options, Error> {
        let credentials = match (self.username, self.password_stdin) {
            (Some(username), true) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .map_err(|err| Error::Usage {
                        message: format!("cannot read the password from stdin: {err}"),
                    })?;
                let password = password.trim_end_matches(['\n', '\r']).to_string();
                if password.is_empty() {
                    return Err(Error::Usage {
                        message: "--password-stdin read an empty password from stdin".into(),
                    });
                }
                Some(Credentials::Basic {
                    username,
                    password: Secret::new(password),
                })
            }
            (None, false) => None,
            _ => {
                return Err(Error::Usage {
                    message: "--username and --password-stdin go together".into(),
                });
            }
        };
        if self.attempts == 0 {
            return Err(Error::Usage {
                message: "--attempts must be at least 1".into(),
            });
        }
        // clap refuses 0 already; this is for options built in code.
        if self.timeout.is_zero() {
            return Err(Error::Usage {
                message: "--timeout must be greater than 0".into(),
            });
        }
        Ok(Options {
            transport: Transport {
                plain_http: self.plain_http,
                insecure: self.insecure,
                ca_file: self.ca_file,
            },
            credentials: credentials.map(|credentials| Resolved {
                credentials,
                source: "--username/--password-stdin".into(),
            }),
            retry: RetryPolicy {
                attempts: self.attempts,
                initial_backoff: self.retry_backoff,
                request_timeout: self.timeout,
                ..RetryPolicy::default()
            },
        })
    }
}
