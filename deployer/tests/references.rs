//! `render --image X` and `push X` read image references with one grammar: both take and both
//! refuse the same references. Offline: render does not pin (`--no-pin`), and push is given a
//! module that does not exist, so a reference it accepts fails on reading the module instead,
//! before any request.
use std::process::{Command, Output};

fn deployer(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .current_dir(dir)
        // No docker config, kubeconfig or cache of the machine running the tests.
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env("WASM_DEPLOYER_CACHE", dir.join("cache"))
        .output()
        .expect("run deployer")
}

#[test]
fn render_and_push_accept_and_refuse_the_same_references() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wasm");
    let missing = missing.to_str().unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let accepted = [
        "localhost:5000/filters/logger:v1".to_string(),
        "oci://localhost:5000/filters/logger:v1".into(),
        "logger:v1".into(),
        "user/logger".into(),
        "reg.example.com:443/a__b/c-d--e/f.g".into(),
        format!("reg.example/x@{digest}"),
        format!("reg.example/x:v1@{digest}"),
    ];
    let refused = [
        "reg.io/UPPER/x:v1".to_string(),
        "User/logger".into(),
        "reg.io/x:".into(),
        "reg.io/x:bad tag".into(),
        "reg.io/x@sha256:12".into(),
        "reg.io:port/x".into(),
        "reg.io//x".into(),
        "oci://".into(),
    ];
    for (reference, ok) in accepted
        .iter()
        .map(|r| (r, true))
        .chain(refused.iter().map(|r| (r, false)))
    {
        let render = deployer(
            dir.path(),
            &["render", "p", "--image", reference, "--no-pin"],
        );
        let render_stderr = String::from_utf8_lossy(&render.stderr);
        assert_eq!(
            render.status.success(),
            ok,
            "render --image {reference:?}: {render_stderr}"
        );
        if !ok {
            assert!(
                render_stderr.contains("--image"),
                "{reference:?}: {render_stderr}"
            );
        }
        let push = deployer(dir.path(), &["push", missing, reference, "--plain-http"]);
        let push_stderr = String::from_utf8_lossy(&push.stderr);
        assert!(
            !push.status.success(),
            "push {reference:?} without a module"
        );
        let refused_by_push = push_stderr.contains("invalid image reference");
        assert_eq!(
            refused_by_push,
            !ok,
            "push {reference:?} (render {}): {push_stderr}",
            if ok { "accepted" } else { "refused" }
        );
        if ok {
            // Accepted: it got as far as reading the module, and no further.
            assert!(
                push_stderr.contains("cannot read module"),
                "{reference:?}: {push_stderr}"
            );
        }
    }
}

/// What render writes for a reference push also takes, and how it pins a typed digest.
#[test]
fn render_writes_the_reference_as_typed() {
    let dir = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let url_of = |image: &str, pin: bool| {
        let mut args = vec!["render", "p", "--image", image, "-o", "json"];
        if !pin {
            args.push("--no-pin");
        }
        let out = deployer(dir.path(), &args);
        assert!(
            out.status.success(),
            "{image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            value["spec"]["url"].as_str().unwrap().to_string(),
            value["spec"]["sha256"].as_str().map(str::to_string),
        )
    };
    assert_eq!(
        url_of("logger:v1", false),
        ("oci://logger:v1".to_string(), None)
    );
    assert_eq!(
        url_of("localhost:5000/x", false),
        ("oci://localhost:5000/x:latest".to_string(), None)
    );
    // A typed digest is the pin: no registry is asked, and sha256 follows it.
    assert_eq!(
        url_of(&format!("reg.io/a/b:v2@{digest}"), true),
        (format!("oci://reg.io/a/b@{digest}"), Some("ab".repeat(32)))
    );
}

/// A url from -f kept with --no-pin is held to the same grammar as --image.
#[test]
fn render_refuses_a_file_url_push_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    for (url, ok) in [
        ("oci://reg.io/UPPER/x:v1", false),
        ("oci://reg.io/upper/x:v1", true),
    ] {
        std::fs::write(
            &file,
            format!(
                "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: p\nspec:\n  url: {url}\n"
            ),
        )
        .unwrap();
        let out = deployer(
            dir.path(),
            &["render", "-f", file.to_str().unwrap(), "--no-pin"],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{url}: {stderr}");
        if !ok {
            assert!(stderr.contains("not an image reference"), "{url}: {stderr}");
        }
    }
}
