//! How requests reach a registry: TLS (verified by default, extra CA, opt-out), plain HTTP on
//! request, bounded retries with exponential backoff on 5xx/429/connection failures, and the
//! translation of `oci-client` errors into [`Error`] without credentials in any message.
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::auth::{self, Credentials, Resolved, Secret};
use super::{Error, ImageRef, Options};

#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// Talk HTTP instead of HTTPS (local registries).
    pub plain_http: bool,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// An extra PEM CA bundle to trust.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts per request, first included (at least 1).
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long one request may wait for the registry: for its answer, and between two reads
    /// of a body. See [`super::timeout`].
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            request_timeout: super::timeout::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failed_attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_attempts.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// A client bound to one repository, authenticated for one operation.
pub struct Session {
    client: Client,
    /// Plain reqwest client with the same TLS settings, for what oci-client does not do.
    http: reqwest::Client,
    reference: ImageRef,
    auth: RegistryAuth,
    resolved: Resolved,
    options: Options,
}

impl Session {
    pub async fn open(
        reference: &ImageRef,
        options: &Options,
        operation: RegistryOperation,
    ) -> Result<Self, Error> {
        crate::tls::install_crypto_provider();
        let resolved = match &options.credentials {
            Some(explicit) => explicit.clone(),
            None => auth::from_docker_config(reference.credential_key())?,
        };
        let certificates = ca_certificates(&options.transport)?;
        let config = ClientConfig {
            protocol: if options.transport.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            // With --plain-http no TLS is spoken to the registry, and building a verifier
            // loads every system root (tens of ms per client). An https redirect from a
            // plain-HTTP registry gains nothing from verification an on-path attacker could
            // not already defeat on the registry itself; blob digests are checked either way.
            accept_invalid_certificates: options.transport.insecure || options.transport.plain_http,
            extra_root_certificates: certificates,
            use_monolithic_push: true,
            connect_timeout: Some(super::timeout::connect_timeout(
                options.retry.request_timeout,
            )),
            read_timeout: Some(options.retry.request_timeout),
            user_agent: concat!("deployer/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let ca_path = options.transport.ca_file.clone().unwrap_or_default();
        let client = Client::try_from(config).map_err(|err| Error::CaFile {
            path: ca_path.clone(),
            message: chain(&err),
        })?;
        let http = http_client(&options.transport, options.retry.request_timeout)?;
        let mut session = Self {
            client,
            http,
            reference: reference.clone(),
            auth: RegistryAuth::Anonymous,
            resolved,
            options: options.clone(),
        };
        // One probe of /v2/ tells whether the registry wants a token flow at all.
        let challenge = session.probe().await?;
        session.auth = match session.resolved.credentials.clone() {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username, password.expose().to_string())
            }
            Credentials::RegistryToken(token) => RegistryAuth::Bearer(token.expose().to_string()),
            Credentials::IdentityToken(token) => {
                let challenge = challenge.as_deref().and_then(parse_bearer_challenge);
                let access = session
                    .exchange_identity_token(&token, challenge, operation)
                    .await?;
                RegistryAuth::Bearer(access.expose().to_string())
            }
        };
        let bearer = challenge.as_deref().is_some_and(|header| {
            header
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("bearer")
        });
        // oci-client re-probes /v2/ before every request of an anonymous session it was told
        // about; without a bearer challenge there is no token to get, so it is not told (a
        // registry that wants basic auth then answers 401, reported as such).
        if !matches!(session.auth, RegistryAuth::Anonymous) || bearer {
            let (client, auth, image) = (&session.client, &session.auth, session.reference.inner());
            session
                .retry(|| client.auth(image, auth, operation))
                .await?;
        }
        Ok(session)
    }

    /// `GET /v2/`: reachability, TLS, and the auth challenge (`WWW-Authenticate`), if any.
    async fn probe(&self) -> Result<Option<String>, Error> {
        let scheme = if self.options.transport.plain_http {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{}/v2/", self.reference.registry());
        let http = &self.http;
        let response = self
            .retry(|| async {
                let response = http.get(&url).send().await?;
                let status = response.status().as_u16();
                if status >= 500 || status == 429 {
                    let message = response.text().await.unwrap_or_default();
                    return Err(OciDistributionError::ServerError {
                        code: status,
                        url: url.clone(),
                        message,
                    });
                }
                Ok(response)
            })
            .await?;
        Ok(response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string))
    }

