//! A real OCI registry (Debian's `docker-registry`, distribution 2.8) on a free loopback port,
//! in its own temp dir: plain HTTP and anonymous, or TLS with a CA made for the test plus
//! htpasswd (bcrypt) basic auth. Deletes are enabled. Dropping it kills the process.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools;

pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    /// The CA that signed the registry's certificate (TLS set-up only).
    pub ca: Option<PathBuf>,
    /// `(user, password)` the registry accepts (TLS set-up only).
    pub credentials: Option<(String, String)>,
}

/// What every registry here shares: storage in `dir` with deletes enabled, an access log, and
/// 127.0.0.1:`port`; set-ups append their `tls:` / `auth:` sections.
fn base_config(dir: &Path, port: u16) -> String {
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        data = dir.join("data").display()
    )
}

impl Registry {
    /// Plain HTTP, anonymous access.
    pub fn plain() -> Self {
        Self::start(None)
    }

    /// HTTPS with a certificate for 127.0.0.1/localhost signed by a fresh CA, and basic auth.
    pub fn secure(user: &str, password: &str) -> Self {
        Self::start(Some((user, password)))
    }

    fn start(secure: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the registry");
        let port = tools::free_port();
        let mut config = base_config(dir.path(), port);
        let (mut ca, mut credentials) = (None, None);
        if let Some((user, password)) = secure {
            let certs = make_certificates(dir.path());
            config.push_str(&format!(
                // The realm is only a label for basic auth, but istio-agent (1.31+, SSRF
                // protection in pkg/wasm/imagefetcher.go) refuses any 401 whose realm is not an
                // http(s) URL of a public host, so it is written as one.
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: https://deployer-test.invalid/\n    path: {}\n",
                certs.server_cert.display(),
                certs.server_key.display(),
                make_htpasswd(dir.path(), user, password).display()
            ));
            ca = Some(certs.ca);
            credentials = Some((user.to_string(), password.to_string()));
        }
        Self::serve(dir, port, &config, ca, credentials)
    }

    /// Starts docker-registry on `config` (written to `dir`, logging to `dir`/registry.log)
    /// and waits until it answers.
    fn serve(
        dir: tempfile::TempDir,
        port: u16,
        config: &str,
        ca: Option<PathBuf>,
        credentials: Option<(String, String)>,
    ) -> Self {
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log =
            std::fs::File::create(dir.path().join("registry.log")).expect("registry log file");
        let child = Command::new(tools::require("docker-registry"))
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry {
            child,
            dir,
            port,
            ca,
            credentials,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on 127.0.0.1:{} within 20 s:\n{}",
            self.port,
            self.log()
        );
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the registry logged so far (access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines of blob upload requests (POST/PATCH/PUT on `/blobs/uploads/`).
    pub fn upload_requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains("/blobs/uploads/") && !line.contains("msg="))
            .map(str::to_string)
            .collect()
    }

    /// A directory skopeo's `--cert-dir` accepts (holds the CA as ca.crt).
    pub fn cert_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("certs.d");
        std::fs::create_dir_all(&dir).expect("cert dir");
        std::fs::copy(self.ca.as_ref().expect("TLS registry"), dir.join("ca.crt"))
            .expect("copy CA");
        dir
    }

    /// Repositories from `GET /v2/_catalog` (plain-HTTP registries only).
    pub fn catalog(&self) -> Vec<String> {
        assert!(self.ca.is_none(), "catalog() speaks plain HTTP");
        let body = http_get(self.port, "/v2/_catalog");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|err| panic!("catalog {body:?}: {err}"));
        json["repositories"]
            .as_array()
            .map(|repos| {
                repos
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the registry");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "GET {path}: {head}"
    );
    body.to_string()
}

