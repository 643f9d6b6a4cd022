//! Where registry credentials come from, the way Docker finds them: explicit flags first, then
//! the docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): a
//! `credHelpers` entry for the registry, else `credsStore`, else the `auths` entry. Secrets live
//! in [`Secret`], whose Debug and Display never show the value.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

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

#[derive(Debug, Default)]
struct DockerConfig {
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// Parses a docker config by hand instead of with a derived `Deserialize`: serde's type errors
/// quote the offending value (`invalid type: string "dXNlcjpw..."`), and in a docker config the
/// offending value is usually the credential. Every error here names the field and the JSON
/// type found, never a value.
fn parse_docker_config(bytes: &[u8]) -> Result<DockerConfig, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        // Syntax errors describe the grammar (`expected `,` or `}``), not the input; other
        // categories are not produced when parsing into a Value, but only the position is
        // safe to show for anything unexpected.
        let what = match err.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                let text = err.to_string();
                let cut = text.find(" at line ").unwrap_or(text.len());
                text[..cut].to_string()
            }
            _ => "unreadable".to_string(),
        };
        format!(
            "not valid JSON: {what} (line {}, column {})",
            err.line(),
            err.column()
        )
    })?;
    let Value::Object(root) = value else {
        return Err(format!(
            "the document is {}, expected a JSON object like {{\"auths\": {{...}}}}",
            json_kind(&value)
        ));
    };
    let mut config = DockerConfig::default();
    match root.get("auths") {
        None | Some(Value::Null) => {}
        Some(Value::Object(auths)) => {
            for (key, entry) in auths {
                config.auths.insert(key.clone(), auth_entry(key, entry)?);
            }
        }
        Some(other) => {
            return Err(format!(
                "`auths` is {}, expected an object of registry entries",
                json_kind(other)
            ));
        }
    }
    config.creds_store = optional_string(root.get("credsStore"), "`credsStore`")?;
    match root.get("credHelpers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(helpers)) => {
            for (registry, helper) in helpers {
                let field = format!("`credHelpers` entry \"{registry}\"");
                if let Some(helper) = optional_string(Some(helper), &field)? {
                    config.cred_helpers.insert(registry.clone(), helper);
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "`credHelpers` is {}, expected an object of registry: helper name",
                json_kind(other)
            ));
        }
    }
    Ok(config)
}

fn auth_entry(key: &str, value: &Value) -> Result<AuthEntry, String> {
    let Value::Object(fields) = value else {
        return Err(format!(
            "`auths` entry \"{key}\" is {}, expected an object like {{\"auth\": \"<base64 of user:password>\"}}",
            json_kind(value)
        ));
    };
    let field = |name: &str| {
        optional_string(
            fields.get(name),
            &format!("`auths` entry \"{key}\": field `{name}`"),
        )
    };
    Ok(AuthEntry {
        auth: field("auth")?,
        username: field("username")?,
        password: field("password")?,
        identitytoken: field("identitytoken")?,
        registrytoken: field("registrytoken")?,
    })
}

