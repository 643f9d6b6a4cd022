//! Signed modules against a real registry (Debian's docker-registry), cross-checked with the
//! real cosign CLI (`scripts/setup cosign`): each side accepts the other's signatures, and
//! every way a signature can be wrong is a clear, non-zero refusal.
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use support::registry::Registry;
use support::tools;

const PASSWORD: &str = "correct-horse-battery-staple";

fn module_bytes() -> Vec<u8> {
    support::wasm::loadable_module("deployer signing test module")
}

struct Workspace {
    dir: tempfile::TempDir,
}

struct Run {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_ok(&self, what: &str) {
        assert!(self.ok, "{what} failed:\n{}\n{}", self.stdout, self.stderr);
    }
    /// The command could not do its work: exit status 2.
    fn assert_failed_saying(&self, needle: &str) {
        self.assert_exit_saying(2, needle);
    }
    /// `verify` checked and the answer is no: exit status 1.
    fn assert_refused_saying(&self, needle: &str) {
        self.assert_exit_saying(1, needle);
    }
    fn assert_exit_saying(&self, code: i32, needle: &str) {
        assert!(!self.ok, "expected a failure, got:\n{}", self.stdout);
        assert_eq!(self.code, Some(code), "exit status: {}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "stderr does not say {needle:?}:\n{}",
            self.stderr
        );
    }
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("docker")).expect("docker config dir");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn module(&self, name: &str, marker: &str) -> PathBuf {
        let path = self.path(name);
        let mut bytes = module_bytes();
        // A distinct module per call: distinct digests keep the tests independent.
        bytes.extend_from_slice(&[0, 1 + marker.len() as u8]);
        bytes.push(marker.len() as u8);
        bytes.extend_from_slice(marker.as_bytes());
        std::fs::write(&path, bytes).expect("write module");
        path
    }

    fn deployer(&self, args: &[&str], password: Option<&str>) -> Run {
        let mut command = tools::deployer();
        command
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env_remove("COSIGN_PASSWORD")
            .args(args);
        if let Some(password) = password {
            command.env("COSIGN_PASSWORD", password);
        }
        let output = command.output().expect("run deployer");
        Run {
            ok: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The real cosign, offline: its TUF cache and config stay in the workspace.
    fn cosign(&self, args: &[&str]) -> Run {
        let output = Command::new(tools::require("cosign"))
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("TUF_ROOT", self.path("tuf"))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("COSIGN_PASSWORD", PASSWORD)
            .args(args)
            .output()
            .expect("run cosign");
        Run {
            ok: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `cosign generate-key-pair` in DIR: cosign's encrypted cosign.key and cosign.pub.
    fn cosign_keys(&self, dir: &str) -> (PathBuf, PathBuf) {
        let dir_path = self.path(dir);
        std::fs::create_dir_all(&dir_path).unwrap();
        let output = Command::new(tools::require("cosign"))
            .current_dir(&dir_path)
            .env("HOME", self.dir.path())
            .env("COSIGN_PASSWORD", PASSWORD)
            .args(["generate-key-pair"])
            .output()
            .expect("run cosign generate-key-pair");
        assert!(
            output.status.success(),
            "cosign generate-key-pair: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let key = dir_path.join("cosign.key");
        let head = std::fs::read_to_string(&key).unwrap();
        assert!(
            head.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
            "{head}"
        );
        (key, dir_path.join("cosign.pub"))
    }

    fn push(
        &self,
        module: &Path,
        reference: &str,
        extra: &[&str],
        password: Option<&str>,
    ) -> serde_json::Value {
        let mut args = vec![
            module.to_str().unwrap(),
            reference,
            "--plain-http",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let mut full = vec!["push"];
        full.extend(args);
        let run = self.deployer(&full, password);
        run.assert_ok("deployer push");
        assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
        serde_json::from_str(&run.stdout).expect("push -o json")
    }
}

fn digest_of(pushed: &serde_json::Value) -> String {
    pushed["digest"].as_str().expect("digest").to_string()
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry) and cosign (scripts/setup cosign); scripts/test runs it"]
fn deployer_signature_is_accepted_by_cosign_verify() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let (key, public) = workspace.cosign_keys("keys");
    let reference = format!("{}/filters/signed:v1", registry.address());

    // Timing: the same push without and with signing (distinct modules, cold uploads both).
    let plain_module = workspace.module("a.wasm", "plain");
    let start = Instant::now();
    workspace.push(
        &plain_module,
        &format!("{}/filters/unsigned:v1", registry.address()),
        &[],
        None,
    );
    let push_only = start.elapsed();
    let module = workspace.module("b.wasm", "signed");
    let start = Instant::now();
    let pushed = workspace.push(
        &module,
        &reference,
        &["--sign-key", key.to_str().unwrap()],
        Some(PASSWORD),
    );
    let push_and_sign = start.elapsed();
    eprintln!(
        "timing: push {:?}, push --sign-key {:?} (signing adds {:?}, mostly scrypt on cosign's key)",
        push_only,
        push_and_sign,
        push_and_sign.saturating_sub(push_only)
    );
    let digest = digest_of(&pushed);
    let signature = &pushed["signature"];
    assert_eq!(signature["digest"], digest.as_str());
    assert_eq!(
        signature["signature_ref"],
        format!(
            "{}/filters/signed:{}.sig",
            registry.address(),
            digest.replace(':', "-")
        )
    );

    let pinned = format!("{}/filters/signed@{digest}", registry.address());
    let verified = workspace.cosign(&[
        "verify",
        "--key",
        public.to_str().unwrap(),
        "--insecure-ignore-tlog",
        "--allow-insecure-registry",
        &pinned,
    ]);
    verified.assert_ok("cosign verify of the deployer's signature");
    assert!(verified.stdout.contains(&digest), "{}", verified.stdout);

    let ours = workspace.deployer(
        &[
            "verify",
            &reference,
            "--key",
            public.to_str().unwrap(),
            "--plain-http",
        ],
        None,
    );
    ours.assert_ok("deployer verify");
    assert!(
        ours.stdout
            .contains(&format!("verified: {reference} ({digest})")),
        "{}",
        ours.stdout
    );

    // Signing again is idempotent: deterministic signatures, no second layer.
    let again = workspace.deployer(
        &[
            "sign",
            &reference,
            "--key",
            key.to_str().unwrap(),
            "--plain-http",
            "-o",
            "json",
        ],
        Some(PASSWORD),
    );
    again.assert_ok("deployer sign (again)");
    let again: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["already_signed"], true, "{again}");
    assert_eq!(
        again["signature_digest"], signature["signature_digest"],
        "{again}"
    );
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry) and cosign (scripts/setup cosign); scripts/test runs it"]
fn cosign_signature_is_accepted_by_deployer_verify_and_only_under_its_key() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let (key, public) = workspace.cosign_keys("keys");
    let (_, other_public) = workspace.cosign_keys("other");
    let reference = format!("{}/filters/cosigned:v1", registry.address());
    let pushed = workspace.push(
        &workspace.module("c.wasm", "cosigned"),
        &reference,
        &[],
        None,
    );
    let digest = digest_of(&pushed);
    let pinned = format!("{}/filters/cosigned@{digest}", registry.address());

    let signed = workspace.cosign(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--tlog-upload=false",
        "--allow-insecure-registry",
        "-y",
        &pinned,
    ]);
    signed.assert_ok("cosign sign");

    let ours = workspace.deployer(
        &[
            "verify",
            &reference,
            "--key",
            public.to_str().unwrap(),
            "--plain-http",
        ],
        None,
    );
    ours.assert_ok("deployer verify of cosign's signature");

    let wrong = workspace.deployer(
        &[
            "verify",
            &reference,
            "--key",
            other_public.to_str().unwrap(),
            "--plain-http",
        ],
        None,
    );
    wrong.assert_refused_saying("no valid signature");
    wrong.assert_refused_saying("does not match the payload under this key");
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry) and cosign (scripts/setup cosign); scripts/test runs it"]
fn missing_tampered_and_wrong_password_are_clear_failures() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let (key, public) = workspace.cosign_keys("keys");
    let reference = format!("{}/filters/bad:v1", registry.address());
    let pushed = workspace.push(&workspace.module("d.wasm", "bad"), &reference, &[], None);
    let digest = digest_of(&pushed);
    let public = public.to_str().unwrap();

    // Missing: nothing signed yet.
    let missing = workspace.deployer(
        &["verify", &reference, "--key", public, "--plain-http"],
        None,
    );
    missing.assert_refused_saying("is not signed");

    // Wrong password: refused before any request, and neither password is echoed.
    let wrong = workspace.deployer(
        &[
            "sign",
            &reference,
            "--key",
            key.to_str().unwrap(),
            "--plain-http",
        ],
        Some("not-the-password"),
    );
    wrong.assert_failed_saying("wrong password");
    for text in [&wrong.stdout, &wrong.stderr] {
        assert!(
            !text.contains("not-the-password") && !text.contains(PASSWORD),
            "{text}"
        );
    }
    // push --sign-key with the wrong password uploads nothing at all.
    let module = workspace.module("e.wasm", "never");
    let never = format!("{}/filters/never:v1", registry.address());
    let push = workspace.deployer(
        &[
            "push",
            module.to_str().unwrap(),
            &never,
            "--plain-http",
            "--sign-key",
            key.to_str().unwrap(),
        ],
        Some("not-the-password"),
    );
    push.assert_failed_saying("wrong password");
    assert!(!push.stderr.contains("not-the-password"), "{}", push.stderr);
    assert!(
        !registry.catalog().contains(&"filters/never".to_string()),
        "{:?}",
        registry.catalog()
    );
    let no_password = workspace.deployer(
        &[
            "sign",
            &reference,
            "--key",
            key.to_str().unwrap(),
            "--plain-http",
        ],
        None,
    );
    no_password.assert_failed_saying("COSIGN_PASSWORD");
    workspace
        .deployer(
            &["verify", &reference, "--key", public, "--plain-http"],
            None,
        )
        .assert_refused_saying("is not signed");

    // Tampered: a valid signature with one byte of its DER changed, re-uploaded.
    workspace
        .deployer(
            &[
                "sign",
                &reference,
                "--key",
                key.to_str().unwrap(),
                "--plain-http",
            ],
            Some(PASSWORD),
        )
        .assert_ok("deployer sign");
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let url = format!(
        "http://{}/v2/filters/bad/manifests/{tag}",
        registry.address()
    );
    let manifest = curl(&[
        "-fsS",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &url,
    ]);
    let mut manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let annotation =
        &mut manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"];
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut der = b64.decode(annotation.as_str().unwrap()).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    *annotation = serde_json::Value::String(b64.encode(der));
    let file = workspace.path("tampered.json");
    std::fs::write(&file, manifest.to_string()).unwrap();
    curl(&[
        "-fsS",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", file.display()),
        &url,
    ]);
    let tampered = workspace.deployer(
        &["verify", &reference, "--key", public, "--plain-http"],
        None,
    );
    tampered.assert_refused_saying("no valid signature");
    tampered.assert_refused_saying("does not match the payload");
    // cosign agrees.
    let cosign = workspace.cosign(&[
        "verify",
        "--key",
        public,
        "--insecure-ignore-tlog",
        "--allow-insecure-registry",
        &format!("{}/filters/bad@{digest}", registry.address()),
    ]);
    assert!(
        !cosign.ok,
        "cosign accepted a tampered signature: {}",
        cosign.stdout
    );
}

