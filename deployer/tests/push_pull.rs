//! `deployer push` / `pull` / `inspect oci://` against a real registry (Debian's docker-registry),
//! cross-checked with an independent client (skopeo).
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::registry::Registry;
use support::tools;

fn module_bytes() -> Vec<u8> {
    support::wasm::loadable_module("deployer push/pull test module")
}

struct Workspace {
    dir: tempfile::TempDir,
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

    fn module(&self) -> PathBuf {
        let path = self.path("plugin.wasm");
        std::fs::write(&path, module_bytes()).expect("write module");
        path
    }

    /// The deployer, isolated from the host's docker config and CI detection.
    fn deployer(&self) -> assert_cmd::Command {
        let mut command = tools::deployer();
        command
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env_remove("SOURCE_DATE_EPOCH");
        command
    }

    /// Replaces the isolated docker config (what `docker login` and friends write).
    fn docker_config(&self, config: serde_json::Value) {
        std::fs::write(self.path("docker/config.json"), config.to_string())
            .expect("write docker config");
    }

    /// Runs the deployer with `args`, feeding `stdin` when given.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut command = self.deployer();
        command.args(args);
        if let Some(stdin) = stdin {
            command.write_stdin(stdin.to_string());
        }
        run(command)
    }

    /// `deployer pull SOURCE -O OUT EXTRA...`.
    fn pull(&self, source: &str, out: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["pull", source, "-O", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args, None)
    }
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(mut command: assert_cmd::Command) -> Run {
    let output = command.output().expect("run deployer");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Run {
    /// The command failed, and its stderr says every one of `needles`.
    fn assert_failed_saying(&self, needles: &[&str]) {
        assert!(!self.ok, "expected a failure, got:\n{}", self.stdout);
        assert!(
            needles.iter().all(|needle| self.stderr.contains(needle)),
            "{}",
            self.stderr
        );
    }
}

fn push_json(workspace: &Workspace, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    let mut push_args = vec!["push"];
    push_args.extend_from_slice(args);
    push_args.extend_from_slice(&["-o", "json"]);
    let result = workspace.run(&push_args, stdin);
    assert!(result.ok, "push {args:?} failed:\n{}", result.stderr);
    serde_json::from_str(&result.stdout)
        .unwrap_or_else(|err| panic!("push -o json printed {:?}: {err}", result.stdout))
}

fn skopeo(args: &[&str]) -> String {
    let output = Command::new(tools::require("skopeo"))
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn skopeo_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&skopeo(args)).unwrap()
}