    pub fn reference(&self) -> &ImageRef {
        &self.reference
    }

    pub async fn blob_exists(&self, digest: &str) -> Result<bool, Error> {
        let (client, image) = (&self.client, self.reference.inner());
        self.retry(|| client.blob_exists(image, digest)).await
    }

    pub async fn push_blob(&self, data: &[u8], digest: &str) -> Result<(), Error> {
        let (client, image) = (&self.client, self.reference.inner());
        let data = bytes_of(data);
        self.retry(|| client.push_blob(image, data.clone(), digest))
            .await
            .map(drop)
    }

    pub async fn push_manifest(&self, manifest: &[u8], media_type: &str) -> Result<(), Error> {
        let (client, image) = (&self.client, self.reference.inner());
        let content_type =
            reqwest::header::HeaderValue::from_str(media_type).map_err(|err| Error::Usage {
                message: format!("bad manifest media type {media_type}: {err}"),
            })?;
        let data = bytes_of(manifest);
        self.retry(|| client.push_manifest_raw(image, data.clone(), content_type.clone()))
            .await
            .map(drop)
    }

    /// The manifest bytes and their verified digest, for `reference` (a tag or a digest).
    pub async fn pull_manifest(
        &self,
        digest: Option<&str>,
        accept: &[&str],
    ) -> Result<(Vec<u8>, String), Error> {
        let target = match digest {
            Some(digest) => self.reference.inner().clone_with_digest(digest.to_string()),
            None => self.reference.inner().clone(),
        };
        let (client, auth) = (&self.client, &self.auth);
        let (body, digest) = self
            .retry(|| client.pull_manifest_raw(&target, auth, accept))
            .await?;
        Ok((body.to_vec(), digest))
    }