fn curl(args: &[&str]) -> String {
    let output = Command::new(tools::require("curl"))
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry) and cosign (scripts/setup cosign); scripts/test runs it"]
fn an_index_is_signed_and_verified_at_the_linux_amd64_image_istio_pulls() {
    use support::images::{manifest_size, module, push_compat, push_index};
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let (key, public) = workspace.cosign_keys("keys");
    let repo = "filters/multi-signed";
    let at = |tag: &str| format!("{}/{repo}:{tag}", registry.address());
    let dir = workspace.dir.path();
    let arm_digest = push_compat(dir, &module("signed arm64"), &at("arm64"));
    let amd_digest = push_compat(dir, &module("signed amd64"), &at("amd64"));
    let size = manifest_size(&registry, repo, &amd_digest);
    let index_digest = push_index(
        &at("v1"),
        &[
            (&arm_digest, Some(("linux", "arm64"))),
            (&amd_digest, Some(("linux", "amd64"))),
        ],
        size,
    );

    let signed = workspace.deployer(
        &[
            "sign",
            &at("v1"),
            "--key",
            key.to_str().unwrap(),
            "--plain-http",
            "-o",
            "json",
        ],
        Some(PASSWORD),
    );
    signed.assert_ok("deployer sign of an index");
    let signed: serde_json::Value = serde_json::from_str(&signed.stdout).unwrap();
    assert_eq!(signed["digest"], amd_digest.as_str(), "{signed}");
    assert_ne!(amd_digest, index_digest);

    let public = public.to_str().unwrap();
    workspace
        .deployer(
            &["verify", &at("v1"), "--key", public, "--plain-http"],
            None,
        )
        .assert_ok("deployer verify of the index");
    // The arm64 image was not signed, and Istio never pulls it for this index.
    workspace
        .deployer(
            &["verify", &at("arm64"), "--key", public, "--plain-http"],
            None,
        )
        .assert_refused_saying("is not signed");
    // cosign finds our signature on the child digest.
    workspace
        .cosign(&[
            "verify",
            "--key",
            public,
            "--insecure-ignore-tlog",
            "--allow-insecure-registry",
            &format!("{}/{repo}@{amd_digest}", registry.address()),
        ])
        .assert_ok("cosign verify of the signed child");
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry) and cosign (scripts/setup cosign); scripts/test runs it"]
fn openssl_keys_sign_and_cosign_verifies_with_the_openssl_public_key() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let reference = format!("{}/filters/openssl:v1", registry.address());
    let pushed = workspace.push(
        &workspace.module("f.wasm", "openssl"),
        &reference,
        &[],
        None,
    );
    let digest = digest_of(&pushed);
    let openssl = |args: &[&str]| {
        let output = Command::new(tools::require("openssl"))
            .current_dir(workspace.dir.path())
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    // SEC1 ("EC PRIVATE KEY") and PKCS#8 ("PRIVATE KEY"), as openssl writes them.
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "sec1.key",
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "pkcs8.key",
    ]);
    for name in ["sec1", "pkcs8"] {
        openssl(&[
            "ec",
            "-in",
            &format!("{name}.key"),
            "-pubout",
            "-out",
            &format!("{name}.pub"),
        ]);
        let key = workspace.path(&format!("{name}.key"));
        workspace
            .deployer(
                &[
                    "sign",
                    &reference,
                    "--key",
                    key.to_str().unwrap(),
                    "--plain-http",
                ],
                None,
            )
            .assert_ok("deployer sign with an openssl key");
        let public = workspace.path(&format!("{name}.pub"));
        workspace
            .cosign(&[
                "verify",
                "--key",
                public.to_str().unwrap(),
                "--insecure-ignore-tlog",
                "--allow-insecure-registry",
                &format!("{}/filters/openssl@{digest}", registry.address()),
            ])
            .assert_ok("cosign verify with the openssl public key");
    }
    // Both signatures sit side by side in the one .sig image; each key verifies its own.
    for name in ["sec1", "pkcs8"] {
        let public = workspace.path(&format!("{name}.pub"));
        workspace
            .deployer(
                &[
                    "verify",
                    &reference,
                    "--key",
                    public.to_str().unwrap(),
                    "--plain-http",
                ],
                None,
            )
            .assert_ok("deployer verify with the openssl public key");
    }
    // A P-384 key is refused by name, before any request.
    openssl(&[
        "ecparam",
        "-name",
        "secp384r1",
        "-genkey",
        "-noout",
        "-out",
        "p384.key",
    ]);
    let key = workspace.path("p384.key");
    workspace
        .deployer(
            &[
                "sign",
                &reference,
                "--key",
                key.to_str().unwrap(),
                "--plain-http",
            ],
            None,
        )
        .assert_failed_saying("not an ECDSA P-256 key");
}