/// A string field that may be absent or null; anything else is an error naming only its type.
fn optional_string(value: Option<&Value>, what: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{what} is {}, expected a string", json_kind(other))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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

/// The `auths` key to file a registry's credentials under in a pull Secret (`registry` as
/// [`super::ImageRef::credential_key`] gives it): Docker Hub's legacy index url, which
/// `docker login` writes and go-containerregistry keychains (Istio's agent) look Docker Hub
/// up by, else the registry itself.
pub fn secret_key(registry: &str) -> String {
    config_keys(registry).swap_remove(0)
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
    match docker_config_path() {
        Some(path) => from_docker_config_at(path, registry),
        None => Ok(Resolved::default()),
    }
}

fn from_docker_config_at(path: PathBuf, registry: &str) -> Result<Resolved, Error> {
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
    let config = parse_docker_config(text.as_bytes()).map_err(|message| Error::DockerConfig {
        path: path.clone(),
        message,
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
    let config = parse_docker_config(bytes)?;
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

/// How long a credential helper may take. Helpers may unlock a keyring and prompt for it, so
/// this is longer than a registry request, but a helper that never exits must not hang the CLI.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

enum HelperWait {
    TimedOut,
    Io(std::io::Error),
}

/// `wait_with_output` with a deadline: the pipes are drained on their own threads (a chatty
/// helper cannot block on a full pipe) while the child is polled; past the deadline it is killed.
fn wait_bounded(mut child: Child, timeout: Duration) -> Result<Output, HelperWait> {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                // A read error leaves what was read; the exit status decides anyway.
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(HelperWait::Io)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                // Already exited or unkillable: either way we stop waiting for it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(HelperWait::TimedOut);
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
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
    run_helper_at(None, helper, server, HELPER_TIMEOUT)
}

#[cfg(test)]
fn run_helper_in(
    dir: &std::path::Path,
    helper: &str,
    server: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, Error> {
    run_helper_at(Some(dir), helper, server, timeout)
}

/// `dir`: where the helper program is (tests); `None` looks it up on PATH like docker.
fn run_helper_at(
    dir: Option<&std::path::Path>,
    helper: &str,
    server: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{helper}");
    let executable = dir.map_or_else(|| PathBuf::from(&program), |dir| dir.join(&program));
    let fail = |message: String| Error::CredentialHelper {
        helper: helper.to_string(),
        registry: server.to_string(),
        message,
    };
    let mut child = Command::new(&executable)
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
    let output = wait_bounded(child, timeout).map_err(|err| match err {
        HelperWait::TimedOut => fail(format!(
            "did not answer within {:.1} s (stopped); run `echo {server} | {program} get` to see what it waits for",
            timeout.as_secs_f64()
        )),
        HelperWait::Io(err) => fail(err.to_string()),
    })?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // What a failing helper prints is not shown: helpers echo their store's answer, which
        // can hold the very secret (or another registry's). The user can run it by hand.
        return Err(fail(format!(
            "exited with {} (its output is not shown, as it may hold credentials; run `echo {server} | {program} get` to see it)",
            output.status
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
    fn docker_hub_references_find_docker_hub_credentials() {
        let config = br#"{"auths": {"https://index.docker.io/v1/": {"auth": "dTpwNHNz"},
                                    "user": {"auth": "d3Jvbmc6d3Jvbmc="}}}"#;
        let hub = Some(Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p4ss"),
        });
        // `user/logger` is Docker Hub's; an `auths` entry named `user` is not its registry.
        for reference in ["user/logger", "logger:v1", "docker.io/user/logger"] {
            let key = super::super::ImageRef::parse(reference)
                .unwrap()
                .credential_key()
                .to_string();
            assert_eq!(key, "docker.io", "{reference}");
            assert_eq!(
                from_docker_config_json(config, &key).unwrap(),
                hub,
                "{reference}"
            );
        }
        assert_eq!(secret_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(secret_key("localhost:5000"), "localhost:5000");
    }

    const CANARY: &str = "c4nary-S3cret";
    const NUMERIC_CANARY: &str = "918273645501";

    /// Docker configs with a secret-looking value of every JSON type in every place a
    /// credential or helper name lives, plus syntax errors right next to one.
    fn hostile_configs() -> Vec<String> {
        let base64_canary =
            base64::engine::general_purpose::STANDARD.encode(format!("user:{CANARY}"));
        let values = [
            format!("\"{CANARY}\""),
            format!("\"{base64_canary}\""),
            NUMERIC_CANARY.to_string(),
            format!("[\"{CANARY}\"]"),
            format!("{{\"x\": \"{CANARY}\"}}"),
            "true".to_string(),
        ];
        let mut configs = Vec::new();
        for value in &values {
            configs.push(format!("{{\"auths\": {{\"reg\": {value}}}}}"));
            configs.push(format!("{{\"auths\": {value}}}"));
            configs.push(value.clone());
            for field in [
                "auth",
                "username",
                "password",
                "identitytoken",
                "registrytoken",
            ] {
                // A string user name is a user name (shown as such), not a malformed secret.
                if field == "username" && value.starts_with('"') {
                    continue;
                }
                configs.push(format!(
                    "{{\"auths\": {{\"reg\": {{\"username\": \"u\", \"{field}\": {value}}}}}}}"
                ));
            }
            // A helper's name is a program name, shown as such; only other types are errors.
            if !value.starts_with('"') {
                configs.push(format!("{{\"credsStore\": {value}}}"));
                configs.push(format!("{{\"credHelpers\": {{\"reg\": {value}}}}}"));
            }
            configs.push(format!("{{\"credHelpers\": {value}}}"));
        }
        configs.push(format!(
            "{{\"auths\": {{\"reg\": {{\"password\": {CANARY}}}}}}}"
        ));
        configs.push(format!(
            "{{\"auths\": {{\"reg\": {{\"auth\": \"{base64_canary}"
        ));
        configs.push(format!("{{\"auths\": {{\"reg\": \"{CANARY}\" \"x\"}}}}"));
        configs.push(format!(
            "{{\"auths\": {{\"reg\": {{\"password\": \"{CANARY}\u{1}\"}}}}}}"
        ));
        configs
    }

    fn assert_no_canary(what: &str, config: &str) {
        for secret in [CANARY, NUMERIC_CANARY] {
            assert!(
                !what.contains(secret),
                "the error quotes the secret\nconfig: {config}\nerror: {what}"
            );
        }
        let base64_canary =
            base64::engine::general_purpose::STANDARD.encode(format!("user:{CANARY}"));
        assert!(!what.contains(&base64_canary), "{what}");
    }

    #[test]
    fn malformed_docker_configs_never_quote_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut refused = 0;
        for config in hostile_configs() {
            std::fs::write(&path, &config).unwrap();
            if let Err(err) = from_docker_config_at(path.clone(), "reg") {
                assert_no_canary(&err.to_string(), &config);
                assert!(
                    err.to_string().contains("config.json"),
                    "the error names the file: {err}"
                );
                refused += 1;
            }
            if let Err(err) = from_docker_config_json(config.as_bytes(), "reg") {
                assert_no_canary(&err, &config);
            }
        }
        // Nearly every hostile config is malformed; the few accepted are well-formed entries.
        assert!(refused >= 40, "only {refused} refused");
    }

    #[test]
    fn malformed_entries_are_named() {
        let err =
            parse_docker_config(br#"{"auths": {"reg.example": "dXNlcjpwYXNz"}}"#).unwrap_err();
        assert_eq!(
            err,
            "`auths` entry \"reg.example\" is a string, expected an object like {\"auth\": \"<base64 of user:password>\"}"
        );
        let err = parse_docker_config(br#"{"auths": {"r": {"username": "u", "password": 1234}}}"#)
            .unwrap_err();
        assert_eq!(
            err,
            "`auths` entry \"r\": field `password` is a number, expected a string"
        );
        // Fields docker writes that this tool does not use are not errors.
        let config = parse_docker_config(
            br#"{"auths": {"r": {"auth": "dTpw", "email": 1}}, "HttpHeaders": {}}"#,
        )
        .unwrap();
        assert_eq!(config.auths["r"].auth.as_deref(), Some("dTpw"));
    }

    #[cfg(unix)]
    fn helper_dir(script: &str) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker-credential-canary");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[cfg(unix)]
    #[test]
    fn failing_helpers_do_not_echo_their_output() {
        for script in [
            format!("echo \"store said: password={CANARY}\" >&2; exit 1"),
            format!("echo '{{\"Username\": \"u\", \"Secret\": {NUMERIC_CANARY}}}'"),
            format!("echo \"{CANARY}\"; exit 3"),
        ] {
            let dir = helper_dir(&script);
            let err = run_helper_in(dir.path(), "canary", "reg", HELPER_TIMEOUT).unwrap_err();
            let text = err.to_string();
            assert_no_canary(&text, &script);
            assert!(text.contains("docker-credential-canary"), "{text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_helper_that_never_answers_is_stopped() {
        let dir = helper_dir("exec sleep 30");
        let started = Instant::now();
        let err = run_helper_in(dir.path(), "canary", "reg", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(err.contains("did not answer within"), "{err}");
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