    /// A blob, verified against `digest` while it streams in.
    pub async fn pull_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let (client, image) = (&self.client, self.reference.inner());
        self.retry(|| async move {
            let mut out = Vec::new();
            client.pull_blob(image, digest, &mut out).await?;
            Ok(out)
        })
        .await
    }

    async fn retry<T, F, Fut>(&self, mut operation: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let policy = self.options.retry;
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(err) if attempt < policy.attempts.max(1) && is_transient(&err) => {
                    tokio::time::sleep(policy.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(err) => {
                    let error = self.translate(err, attempt).await;
                    return Err(super::timeout::with_elapsed(error, started.elapsed()));
                }
            }
        }
    }

    async fn translate(&self, err: OciDistributionError, attempts: u32) -> Error {
        let registry = self.reference.registry().to_string();
        let status = status_of(&err);
        match (status, err) {
            (_, OciDistributionError::DigestError(digest)) => Error::DigestMismatch {
                reference: self.reference.to_string(),
                message: digest.to_string(),
            },
            (Some(401), _) | (_, OciDistributionError::AuthenticationFailure(_)) => {
                self.unauthorized()
            }
            (Some(403), err) => Error::Forbidden {
                registry,
                repository: self.reference.repository().to_string(),
                message: detail(&err),
            },
            (Some(404), err) => Error::NotFound {
                reference: self.reference.to_string(),
                message: detail(&err),
            },
            (Some(status), err) => {
                let url = match &err {
                    OciDistributionError::ServerError { url, .. }
                    | OciDistributionError::RegistryError { url, .. } => url.clone(),
                    _ => registry,
                };
                Error::Registry {
                    url,
                    status,
                    attempts,
                    message: detail(&err),
                }
            }
            (None, OciDistributionError::RequestError(request)) => {
                let message = chain(&request);
                if is_tls(&request) {
                    Error::Tls {
                        registry,
                        hint: self.tls_hint().await,
                        message,
                    }
                } else if request.is_timeout() && !request.is_connect() {
                    Error::TimedOut {
                        registry,
                        timeout: super::timeout::seconds(self.options.retry.request_timeout),
                        attempts,
                        elapsed: String::new(),
                    }
                } else if request.is_connect() || request.is_timeout() {
                    Error::Unreachable {
                        registry,
                        attempts,
                        message,
                        hint: ": is the registry running and the address right?".into(),
                    }
                } else {
                    Error::Protocol { registry, message }
                }
            }
            (None, err) => Error::Protocol {
                registry,
                message: chain(&err),
            },
        }
    }

    fn unauthorized(&self) -> Error {
        let hint = match self.resolved.credentials {
            Credentials::Anonymous => {
                ": it needs credentials: pass --username NAME --password-stdin, or add them to the docker config \
                 ($DOCKER_CONFIG/config.json or ~/.docker/config.json)"
            }
            _ => ": check the username and password (or token), or log in again",
        };
        Error::Unauthorized {
            registry: self.reference.registry().to_string(),
            who: self.resolved.describe(),
            hint: hint.to_string(),
        }
    }

    async fn tls_hint(&self) -> String {
        if !self.options.transport.plain_http
            && self.reference.is_loopback()
            && answers_plain_http(self.reference.registry()).await
        {
            return ": the registry answers plain HTTP: add --plain-http".into();
        }
        ": pass --ca-file CA.pem to trust its CA, or --insecure to skip verification (not for production)".into()
    }

    /// Docker's identity-token flow: trade the refresh token at the realm of the registry's
    /// bearer challenge for an access token scoped to this repository.
    async fn exchange_identity_token(
        &self,
        token: &Secret,
        challenge: Option<(String, Option<String>)>,
        operation: RegistryOperation,
    ) -> Result<Secret, Error> {
        let registry = self.reference.registry().to_string();
        let http = &self.http;
        let unreachable = |err: reqwest::Error| Error::Unreachable {
            registry: registry.clone(),
            attempts: 1,
            message: chain(&err),
            hint: String::new(),
        };
        let challenge = challenge.ok_or_else(|| Error::Protocol {
            registry: registry.clone(),
            message: "an identity token needs a registry with bearer-token auth, and it sent no Bearer challenge".into(),
        })?;
        let actions = match operation {
            RegistryOperation::Pull => "pull",
            RegistryOperation::Push => "pull,push",
        };
        let scope = format!("repository:{}:{actions}", self.reference.repository());
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", token.expose().to_string()),
            ("client_id", "deployer".to_string()),
            ("scope", scope),
        ];
        if let Some(service) = challenge.1 {
            form.push(("service", service));
        }
        let answer = http
            .post(&challenge.0)
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        if !answer.status().is_success() {
            return Err(self.unauthorized());
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: Option<String>,
            token: Option<String>,
        }
        // Not the decoder's message: serde quotes the offending value, here the token.
        let parsed: TokenAnswer = answer.json().await.map_err(|_| Error::Protocol {
            registry: registry.clone(),
            message: "the token endpoint's answer is not JSON with a string access_token or token"
                .into(),
        })?;
        parsed
            .access_token
            .or(parsed.token)
            .map(Secret::new)
            .ok_or_else(|| Error::Protocol {
                registry,
                message: "the token endpoint answered without an access token".into(),
            })
    }
}

fn bytes_of(data: &[u8]) -> Vec<u8> {
    data.to_vec()
}

fn ca_certificates(transport: &Transport) -> Result<Vec<Certificate>, Error> {
    let Some(path) = &transport.ca_file else {
        return Ok(Vec::new());
    };
    let data = std::fs::read(path).map_err(|err| Error::CaFile {
        path: path.clone(),
        message: err.to_string(),
    })?;
    if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
        return Err(Error::CaFile {
            path: path.clone(),
            message: "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(vec![Certificate {
        encoding: CertificateEncoding::Pem,
        data,
    }])
}

