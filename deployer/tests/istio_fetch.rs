//! Where `deployer` re-implements istio-agent's module fetch (pull, inspect oci://, the digest
//! apply/render pin, status' http download), it must end where Istio ends: the linux/amd64
//! image of an index, every gzip member of a layer, retried rate limits, and nothing secret
//! published. Real registry: Debian's docker-registry; skopeo cross-checks; small fault
//! servers play what no real registry does on demand.
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deployer::oci::image::sha256_digest;
use deployer::oci::{Options, Transport};
use support::images::*;
use support::registry::Registry;
use support::tools;

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn index_is_pinned_and_pulled_at_its_linux_amd64_image_like_istio() {
    let registry = Registry::plain();
    let work = workdir();
    let dir = work.path();
    let repo = "filters/multi";
    let at = |tag: &str| format!("{}/{repo}:{tag}", registry.address());
    let (arm, amd) = (module("arm64 build"), module("amd64 build"));
    let arm_digest = push_compat(dir, &arm, &at("arm64"));
    let amd_digest = push_compat(dir, &amd, &at("amd64"));
    let size = manifest_size(&registry, repo, &amd_digest);
    // The arm64 entry comes first: "the first entry" or "the only one" would be wrong.
    let index_digest = push_index(
        &at("v1"),
        &[
            (&arm_digest, Some(("linux", "arm64"))),
            (&amd_digest, Some(("linux", "amd64"))),
        ],
        size,
    );

    // An independent client (containers/image) picks the same image for linux/amd64: the
    // layers it reports are the amd64 child's. (Its `Digest` is the index's, the ref's own.)
    let skopeo_view: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--override-os",
        "linux",
        "--override-arch",
        "amd64",
        &format!("docker://{}", at("v1")),
    ]))
    .unwrap();
    let amd_manifest: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/{repo}@{amd_digest}", registry.address()),
    ]))
    .unwrap();
    assert_eq!(
        skopeo_view["Layers"][0],
        amd_manifest["layers"][0]["digest"]
    );
    assert_eq!(skopeo_view["Digest"], index_digest.as_str());

    // render pins url and sha256 to the digest Istio compares: the child's, not the index's.
    let out = deployer(
        dir,
        &[
            "render",
            "p",
            "--image",
            &at("v1"),
            "--plain-http",
            "-o",
            "json",
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    let rendered: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        rendered["spec"]["url"],
        format!("oci://{}/{repo}@{amd_digest}", registry.address()).as_str()
    );
    assert_eq!(
        rendered["spec"]["sha256"],
        amd_digest.trim_start_matches("sha256:")
    );
    assert!(!out.stdout.contains(&index_digest), "index digest pinned");

    // pull and inspect take that same image.
    let pulled = dir.join("pulled.wasm");
    let out = deployer(
        dir,
        &[
            "pull",
            &at("v1"),
            "-O",
            pulled.to_str().unwrap(),
            "--plain-http",
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(std::fs::read(&pulled).unwrap(), amd, "the amd64 module");
    assert!(
        out.stdout.contains(&format!("digest: {amd_digest}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&index_digest), "{}", out.stdout);
    let out = deployer(
        dir,
        &[
            "inspect",
            &format!("oci://{}", at("v1")),
            "--plain-http",
            "-o",
            "json",
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["digest"], amd_digest.as_str());
    assert_eq!(report["index"]["digest"], index_digest.as_str());
    assert_eq!(report["index"]["platform"], "linux/amd64");
    assert_eq!(report["istio_compatible"], true);

    // An entry without a platform counts as linux/amd64 (go-containerregistry's rule).
    push_index(
        &at("unlabelled"),
        &[(&arm_digest, Some(("linux", "arm64"))), (&amd_digest, None)],
        size,
    );
    let out = deployer(
        dir,
        &[
            "inspect",
            &format!("oci://{}", at("unlabelled")),
            "--plain-http",
            "-o",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["digest"], amd_digest.as_str(), "{}", out.stderr);
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn index_without_linux_amd64_is_refused_as_istio_refuses_it() {
    let registry = Registry::plain();
    let work = workdir();
    let dir = work.path();
    let repo = "filters/wasi-only";
    let at = |tag: &str| format!("{}/{repo}:{tag}", registry.address());
    let digest = push_compat(dir, &module("wasi"), &at("child"));
    let size = manifest_size(&registry, repo, &digest);
    // One entry, for the platform wasm tools write: Istio's agent still wants linux/amd64.
    push_index(&at("v1"), &[(&digest, Some(("wasip1", "wasm")))], size);

    let out = deployer(
        dir,
        &["inspect", &format!("oci://{}", at("v1")), "--plain-http"],
    );
    assert!(!out.ok);
    assert!(
        out.stdout.contains("Istio-compatible: no"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("without a linux/amd64 entry"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("wasip1/wasm"), "{}", out.stdout);

    let pulled = dir.join("pulled.wasm");
    let out = deployer(
        dir,
        &[
            "pull",
            &at("v1"),
            "-O",
            pulled.to_str().unwrap(),
            "--plain-http",
        ],
    );
    assert!(
        !out.ok && out.stderr.contains("linux/amd64"),
        "{}",
        out.stderr
    );
    assert!(!pulled.exists());

    let out = deployer(dir, &["render", "p", "--image", &at("v1"), "--plain-http"]);
    assert!(!out.ok, "pinned an image Istio refuses:\n{}", out.stdout);
    assert!(
        out.stderr.contains("cannot pin") && out.stderr.contains("linux/amd64"),
        "{}",
        out.stderr
    );
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn multi_member_gzip_layer_pulls_byte_identical() {
    let registry = Registry::plain();
    let work = workdir();
    let dir = work.path();
    // Big enough that each of the four members holds part of plugin.wasm.
    let filler: String = (0..60_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let module = module(&filler);
    let reference = format!("{}/filters/pigz:v1", registry.address());
    push_multi_member(&module, 4, &reference);

    let pulled = dir.join("pulled.wasm");
    let out = deployer(
        dir,
        &[
            "pull",
            &reference,
            "-O",
            pulled.to_str().unwrap(),
            "--plain-http",
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    let bytes = std::fs::read(&pulled).unwrap();
    assert_eq!(bytes.len(), module.len());
    assert!(bytes == module, "pulled module differs from the pushed one");
    let out = deployer(
        dir,
        &["inspect", &format!("oci://{reference}"), "--plain-http"],
    );
    assert!(
        out.ok && out.stdout.contains("Istio-compatible: yes"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

/// A registry stand-in: `/v2/` answers 200; each manifest request gets the next of `answers`
/// (status, error code), the last one repeating. Counts the manifest requests.
fn fault_registry(answers: Vec<(u16, &'static str)>) -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (status, body) = if request.contains("/manifests/") {
                let i = seen.fetch_add(1, Ordering::SeqCst);
                let (status, code) = answers[i.min(answers.len() - 1)];
                let body = serde_json::json!({"errors": [{"code": code, "message": format!("{code} said the registry")}]});
                (status, body.to_string())
            } else {
                (200, "{}".to_string())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, count)
}

fn pull_from(port: u16, dir: &Path) -> Output {
    let out = dir.join("out.wasm");
    deployer(
        dir,
        &[
            "pull",
            &format!("127.0.0.1:{port}/filters/logger:v1"),
            "-O",
            out.to_str().unwrap(),
            "--plain-http",
            "--attempts",
            "3",
            "--retry-backoff",
            "20ms",
        ],
    )
}

#[test]
fn rate_limits_are_retried_and_not_found_says_404() {
    let work = workdir();
    let (port, requests) = fault_registry(vec![(429, "TOOMANYREQUESTS")]);
    let out = pull_from(port, work.path());
    assert!(!out.ok);
    assert!(
        out.stderr.contains("HTTP 429 after 3 attempt(s)")
            && out.stderr.contains("TOOMANYREQUESTS said"),
        "{}",
        out.stderr
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        3,
        "a rate limit is retried"
    );

    let (port, requests) = fault_registry(vec![(404, "NOT_FOUND")]);
    let out = pull_from(port, work.path());
    assert!(
        out.stderr.contains("not found in the registry (HTTP 404)"),
        "{}",
        out.stderr
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1, "a 404 is final");

    // Rate-limited twice, then the registry's real answer comes through.
    let (port, requests) = fault_registry(vec![
        (429, "TOOMANYREQUESTS"),
        (429, "TOOMANYREQUESTS"),
        (404, "MANIFEST_UNKNOWN"),
    ]);
    let out = pull_from(port, work.path());
    assert!(out.stderr.contains("(HTTP 404)"), "{}", out.stderr);
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn push_never_publishes_a_token_from_the_git_remote() {
    const CANARY: &str = "ghp_CANARYt0ken4242";
    let registry = Registry::plain();
    let work = workdir();
    let dir = work.path();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run git");
        assert!(status.status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        &format!("https://ci-bot:{CANARY}@github.example/org/filters.git"),
    ]);
    let reference = format!("{}/filters/canary:v1", registry.address());
    let file = dir.join("m.wasm");
    std::fs::write(&file, module("canary")).unwrap();
    let mut outputs = String::new();
    for format in ["text", "json"] {
        let out = deployer(
            dir,
            &[
                "push",
                file.to_str().unwrap(),
                &reference,
                "--plain-http",
                "-o",
                format,
            ],
        );
        assert!(out.ok, "{}", out.stderr);
        outputs.push_str(&out.stdout);
        outputs.push_str(&out.stderr);
    }
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://github.example/org/filters.git"
    );
    for (what, text) in [
        ("manifest", raw.as_str()),
        ("output", &outputs),
        ("registry log", &registry.log()),
    ] {
        assert!(!text.contains(CANARY), "the token reached the {what}");
        assert!(!text.contains("ci-bot"), "the user name reached the {what}");
    }
}

#[test]
fn since_takes_kubectl_durations_and_never_panics() {
    let work = workdir();
    for since in ["1.5h", "500ms", "2h45m", "0"] {
        let out = deployer(work.path(), &["logs", "p", "--since", since]);
        // No cluster here: the command gets past its flags and fails on the kubeconfig (2,
        // as every failure to do the work; a usage error would be 2 too, hence the text check).
        assert_eq!(out.code, Some(2), "--since {since}: {}", out.stderr);
        assert!(
            !out.stderr.contains("--since"),
            "--since {since} refused: {}",
            out.stderr
        );
    }
    for (since, says) in [
        ("9000000000000000h", "out of range"),
        ("-5m", "greater than 0"),
        ("400ms", "rounds to 0 seconds"),
        ("5d", "unknown unit"),
    ] {
        let flag = format!("--since={since}");
        let out = deployer(work.path(), &["logs", "p", &flag]);
        assert_eq!(out.code, Some(2), "--since {since}: {}", out.stderr);
        assert!(out.stderr.contains(says), "--since {since}: {}", out.stderr);
    }
}

/// An HTTPS file server (python's http.server behind a certificate from a test CA) serving
/// `dir`; returns the process, its port and the CA file.
struct HttpsServer {
    child: std::process::Child,
    port: u16,
    ca: PathBuf,
}

impl HttpsServer {
    fn start(dir: &Path, certs_dir: &Path) -> Self {
        let certs = support::registry::make_certificates(certs_dir);
        let port = tools::free_port();
        let script = format!(
            "import http.server, ssl, functools\n\
             handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={dir:?})\n\
             server = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), handler)\n\
             context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             context.load_cert_chain({cert:?}, {key:?})\n\
             server.socket = context.wrap_socket(server.socket, server_side=True)\n\
             server.serve_forever()\n",
            dir = dir.display().to_string(),
            cert = certs.server_cert.display().to_string(),
            key = certs.server_key.display().to_string(),
        );
        let child = std::process::Command::new(tools::require("python3"))
            .args(["-c", &script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start python3 https server");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "https server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            ca: certs.ca,
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_image_check(url: &str, transport: Transport) -> deployer::mesh::status::ImageCheck {
    let object = kube::api::DynamicObject::new("p", &deployer::cluster::wasmplugin::api_resource())
        .within("ns")
        .data(serde_json::json!({"spec": {"url": url}}));
    let plugin = deployer::mesh::Plugin::from_object(&object);
    let options = Options {
        transport,
        ..Options::default()
    };
    runtime().block_on(deployer::mesh::status::check_image(&plugin, &options))
}

#[test]
#[ignore = "tier tools: runs python3 (an HTTPS server) and openssl; scripts/test runs it"]
fn status_downloads_https_modules_with_the_tls_flags_and_istios_cap() {
    let work = workdir();
    let served = work.path().join("www");
    std::fs::create_dir_all(&served).unwrap();
    let wasm = module("over https");
    std::fs::write(served.join("m.wasm"), &wasm).unwrap();
    // One byte over Istio's 256 MiB: sparse, so it costs no disk.
    let big = std::fs::File::create(served.join("big.wasm")).unwrap();
    big.set_len(256 * 1024 * 1024 + 1).unwrap();
    let certs = work.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let server = HttpsServer::start(&served, &certs);
    let url = format!("https://127.0.0.1:{}/m.wasm", server.port);

    let untrusted = status_image_check(&url, Transport::default());
    assert_eq!(untrusted.reachable, Some(false));
    let error = untrusted.error.unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");

    let with_ca = Transport {
        ca_file: Some(server.ca.clone()),
        ..Transport::default()
    };
    let check = status_image_check(&url, with_ca.clone());
    assert_eq!(check.reachable, Some(true), "{:?}", check.error);
    assert_eq!(check.istio_compatible, Some(true));
    assert_eq!(check.digest, Some(sha256_digest(&wasm)));

    let insecure = Transport {
        insecure: true,
        ..Transport::default()
    };
    assert_eq!(status_image_check(&url, insecure).reachable, Some(true));

    let big = status_image_check(
        &format!("https://127.0.0.1:{}/big.wasm", server.port),
        with_ca,
    );
    assert_eq!(big.reachable, Some(false));
    let error = big.error.unwrap_or_default();
    assert!(error.contains("256 MiB"), "{error}");
}