pub struct Certificates {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(tools::require(program))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A throwaway CA and a server certificate for 127.0.0.1/localhost (ECDSA P-256), via openssl.
pub fn make_certificates(dir: &Path) -> Certificates {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca_args = vec!["req", "-x509"];
    ca_args.extend(ec);
    ca_args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=deployer test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(dir, "openssl", &ca_args);
    let mut csr_args = vec!["req"];
    csr_args.extend(ec);
    csr_args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(dir, "openssl", &csr_args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write cert extensions");
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    Certificates {
        ca: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    }
}

/// A bcrypt htpasswd file (the only hash docker-registry accepts).
fn make_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let entry = run(dir, "htpasswd", &["-Bbn", user, password]);
    let path = dir.join("htpasswd");
    std::fs::write(&path, entry).expect("write htpasswd");
    path
}

/// A registry behind bearer-token auth (distribution's `auth.token`), with a small token
/// service on another port that signs real ES256 JWTs (x5c chain to the registry's trusted
/// root, made with openssl). It grants `pull,push` on `repository` to either basic credentials
/// `(user, password)` (GET, Docker's token flow) or the OAuth2 refresh token `identity_token`
/// (POST, `grant_type=refresh_token`), and answers 401 to anything else.
pub struct TokenRegistry {
    pub registry: Registry,
    pub token_port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl TokenRegistry {
    pub fn start(repository: &str, user: &str, password: &str, identity_token: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the registry");
        let port = tools::free_port();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the token service");
        let token_port = listener.local_addr().expect("token service address").port();
        let service = "deployer-test-registry";
        let issuer = "deployer-test-issuer";

        run(
            dir.path(),
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.crt",
                "-days",
                "2",
                "-subj",
                "/CN=deployer test token signer",
            ],
        );
        let jwt = sign_jwt(dir.path(), issuer, service, repository);

        let config = format!(
            "{base}auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: {service}\n\
             \x20   issuer: {issuer}\n    rootcertbundle: {root}\n",
            base = base_config(dir.path(), port),
            root = dir.path().join("token.crt").display(),
        );
        let registry = Registry::serve(
            dir,
            port,
            &config,
            None,
            Some((user.into(), password.into())),
        );

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let basic = {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        };
        let refresh = format!("refresh_token={identity_token}");
        let server = std::thread::spawn({
            let stop = stop.clone();
            move || {
                for stream in listener.incoming() {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let (head, body) = read_request(&mut stream);
                    let authorized = if head.starts_with("POST ") {
                        body.split('&').any(|pair| pair == refresh)
                            && body.contains("grant_type=refresh_token")
                    } else {
                        head.lines().any(|line| {
                            line.split_once(':').is_some_and(|(name, value)| {
                                name.eq_ignore_ascii_case("authorization") && value.trim() == basic
                            })
                        })
                    };
                    let (status, reply) = if authorized {
                        (
                            "200 OK",
                            format!(
                                r#"{{"token":"{jwt}","access_token":"{jwt}","expires_in":3600}}"#
                            ),
                        )
                    } else {
                        (
                            "401 Unauthorized",
                            r#"{"details":"bad credentials"}"#.to_string(),
                        )
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                }
            }
        });
        TokenRegistry {
            registry,
            token_port,
            stop,
            server: Some(server),
        }
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.token_port));
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> (String, String) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return (head.to_string(), body.to_string());
            }
        }
    }
    let text = String::from_utf8_lossy(&data).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

/// An ES256 JWT in the shape distribution's token auth verifies: x5c header with the signing
/// certificate (trusted through rootcertbundle), issuer, audience, validity, and access claims.
fn sign_jwt(dir: &Path, issuer: &str, service: &str, repository: &str) -> String {
    use base64::Engine;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let std_b64 = base64::engine::general_purpose::STANDARD;
    let der = run(
        dir,
        "openssl",
        &["x509", "-in", "token.crt", "-outform", "DER"],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = serde_json::json!({ "typ": "JWT", "alg": "ES256", "x5c": [std_b64.encode(der)] });
    let claims = serde_json::json!({
        "iss": issuer, "sub": "deployer-test", "aud": service,
        "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": format!("jti-{now}"),
        "access": [{ "type": "repository", "name": repository, "actions": ["pull", "push"] }],
    });
    let signing_input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    std::fs::write(dir.join("jwt.in"), &signing_input).expect("write signing input");
    let der_signature = run(
        dir,
        "openssl",
        &["dgst", "-sha256", "-sign", "token.key", "jwt.in"],
    );
    format!(
        "{signing_input}.{}",
        url.encode(ecdsa_der_to_raw(&der_signature))
    )
}

/// JWS wants ES256 signatures as r||s (32 bytes each); openssl writes DER SEQUENCE{r, s}.
fn ecdsa_der_to_raw(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "DER sequence");
    let mut at = if der[1] & 0x80 != 0 {
        2 + (der[1] & 0x7f) as usize
    } else {
        2
    };
    let mut raw = Vec::with_capacity(64);
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "DER integer");
        let len = der[at + 1] as usize;
        let int = &der[at + 2..at + 2 + len];
        let int = if int.len() > 32 {
            &int[int.len() - 32..]
        } else {
            int
        };
        raw.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        raw.extend_from_slice(int);
        at += 2 + len;
    }
    raw
}