/// A reqwest client with the registry flags' TLS settings, for the `/v2/` probe, the token
/// exchange and http(s) module urls: `timeout` bounds each whole request.
pub(crate) fn http_client(
    transport: &Transport,
    timeout: Duration,
) -> Result<reqwest::Client, Error> {
    // reqwest panics when no provider is installed; every caller gets one here.
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .danger_accept_invalid_certs(transport.insecure)
        .connect_timeout(super::timeout::connect_timeout(timeout))
        .read_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("deployer/", env!("CARGO_PKG_VERSION")));
    if transport.plain_http {
        // No TLS to the registry: skip loading the system roots (see Session::open).
        builder = builder.tls_certs_only(Vec::new());
    } else if let Some(path) = &transport.ca_file {
        let pem = std::fs::read(path).map_err(|err| Error::CaFile {
            path: path.clone(),
            message: err.to_string(),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| Error::CaFile {
            path: path.clone(),
            message: chain(&err),
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|err| Error::CaFile {
        path: transport.ca_file.clone().unwrap_or_default(),
        message: chain(&err),
    })
}

/// `Bearer realm="...",service="..."` -> (realm, service).
fn parse_bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut realm = None;
    let mut service = None;
    for part in rest.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some((realm?, service))
}

fn status_of(err: &OciDistributionError) -> Option<u16> {
    match err {
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        OciDistributionError::RequestError(request) => {
            request.status().map(|status| status.as_u16())
        }
        OciDistributionError::RegistryError { envelope, .. } => Some(
            // oci-client drops the HTTP status of a 4xx answer that carries an error body;
            // the distribution spec ties each code to one, so it is rebuilt from the codes,
            // the most telling first (a 429 must stay retryable, a 404 must say not found).
            envelope
                .errors
                .iter()
                .map(|error| status_of_code(&error.code))
                .min_by_key(|status| match status {
                    401 => 0,
                    403 => 1,
                    429 => 2,
                    404 => 3,
                    405 => 4,
                    _ => 5,
                })
                .unwrap_or(400),
        ),
        _ => None,
    }
}

/// The HTTP status the OCI distribution spec gives an error code (its table of error codes;
/// TOOMANYREQUESTS is 429 there). Codes a registry made up are client errors.
fn status_of_code(code: &OciErrorCode) -> u16 {
    match code {
        OciErrorCode::Unauthorized => 401,
        OciErrorCode::Denied => 403,
        OciErrorCode::Toomanyrequests => 429,
        OciErrorCode::BlobUnknown
        | OciErrorCode::BlobUploadUnknown
        | OciErrorCode::ManifestUnknown
        | OciErrorCode::NameUnknown
        | OciErrorCode::NotFound => 404,
        OciErrorCode::Unsupported => 405,
        OciErrorCode::BlobUploadInvalid
        | OciErrorCode::DigestInvalid
        | OciErrorCode::ManifestBlobUnknown
        | OciErrorCode::ManifestInvalid
        | OciErrorCode::ManifestUnverified
        | OciErrorCode::NameInvalid
        | OciErrorCode::SizeInvalid
        | OciErrorCode::TagInvalid
        | OciErrorCode::Other(_) => 400,
    }
}

fn is_transient(err: &OciDistributionError) -> bool {
    match status_of(err) {
        Some(status) => status >= 500 || status == 429,
        None => match err {
            OciDistributionError::RequestError(request) => {
                (request.is_connect() || request.is_timeout() || request.is_request())
                    && !is_tls(request)
            }
            _ => false,
        },
    }
}

/// Whether the request failed in TLS (an untrusted or mismatched certificate, a failed
/// handshake, a plain-HTTP server answering a TLS hello): rustls says so with its own error
/// type somewhere down the chain, and retrying cannot help.
fn is_tls(err: &reqwest::Error) -> bool {
    crate::error_chain::find::<rustls::Error>(err).is_some()
}

/// An error and its causes on one line (reqwest hides the useful part in `source()`).
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::error_chain::flatten(err)
}

/// What the registry said, without the client's wrapping (the url is reported separately).
fn detail(err: &OciDistributionError) -> String {
    match err {
        OciDistributionError::RegistryError { envelope, .. } => {
            let said: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        format!("{:?}", e.code)
                    } else {
                        e.message.clone()
                    }
                })
                .collect();
            short(&said.join("; "))
        }
        OciDistributionError::ServerError { message, .. } if !message.trim().is_empty() => {
            short(message.trim())
        }
        other => short(&chain(other)),
    }
}