/// Runs `deployer ARGS` on a pseudo-terminal (util-linux `script`), typing `typed` once the
/// prompt is up; returns everything the terminal showed.
fn on_terminal(workspace: &Workspace, args: &[&str], typed: &str) -> (bool, String) {
    let deployer = assert_cmd::cargo::cargo_bin("deployer");
    let mut line = deployer.display().to_string();
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut child = Command::new(tools::require("script"))
        .args(["-qec", &line, "/dev/null"])
        .current_dir(workspace.dir.path())
        .env("DOCKER_CONFIG", workspace.path("docker"))
        .env_remove("COSIGN_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run script");
    // Typed after the prompt has switched echo off, as a person would.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{typed}\n").as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().expect("wait for script");
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), shown)
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry) and cosign (scripts/setup cosign); scripts/test runs it"]
fn the_password_is_asked_on_a_terminal_without_echo() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let (key, public) = workspace.cosign_keys("keys");
    let reference = format!("{}/filters/prompted:v1", registry.address());
    workspace.push(
        &workspace.module("g.wasm", "prompted"),
        &reference,
        &[],
        None,
    );
    let key = key.to_str().unwrap();

    let (ok, shown) = on_terminal(
        &workspace,
        &["sign", &reference, "--key", key, "--plain-http"],
        "typo-password",
    );
    assert!(
        !ok && shown.contains("Enter password for") && shown.contains("wrong password"),
        "{shown}"
    );
    assert!(
        !shown.contains("typo-password"),
        "the password was echoed: {shown}"
    );

    let (ok, shown) = on_terminal(
        &workspace,
        &["sign", &reference, "--key", key, "--plain-http"],
        PASSWORD,
    );
    assert!(ok, "{shown}");
    assert!(
        !shown.contains(PASSWORD),
        "the password was echoed: {shown}"
    );
    workspace
        .deployer(
            &[
                "verify",
                &reference,
                "--key",
                public.to_str().unwrap(),
                "--plain-http",
            ],
            None,
        )
        .assert_ok("deployer verify after a prompted sign");
}
