//! Where registry credentials come from, the way Docker finds them: explicit flags first, then
//! the docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): a
//! `credHelpers` entry for the registry, else `credsStore`, else the `auths` entry. Secrets live
//! in [`Secret`], whose Debug and Display never show the value.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use super::Error;

/// A password or token. Only [`Secret::expose`] reveals it, at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (docker `identitytoken`), traded for an access token at the
    /// registry's bearer realm.
    IdentityToken(Secret),
    /// A bearer token used as is (docker `registrytoken`).
    RegistryToken(Secret),
}

/// Credentials plus where they came from, so errors can say what to fix without the secret.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub credentials: Credentials,
    pub source: String,
}

impl Resolved {
    /// " for user 'u' (from SOURCE)" or "" for anonymous access.
    pub fn describe(&self) -> String {
        match &self.credentials {
            Credentials::Anonymous => String::new(),
            Credentials::Basic { username, .. } => {
                format!(" for user '{username}' (from {})", self.source)
            }
            Credentials::IdentityToken(_) => format!(" (identity token from {})", self.source),
            Credentials::RegistryToken(_) => format!(" (registry token from {})", self.source),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// Docker Hub's credentials are filed under its legacy index url.
fn config_keys(registry: &str) -> Vec<String> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            vec![
                "https://index.docker.io/v1/".into(),
                "index.docker.io".into(),
                "docker.io".into(),
            ]
        }
        other => vec![other.to_string()],
    }
}

/// `https://host:port/path` -> `host:port`, as Docker normalises `auths` keys.
fn normalise_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Looks the registry up in the docker config; anonymous when nothing is configured.
pub fn from_docker_config(registry: &str) -> Result<Resolved, Error> {
    let Some(path) = docker_config_path() else {
        return Ok(Resolved::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Resolved::default()),
        Err(err) => {
            return Err(Error::DockerConfig {
                path,
                message: err.to_string(),
            });
        }
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|err| Error::DockerConfig {
        path: path.clone(),
        message: format!("not valid JSON: {err}"),
    })?;
    let keys = config_keys(registry);
    let helper = keys
        .iter()
        .find_map(|key| {
            config
                .cred_helpers
                .iter()
                .find(|(k, _)| normalise_key(k) == normalise_key(key))
        })
        .map(|(_, helper)| helper.clone())
        .or_else(|| config.creds_store.clone().filter(|store| !store.is_empty()));
    if let Some(helper) = helper {
        let server = keys[0].clone();
        if let Some(credentials) = run_helper(&helper, &server)? {
            return Ok(Resolved {
                credentials,
                source: format!("credential helper docker-credential-{helper}"),
            });
        }
    }
    let entry = keys
        .iter()
        .find_map(|key| {
            config
                .auths
                .iter()
                .find(|(k, _)| normalise_key(k) == normalise_key(key))
        })
        .map(|(_, entry)| entry);
    let Some(entry) = entry else {
        return Ok(Resolved::default());
    };
    let source = path.display().to_string();
    let credentials =
        entry_credentials(entry).map_err(|message| Error::DockerConfig { path, message })?;
    Ok(Resolved {
        credentials,
        source,
    })
}

/// The registry's credentials in a `.dockerconfigjson` (a pull Secret's bytes): only `auths`
/// counts there, since a pod has no credential helpers. `Ok(None)`: no entry for the registry.
/// The error never quotes the bytes, which hold the secret.
pub fn from_docker_config_json(
    bytes: &[u8],
    registry: &str,
) -> Result<Option<Credentials>, String> {
    let config: DockerConfig = serde_json::from_slice(bytes).map_err(|err| {
        format!(
            "not a docker config JSON (line {}, column {})",
            err.line(),
            err.column()
        )
    })?;
    let entry = config_keys(registry).iter().find_map(|key| {
        config
            .auths
            .iter()
            .find(|(k, _)| normalise_key(k) == normalise_key(key))
            .map(|(_, entry)| entry)
    });
    match entry {
        None => Ok(None),
        Some(entry) => match entry_credentials(entry)? {
            Credentials::Anonymous => Err("its auths entry holds no credentials".into()),
            credentials => Ok(Some(credentials)),
        },
    }
}

fn entry_credentials(entry: &AuthEntry) -> Result<Credentials, String> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::IdentityToken(Secret::new(token.clone())));
    }
    if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::RegistryToken(Secret::new(token.clone())));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("an `auth` entry is not base64 of `user:password`")?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or("an `auth` entry is not base64 of `user:password`")?;
        return Ok(Credentials::Basic {
            username: username.to_string(),
            password: Secret::new(password),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Ok(Credentials::Basic {
            username: username.clone(),
            password: Secret::new(password.clone()),
        }),
        _ => Ok(Credentials::Anonymous),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    #[serde(default)]
    username: String,
    secret: String,
}

/// Runs `docker-credential-<helper> get` (the docker-credential-helpers protocol: server url on
/// stdin, JSON on stdout). `None` when the helper has nothing for this registry.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{helper}");
    let fail = |message: String| Error::CredentialHelper {
        helper: helper.to_string(),
        registry: server.to_string(),
        message,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| fail(format!("cannot run {program} ({err}): install it or fix credHelpers/credsStore in the docker config")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is its business; its answer decides.
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|err| fail(err.to_string()))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "exited with {}: {}",
            output.status,
            said.trim()
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| fail("did not print the expected JSON {Username, Secret}".into()))?;
    if answer.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(Secret::new(answer.secret))));
    }
    Ok(Some(Credentials::Basic {
        username: answer.username,
        password: Secret::new(answer.secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let credentials = Credentials::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn decodes_auth_entries() {
        let entry = AuthEntry {
            auth: Some("dTpwOnc=".into()),
            ..Default::default()
        };
        assert_eq!(
            entry_credentials(&entry).unwrap(),
            Credentials::Basic {
                username: "u".into(),
                password: Secret::new("p:w")
            }
        );
        let token = AuthEntry {
            identitytoken: Some("t".into()),
            auth: Some("dTpw".into()),
            ..Default::default()
        };
        assert_eq!(
            entry_credentials(&token).unwrap(),
            Credentials::IdentityToken(Secret::new("t"))
        );
        assert!(
            entry_credentials(&AuthEntry {
                auth: Some("!!".into()),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn reads_one_registry_from_a_pull_secret() {
        let bytes = br#"{"auths": {"https://127.0.0.1:5000/v1/": {"auth": "dTpwNHNz"}}}"#;
        assert_eq!(
            from_docker_config_json(bytes, "127.0.0.1:5000").unwrap(),
            Some(Credentials::Basic {
                username: "u".into(),
                password: Secret::new("p4ss")
            })
        );
        assert_eq!(from_docker_config_json(bytes, "other:5000").unwrap(), None);
        let err = from_docker_config_json(b"{\"auths\": p4ss", "r").unwrap_err();
        assert!(!err.contains("p4ss"), "{err}");
    }

    #[test]
    fn normalises_keys() {
        assert_eq!(
            normalise_key("https://reg.example:5000/v1/"),
            "reg.example:5000"
        );
        assert_eq!(normalise_key("reg.example"), "reg.example");
    }
}