/// plugin.wasm from a tar+gzip layer file, read with the tar/flate2 crates (not our code).
fn untar_plugin(layer: &Path) -> Vec<u8> {
    let file = std::fs::File::open(layer).expect("open layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if entry.path().expect("entry path").to_string_lossy() == "plugin.wasm" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read plugin.wasm");
            return bytes;
        }
    }
    panic!("no plugin.wasm in {}", layer.display());
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn push_is_seen_by_skopeo_and_round_trips_byte_identical() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    // The real filter, built by `deployer build`.
    let module = support::wasm::filter_module();
    let expected = std::fs::read(&module).expect("read the built filter");
    let reference = format!("{}/filters/logger:v1", registry.address());
    let pushed = push_json(
        &workspace,
        &[module.to_str().unwrap(), &reference, "--plain-http"],
        None,
    );

    let digest = pushed["digest"].as_str().expect("digest");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{pushed}"
    );
    assert_eq!(pushed["url"], format!("oci://{reference}@{digest}"));
    assert_eq!(pushed["sha256"], digest.trim_start_matches("sha256:"));
    assert!(pushed["size"].as_u64().unwrap() > 0);

    // An independent client sees the layout Istio expects.
    let docker_ref = format!("docker://{reference}");
    let raw = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &docker_ref]);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(raw["annotations"]["module.wasm.image/variant"], "compat");
    let inspected = skopeo_json(&["inspect", "--tls-verify=false", &docker_ref]);
    assert_eq!(
        inspected["Digest"], digest,
        "skopeo computes the same manifest digest"
    );
    assert_eq!(inspected["Architecture"], "wasm");

    // skopeo copy to a directory: the layer untars to the very bytes we pushed.
    let copy = workspace.path("copy");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        &docker_ref,
        &format!("dir:{}", copy.display()),
    ]);
    let layer_hex = raw["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    assert_eq!(untar_plugin(&copy.join(layer_hex)), expected);

    // deployer pull, by tag and by the pinned url, gives back the same bytes.
    for source in [
        reference.clone(),
        pushed["url"].as_str().unwrap().to_string(),
    ] {
        let out = workspace.path("pulled.wasm");
        let result = workspace.pull(&source, &out, &["--plain-http"]);
        assert!(result.ok, "pull {source} failed:\n{}", result.stderr);
        assert!(
            result.stdout.contains(digest),
            "pull names the digest: {}",
            result.stdout
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            expected,
            "pull of {source} is byte-identical"
        );
    }

    // The same image converted by skopeo to a Docker v2 manifest (Istio's first rule).
    let docker_v2 = format!("docker://{}/filters/docker:v1", registry.address());
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &docker_ref,
        &docker_v2,
    ]);
    let out = workspace.path("docker.wasm");
    let result = workspace.pull(
        docker_v2.trim_start_matches("docker://"),
        &out,
        &["--plain-http"],
    );
    assert!(
        result.ok,
        "pull of the Docker v2 image failed:\n{}",
        result.stderr
    );
    assert!(result.stdout.contains("Docker image"), "{}", result.stdout);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn re_push_uploads_no_blob_and_keeps_the_digest() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let module = workspace.module();
    let reference = format!("{}/filters/logger:v1", registry.address());
    let args = [module.to_str().unwrap(), reference.as_str(), "--plain-http"];
    let first = push_json(&workspace, &args, None);
    assert_eq!(first["uploaded_blobs"], 2, "{first}");
    let uploads_before = registry.upload_requests().len();
    assert!(
        uploads_before >= 2,
        "the registry logged the first uploads:\n{}",
        registry.log()
    );

    let second = push_json(&workspace, &args, None);
    assert_eq!(
        second["digest"], first["digest"],
        "same module, same manifest digest"
    );
    assert_eq!(second["uploaded_blobs"], 0, "{second}");
    assert_eq!(second["uploaded_bytes"], 0, "{second}");
    assert_eq!(
        registry.upload_requests().len(),
        uploads_before,
        "the registry saw no new blob upload"
    );

    // Another tag of the same module: same digest, still nothing uploaded.
    let other = format!("{}/filters/logger:v2", registry.address());
    let third = push_json(
        &workspace,
        &[module.to_str().unwrap(), &other, "--plain-http"],
        None,
    );
    assert_eq!(third["digest"], first["digest"]);
    assert_eq!(third["uploaded_blobs"], 0);
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn raw_oci_variant_round_trips() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let module = workspace.module();
    let reference = format!("{}/filters/raw:v1", registry.address());
    let pushed = push_json(
        &workspace,
        &[
            module.to_str().unwrap(),
            &reference,
            "--plain-http",
            "--layout",
            "oci",
        ],
        None,
    );
    let raw = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ]);
    let layers = raw["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{raw}");
    assert!(
        layers
            .iter()
            .any(|l| l["mediaType"] == "application/vnd.module.wasm.content.layer.v1+wasm")
    );
    let out = workspace.path("pulled.wasm");
    let result = workspace.pull(pushed["url"].as_str().unwrap(), &out, &["--plain-http"]);
    assert!(result.ok, "{}", result.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), module_bytes());
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn source_date_epoch_is_honoured_and_reproducible() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let module = workspace.module();
    let reference = format!("{}/filters/dated:v1", registry.address());
    let mut digests = Vec::new();
    for _ in 0..2 {
        let mut command = workspace.deployer();
        command.env("SOURCE_DATE_EPOCH", "1700000000").args([
            "push",
            module.to_str().unwrap(),
            &reference,
            "--plain-http",
            "-o",
            "json",
        ]);
        let result = run(command);
        assert!(result.ok, "{}", result.stderr);
        let json: serde_json::Value = serde_json::from_str(&result.stdout).unwrap();
        digests.push(json["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1]);
    let config = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        "--config",
        &format!("docker://{reference}"),
    ]);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn tls_registry_with_basic_auth() {
    let registry = Registry::secure("alice", "s3cret-pass");
    let workspace = Workspace::new();
    let module = workspace.module();
    let ca = registry.ca.clone().unwrap();
    let reference = format!("{}/secure/logger:v1", registry.address());
    let module_arg = module.to_str().unwrap();
    let ca_arg = ca.to_str().unwrap();

    let pushed = push_json(
        &workspace,
        &[
            module_arg,
            &reference,
            "--ca-file",
            ca_arg,
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("s3cret-pass\n"),
    );
    let digest = pushed["digest"].as_str().unwrap();

    // skopeo, trusting the same CA, with the same credentials.
    let inspected = skopeo_json(&[
        "inspect",
        "--cert-dir",
        registry.cert_dir().to_str().unwrap(),
        "--creds",
        "alice:s3cret-pass",
        &format!("docker://{reference}"),
    ]);
    assert_eq!(inspected["Digest"], digest);

    let out = workspace.path("pulled.wasm");
    let result = workspace.run(
        &[
            "pull",
            &reference,
            "-O",
            out.to_str().unwrap(),
            "--ca-file",
            ca_arg,
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("s3cret-pass"),
    );
    assert!(result.ok, "{}", result.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), module_bytes());

    // Verified TLS by default: without the CA the push is refused, with a hint.
    workspace
        .run(
            &[
                "push",
                module_arg,
                &reference,
                "--username",
                "alice",
                "--password-stdin",
            ],
            Some("s3cret-pass"),
        )
        .assert_failed_saying(&["TLS", "--ca-file"]);

    // --insecure skips verification on request.
    let result = workspace.run(
        &[
            "push",
            module_arg,
            &reference,
            "--insecure",
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("s3cret-pass"),
    );
    assert!(result.ok, "{}", result.stderr);

    // Wrong password: a clear 401 that names the user, never the password.
    let result = workspace.run(
        &[
            "push",
            module_arg,
            &reference,
            "--ca-file",
            ca_arg,
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("Wr0ng-Pa55word"),
    );
    result.assert_failed_saying(&["401", "alice"]);
    assert!(!result.stderr.contains("Wr0ng-Pa55word") && !result.stdout.contains("Wr0ng-Pa55word"));

    // No credentials at all: 401 with what to do.
    workspace
        .run(&["push", module_arg, &reference, "--ca-file", ca_arg], None)
        .assert_failed_saying(&["401", "--password-stdin"]);
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn docker_config_with_credential_helper_and_auths() {
    let registry = Registry::secure("bob", "helper-pass");
    let workspace = Workspace::new();
    let module = workspace.module();
    let ca = registry.ca.clone().unwrap();
    let reference = format!("{}/helper/logger:v1", registry.address());

    // A credential helper: a tiny program speaking the docker-credential-helpers protocol.
    let bin = workspace.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-testhelper");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> \"{log}\"\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"bob\",\"Secret\":\"helper-pass\"}}' \"$server\"\n",
            log = workspace.path("helper.log").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    workspace
        .docker_config(serde_json::json!({ "credHelpers": { registry.address(): "testhelper" } }));

    let mut push = workspace.deployer();
    push.env("PATH", &path).args([
        "push",
        module.to_str().unwrap(),
        &reference,
        "--ca-file",
        ca.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let result = run(push);
    assert!(
        result.ok,
        "push with a credential helper failed:\n{}",
        result.stderr
    );
    let asked =
        std::fs::read_to_string(workspace.path("helper.log")).expect("the helper was asked");
    assert!(
        asked.contains(&registry.address()),
        "helper asked for {asked:?}"
    );

    let out = workspace.path("pulled.wasm");
    let mut pull = workspace.deployer();
    pull.env("PATH", &path).args([
        "pull",
        &reference,
        "-O",
        out.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    let result = run(pull);
    assert!(result.ok, "{}", result.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), module_bytes());

    // The same through a plain `auths` entry (what `docker login` writes without a store).
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:helper-pass");
    workspace.docker_config(serde_json::json!({ "auths": { format!("https://{}", registry.address()): { "auth": auth } } }));
    let push_args = [
        "push",
        module.to_str().unwrap(),
        &reference,
        "--ca-file",
        ca.to_str().unwrap(),
    ];
    let result = workspace.run(&push_args, None);
    assert!(
        result.ok,
        "push with an auths entry failed:\n{}",
        result.stderr
    );

    // A helper that fails is reported by name, without anything it was given.
    workspace.docker_config(serde_json::json!({ "credsStore": "missinghelper" }));
    workspace
        .run(&push_args, None)
        .assert_failed_saying(&["docker-credential-missinghelper"]);
}

/// A plain-http push allowed three attempts, `backoff_ms` apart (doubling).
fn push_with_retries(
    workspace: &Workspace,
    module: &Path,
    reference: &str,
    backoff_ms: &str,
) -> Run {
    workspace.run(
        &[
            "push",
            module.to_str().unwrap(),
            reference,
            "--plain-http",
            "--attempts",
            "3",
            "--retry-backoff",
            &format!("{backoff_ms}ms"),
        ],
        None,
    )
}

#[test]
fn registry_down_gives_bounded_retries_then_a_clear_error() {
    let workspace = Workspace::new();
    let module = workspace.module();
    let port = tools::free_port();
    let reference = format!("127.0.0.1:{port}/filters/logger:v1");
    let started = Instant::now();
    let result = push_with_retries(&workspace, &module, &reference, "100");
    let elapsed = started.elapsed();
    result.assert_failed_saying(&[&format!("127.0.0.1:{port}"), "after 3 attempt"]);
    // Two backoffs (100 ms, then 200 ms) between three attempts, and no endless loop.
    assert!(
        elapsed >= Duration::from_millis(300),
        "retried too fast: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn invalid_module_and_bad_reference_are_refused_before_any_upload() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let junk = workspace.path("junk.wasm");
    std::fs::write(&junk, b"this is not a wasm module").unwrap();

    workspace
        .run(
            &[
                "push",
                junk.to_str().unwrap(),
                &format!("{}/filters/junk:v1", registry.address()),
                "--plain-http",
            ],
            None,
        )
        .assert_failed_saying(&["refusing to push", "junk.wasm"]);

    let module = workspace.module();
    for bad in [
        format!("{}/Filters/UPPER:v1", registry.address()),
        format!("{}/filters/x:bad tag", registry.address()),
    ] {
        let result = workspace.run(
            &["push", module.to_str().unwrap(), &bad, "--plain-http"],
            None,
        );
        assert!(!result.ok, "pushed to {bad}");
        result.assert_failed_saying(&["invalid image reference"]);
    }
    assert!(
        registry.catalog().is_empty(),
        "the registry got a repository: {:?}",
        registry.catalog()
    );
    assert!(registry.upload_requests().is_empty());
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn plain_http_registry_without_the_flag_gets_a_hint() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let module = workspace.module();
    workspace
        .run(
            &[
                "push",
                module.to_str().unwrap(),
                &format!("{}/filters/logger:v1", registry.address()),
            ],
            None,
        )
        .assert_failed_saying(&["--plain-http"]);
}

/// An image Istio cannot load: a CNCF-style artifact whose only layer is the raw module
/// (`application/vnd.wasm.content.layer.v1+wasm`, oci-client's default), put in place with skopeo.
fn push_rejected_layout(registry: &Registry, workspace: &Workspace, reference: &str) {
    let layout = workspace.path("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data));
        std::fs::write(blobs.join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    };
    let (config_digest, config_size) = put(b"{}");
    let (layer_digest, layer_size) = put(&module_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.wasm.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm", "digest": layer_digest, "size": layer_size}]
    })
    .to_string();
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                           "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]
        })
        .to_string(),
    )
    .unwrap();
    let _ = registry;
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{reference}"),
    ]);
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn istio_rejected_layout_is_reported_and_not_pulled() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let reference = format!("{}/filters/cncf:v1", registry.address());
    push_rejected_layout(&registry, &workspace, &reference);

    let out = workspace.path("pulled.wasm");
    workspace
        .pull(&reference, &out, &["--plain-http"])
        .assert_failed_saying(&["not an image Istio can load"]);
    assert!(!out.exists(), "nothing half-done");

    let result = workspace.run(
        &["inspect", &format!("oci://{reference}"), "--plain-http"],
        None,
    );
    assert!(
        result.stdout.contains("Istio-compatible: no"),
        "stdout:\n{}\nstderr:\n{}",
        result.stdout,
        result.stderr
    );

    // Our own push of the same module is accepted.
    let module = workspace.module();
    let good = format!("{}/filters/good:v1", registry.address());
    push_json(
        &workspace,
        &[module.to_str().unwrap(), &good, "--plain-http"],
        None,
    );
    let result = workspace.run(&["inspect", &format!("oci://{good}"), "--plain-http"], None);
    assert!(result.ok, "{}", result.stderr);
    assert!(
        result.stdout.contains("Istio-compatible: yes"),
        "{}",
        result.stdout
    );
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn bearer_token_registry_with_basic_credentials_and_identity_tokens() {
    let repository = "tok/logger";
    let token = support::registry::TokenRegistry::start(
        repository,
        "carol",
        "token-pass",
        "refresh-abc123",
    );
    let workspace = Workspace::new();
    let module = workspace.module();
    let module_arg = module.to_str().unwrap();
    let reference = format!("{}/{repository}:v1", token.registry.address());

    // Basic credentials traded for a bearer token at the challenge's realm (Docker's flow).
    let as_carol = [
        module_arg,
        &reference,
        "--plain-http",
        "--username",
        "carol",
        "--password-stdin",
    ];
    let pushed = push_json(&workspace, &as_carol, Some("token-pass"));
    assert!(pushed["digest"].as_str().unwrap().starts_with("sha256:"));

    // An identity token from the docker config, traded as an OAuth2 refresh token.
    workspace.docker_config(serde_json::json!({ "auths": { token.registry.address(): { "identitytoken": "refresh-abc123" } } }));
    let out = workspace.path("pulled.wasm");
    let result = workspace.pull(&reference, &out, &["--plain-http"]);
    assert!(
        result.ok,
        "pull with an identity token failed:\n{}",
        result.stderr
    );
    assert_eq!(std::fs::read(&out).unwrap(), module_bytes());
    let again = push_json(&workspace, &[module_arg, &reference, "--plain-http"], None);
    assert_eq!(again["uploaded_blobs"], 0);

    // A wrong identity token: 401 naming its source, not its value.
    workspace.docker_config(serde_json::json!({ "auths": { token.registry.address(): { "identitytoken": "refresh-WRONG-999" } } }));
    let result = workspace.run(&["push", module_arg, &reference, "--plain-http"], None);
    result.assert_failed_saying(&["401", "identity token"]);
    assert!(!result.stderr.contains("refresh-WRONG-999"));

    // Wrong password through the bearer flow: 401 too.
    let result = workspace.run(&[&["push"][..], &as_carol].concat(), Some("nope-nope"));
    result.assert_failed_saying(&["401"]);
    assert!(!result.stderr.contains("nope-nope"), "{}", result.stderr);
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry); scripts/test runs it"]
fn push_without_a_file_builds_and_pushes_the_filter() {
    let registry = Registry::plain();
    let workspace = Workspace::new();
    let expected = std::fs::read(support::wasm::filter_module()).expect("read the built filter");
    let reference = format!("{}/filters/default:v1", registry.address());
    let pushed = push_json(&workspace, &[&reference, "--plain-http"], None);
    let out = workspace.path("pulled.wasm");
    let result = workspace.pull(pushed["url"].as_str().unwrap(), &out, &["--plain-http"]);
    assert!(result.ok, "{}", result.stderr);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        expected,
        "the default module is the freshly built filter"
    );
}

/// A registry stand-in that answers every request with 503 (an error branch no real registry
/// produces on demand); counts the requests it got.
fn always_503() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = "registry overloaded";
            let _ = write!(
                stream,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, count)
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let workspace = Workspace::new();
    let module = workspace.module();
    let (port, requests) = always_503();
    let reference = format!("127.0.0.1:{port}/filters/logger:v1");
    let started = Instant::now();
    let result = push_with_retries(&workspace, &module, &reference, "50");
    result.assert_failed_saying(&["503", "after 3 attempt"]);
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "exactly 3 attempts"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "backoff of 50 ms then 100 ms"
    );
}