/// Registry error bodies can be whole HTML pages; keep the first line, bounded.
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    if line.chars().count() > 300 {
        line.chars().take(300).collect::<String>() + "..."
    } else {
        line.to_string()
    }
}

/// Whether `host:port` speaks HTTP in clear: the usual cause of TLS errors with a local registry.
async fn answers_plain_http(registry: &str) -> bool {
    let address = if registry
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        registry.to_string()
    } else {
        format!("{registry}:443")
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(&address).await.ok()?;
        stream
            .write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {registry}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        // A registry answers /v2/ with 200 or 401; a TLS server fed clear text says 400.
        Some(head.starts_with(b"HTTP/1.") && (head.ends_with(b" 200") || head.ends_with(b" 401")))
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain-HTTP server answering a TLS hello: rustls's own error says so, whatever the
    /// layers above print. The same request refused at the TCP level is not TLS.
    #[tokio::test]
    async fn tls_failures_are_told_by_their_type_not_their_text() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            if let Ok((mut stream, _)) = listener.accept() {
                let mut hello = [0u8; 512];
                let _ = stream.read(&mut hello);
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            }
        });
        let client = http_client(&Transport::default(), Duration::from_secs(5)).unwrap();
        let err = client
            .get(format!("https://127.0.0.1:{port}/v2/"))
            .send()
            .await
            .unwrap_err();
        assert!(is_tls(&err), "{}", chain(&err));

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let err = client
            .get(format!("https://127.0.0.1:{port}/v2/"))
            .send()
            .await
            .unwrap_err();
        assert!(!is_tls(&err), "{}", chain(&err));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(300));
    }

    #[test]
    fn parses_bearer_challenges() {
        let (realm, service) = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example""#,
        )
        .unwrap();
        assert_eq!(realm, "https://auth.example/token");
        assert_eq!(service.as_deref(), Some("registry.example"));
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_none());
    }

    fn registry_error(codes: &[&str]) -> OciDistributionError {
        let errors: Vec<serde_json::Value> = codes
            .iter()
            .map(|code| serde_json::json!({"code": code, "message": "m"}))
            .collect();
        OciDistributionError::RegistryError {
            envelope: serde_json::from_value(serde_json::json!({ "errors": errors })).unwrap(),
            url: "u".into(),
        }
    }

    #[test]
    fn registry_error_codes_give_the_spec_status() {
        for (codes, status) in [
            (&["TOOMANYREQUESTS"][..], 429),
            (&["NOT_FOUND"], 404),
            (&["MANIFEST_UNKNOWN"], 404),
            (&["BLOB_UNKNOWN"], 404),
            (&["NAME_UNKNOWN"], 404),
            (&["BLOB_UPLOAD_UNKNOWN"], 404),
            (&["UNAUTHORIZED"], 401),
            (&["DENIED"], 403),
            (&["UNSUPPORTED"], 405),
            (&["MANIFEST_INVALID"], 400),
            (&["MANIFEST_BLOB_UNKNOWN"], 400),
            (&["SOMETHING_ELSE_UNKNOWN"], 400),
            (&["MANIFEST_UNKNOWN", "TOOMANYREQUESTS"], 429),
            (&["NOT_FOUND", "UNAUTHORIZED"], 401),
            (&[], 400),
        ] {
            assert_eq!(status_of(&registry_error(codes)), Some(status), "{codes:?}");
        }
        assert!(is_transient(&registry_error(&["TOOMANYREQUESTS"])));
        assert!(!is_transient(&registry_error(&["NOT_FOUND"])));
    }

    #[test]
    fn server_errors_are_transient_client_errors_are_not() {
        let server = OciDistributionError::ServerError {
            code: 503,
            url: "u".into(),
            message: "m".into(),
        };
        let client = OciDistributionError::ServerError {
            code: 400,
            url: "u".into(),
            message: "m".into(),
        };
        assert!(is_transient(&server));
        assert!(!is_transient(&client));
    }
}
