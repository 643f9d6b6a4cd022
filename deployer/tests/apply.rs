//! `deployer apply / render / delete / list / rollback` against the real kube-apiserver of the
//! local stack (with Istio's own CRDs, as its release ships them) and its real registry. Each test
//! works in its own namespace. Error paths that a healthy stack cannot produce (no CRD, no API
//! server) use a kubeconfig pointing at a closed port or at a bare HTTP listener.
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::stack::{self, Namespace, Stack, kubectl_ok, stack};
use support::tools;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok={}\n--- stdout\n{}--- stderr\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

/// A test's namespace plus a private docker config dir, so the host's credentials never leak in.
struct Fixture {
    stack: &'static Stack,
    ns: Namespace<'static>,
    home: tempfile::TempDir,
}

impl Fixture {
    fn new(prefix: &str) -> Self {
        let stack = stack();
        let home = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(home.path().join("docker")).expect("docker dir");
        Self {
            stack,
            ns: stack.namespace(prefix),
            home,
        }
    }

    fn image(&self, tag: &str) -> String {
        format!("{}/apply-test/ctx:{tag}", self.stack.registry)
    }

    /// `deployer ARGS` with the stack's kubeconfig.
    fn deployer(&self, args: &[&str]) -> Run {
        let mut command = tools::deployer();
        command
            .env("KUBECONFIG", &self.stack.kubeconfig)
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env("CI", "1")
            .args(args);
        let output = command.output().expect("run deployer");
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `deployer apply NAME -n NS ARGS` (tags kept unless the test asks for pinning).
    fn apply(&self, name: &str, args: &[&str]) -> Run {
        let mut all = vec!["apply", name, "-n", &self.ns.name];
        all.extend_from_slice(args);
        self.deployer(&all)
    }

    /// `deployer apply NAME -n NS --image IMAGE --no-pin ARGS`: the tag as given, no registry
    /// lookup.
    fn apply_unpinned(&self, name: &str, image: &str, args: &[&str]) -> Run {
        let mut all = vec!["--image", image, "--no-pin"];
        all.extend_from_slice(args);
        self.apply(name, &all)
    }

    fn get(&self, name: &str) -> Option<Value> {
        let output = self
            .ns
            .kubectl()
            .args([
                "get",
                "wasmplugin",
                name,
                "-o",
                "json",
                "--show-managed-fields",
            ])
            .output()
            .expect("run kubectl");
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("NotFound"), "kubectl get {name}: {stderr}");
            return None;
        }
        Some(serde_json::from_slice(&output.stdout).expect("kubectl -o json"))
    }

    fn resource_version(&self, name: &str) -> String {
        self.get(name).expect("plugin exists")["metadata"]["resourceVersion"]
            .as_str()
            .expect("resourceVersion")
            .to_string()
    }
}

fn ok(run: Run, what: &str) -> Run {
    assert!(run.ok, "{what} failed:\n{run}");
    run
}

fn failed(run: Run, what: &str) -> Run {
    assert!(!run.ok, "{what} should have failed:\n{run}");
    run
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn create_then_unchanged_then_configured() {
    let f = Fixture::new("apply-create");
    let image = f.image("v1");
    let started = Instant::now();
    let run = ok(
        f.apply_unpinned("ctx", &image, &["--selector", "app=web"]),
        "first apply",
    );
    let first_apply = started.elapsed();
    assert!(
        run.stdout
            .contains("wasmplugin.extensions.istio.io/ctx created"),
        "{run}"
    );
    let rv = f.resource_version("ctx");
    let object = f.get("ctx").unwrap();
    assert_eq!(object["spec"]["url"], format!("oci://{image}"));
    assert_eq!(object["spec"]["selector"]["matchLabels"]["app"], "web");
    let managers: Vec<&str> = object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(
        managers,
        ["deployer"],
        "server-side apply with the fixed field manager"
    );

    let started = Instant::now();
    let run = ok(
        f.apply_unpinned("ctx", &image, &["--selector", "app=web"]),
        "same apply",
    );
    let second_apply = started.elapsed();
    assert!(run.stdout.contains("ctx unchanged"), "{run}");
    assert_eq!(
        f.resource_version("ctx"),
        rv,
        "an unchanged apply does not write"
    );

    let run = ok(
        f.apply_unpinned(
            "ctx",
            &image,
            &["--selector", "app=web", "--phase", "stats"],
        ),
        "changed apply",
    );
    assert!(run.stdout.contains("ctx configured"), "{run}");
    assert_ne!(f.resource_version("ctx"), rv);
    assert_eq!(f.get("ctx").unwrap()["spec"]["phase"], "STATS");
    let run = ok(
        f.apply_unpinned(
            "ctx",
            &image,
            &["--selector", "app=web", "--phase", "stats", "-o", "json"],
        ),
        "-o json",
    );
    let printed: Value =
        serde_json::from_str(&run.stdout).expect("apply -o json prints the object");
    assert_eq!(printed["metadata"]["name"], "ctx");
    assert_eq!(printed["spec"]["phase"], "STATS");
    assert!(
        printed["metadata"].get("managedFields").is_none(),
        "{printed}"
    );
    eprintln!(
        "apply wall time against the local API server: create {first_apply:?}, unchanged {second_apply:?}"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn conflicts_with_another_field_manager_and_force() {
    let f = Fixture::new("apply-conflict");
    let image = f.image("v1");
    ok(
        f.apply_unpinned("ctx", &image, &["--phase", "authn"]),
        "apply",
    );
    // Another tool takes .spec.phase (kubectl's own server-side apply, forced).
    let manifest = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: ctx\n  namespace: {}\nspec:\n  url: oci://{image}\n  phase: AUTHZ\n",
        f.ns.name
    );
    let file = f.home.path().join("other.yaml");
    std::fs::write(&file, manifest).unwrap();
    kubectl_ok(
        f.ns.kubectl()
            .args([
                "apply",
                "--server-side",
                "--field-manager",
                "other",
                "--force-conflicts",
                "-f",
            ])
            .arg(&file),
    );

    let run = failed(
        f.apply_unpinned("ctx", &image, &["--phase", "stats"]),
        "conflicting apply",
    );
    assert!(
        run.stderr.contains("conflict") && run.stderr.contains("\"other\""),
        "names the other manager: {run}"
    );
    assert!(
        run.stderr.contains("--force-conflicts"),
        "says how to force: {run}"
    );
    assert_eq!(
        f.get("ctx").unwrap()["spec"]["phase"],
        "AUTHZ",
        "nothing changed"
    );

    let run = ok(
        f.apply_unpinned("ctx", &image, &["--phase", "stats", "--force-conflicts"]),
        "forced apply",
    );
    assert!(run.stdout.contains("configured"), "{run}");
    assert_eq!(f.get("ctx").unwrap()["spec"]["phase"], "STATS");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn server_dry_run_changes_nothing() {
    let f = Fixture::new("apply-dry");
    let run = ok(
        f.apply_unpinned("new", &f.image("v1"), &["--dry-run=server"]),
        "dry run create",
    );
    assert!(run.stdout.contains("created (server dry run,"), "{run}");
    assert!(f.get("new").is_none(), "a server dry run stores nothing");

    ok(f.apply_unpinned("ctx", &f.image("v1"), &[]), "apply");
    let rv = f.resource_version("ctx");
    let run = ok(
        f.apply_unpinned("ctx", &f.image("v2"), &["--dry-run=server"]),
        "dry run change",
    );
    assert!(run.stdout.contains("configured (server dry run,"), "{run}");
    assert_eq!(f.resource_version("ctx"), rv);
    assert_eq!(
        f.get("ctx").unwrap()["spec"]["url"],
        format!("oci://{}", f.image("v1"))
    );

    // Client dry run: checked and printed, nothing sent.
    let run = ok(
        f.apply_unpinned("ctx", &f.image("v3"), &["--dry-run=client", "-o", "yaml"]),
        "client dry run",
    );
    let printed: Value = serde_yaml::from_str(&run.stdout).expect("yaml");
    assert_eq!(printed["spec"]["url"], format!("oci://{}", f.image("v3")));
    assert_eq!(f.resource_version("ctx"), rv);
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn api_server_validation_is_shown() {
    // The hidden --skip-client-validation flag sends what the client would refuse, so the CRD's
    // own OpenAPI pattern and CEL rule answer: that is the path a CRD newer than this client takes.
    let f = Fixture::new("apply-invalid");
    let bad = [
        "--image",
        &f.image("v1"),
        "--no-pin",
        "--sha256",
        "abc",
        "--selector",
        "app=x",
        "--target-ref",
        "Gateway/gw",
    ];
    let mut args = bad.to_vec();
    args.push("--skip-client-validation");
    let run = failed(f.apply("ctx", &args), "apply rejected by the API server");
    assert!(
        run.stderr
            .contains("the API server rejected wasmplugins.extensions.istio.io"),
        "{run}"
    );
    assert!(
        run.stderr.contains("spec.sha256"),
        "the pattern's message: {run}"
    );
    assert!(
        run.stderr
            .contains("only one of targetRefs or selector can be set"),
        "the CEL rule's message (Istio's CRD): {run}"
    );
    assert!(f.get("ctx").is_none(), "nothing applied");

    // Without the flag the client refuses first, listing every problem.
    let run = failed(f.apply("ctx", &bad), "apply rejected by the client");
    assert!(
        run.stderr.contains("spec.sha256") && run.stderr.contains("at most one of selector"),
        "{run}"
    );
    assert!(run.stderr.contains("nothing was sent"), "{run}");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn delete_and_list() {
    let f = Fixture::new("apply-list");
    ok(
        f.apply_unpinned(
            "one",
            &f.image("v1"),
            &["--selector", "app=web", "--phase", "authz"],
        ),
        "apply one",
    );
    let sha = "ab".repeat(32);
    let pinned = format!("{}/apply-test/ctx@sha256:{sha}", f.stack.registry);
    ok(
        f.apply(
            "two",
            &["--image", &pinned, "--target-ref", "Gateway/ingress"],
        ),
        "apply two",
    );

    let run = ok(f.deployer(&["list", "-n", &f.ns.name]), "list");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run}");
    for column in [
        "NAME",
        "NAMESPACE",
        "IMAGE",
        "DIGEST",
        "PHASE",
        "SELECTOR/TARGETS",
        "AGE",
    ] {
        assert!(lines[0].contains(column), "{column}: {run}");
    }
    let one = lines
        .iter()
        .find(|l| l.starts_with("WasmPlugin") && l.split_whitespace().nth(1) == Some("one"))
        .expect("row one");
    assert!(
        one.contains("AUTHZ") && one.contains("app=web") && one.contains(&f.ns.name),
        "{one}"
    );
    let two = lines
        .iter()
        .find(|l| l.starts_with("WasmPlugin") && l.split_whitespace().nth(1) == Some("two"))
        .expect("row two");
    assert!(
        two.contains("Gateway/ingress") && two.contains(&sha[..12]),
        "{two}"
    );

    let run = ok(
        f.deployer(&["list", "-n", &f.ns.name, "-o", "json"]),
        "list json",
    );
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).expect("json");
    let two = rows.iter().find(|r| r["name"] == "two").expect("two");
    assert_eq!(two["digest"], format!("sha256:{sha}"));
    assert_eq!(
        two["image"],
        format!("oci://{}/apply-test/ctx", f.stack.registry)
    );
    let run = ok(f.deployer(&["list", "-A", "-o", "json"]), "list -A");
    let all: Vec<Value> = serde_json::from_str(&run.stdout).expect("json");
    assert!(
        all.iter()
            .filter(|r| r["namespace"] == f.ns.name.as_str())
            .count()
            == 2,
        "{run}"
    );

    let run = ok(
        f.deployer(&["delete", "one", "-n", &f.ns.name, "--dry-run=server"]),
        "delete dry run",
    );
    assert!(run.stdout.contains("deleted (server dry run"), "{run}");
    assert!(f.get("one").is_some(), "a server dry run keeps the object");
    let run = ok(f.deployer(&["delete", "one", "-n", &f.ns.name]), "delete");
    assert!(
        run.stdout
            .contains("wasmplugin.extensions.istio.io/one deleted"),
        "{run}"
    );
    assert!(f.get("one").is_none());
    assert!(f.get("two").is_some());
    let run = failed(
        f.deployer(&["delete", "one", "-n", &f.ns.name]),
        "second delete",
    );
    assert!(run.stderr.contains("not found"), "{run}");
    ok(
        f.deployer(&["delete", "one", "-n", &f.ns.name, "--ignore-not-found"]),
        "delete --ignore-not-found",
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn rollback_restores_the_previous_image() {
    let f = Fixture::new("apply-rollback");
    ok(f.apply_unpinned("ctx", &f.image("v1"), &[]), "apply v1");
    ok(
        f.apply_unpinned("ctx", &f.image("v2"), &["--phase", "stats"]),
        "apply v2",
    );
    let url = |f: &Fixture| {
        f.get("ctx").unwrap()["spec"]["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(url(&f).ends_with(":v2"));

    let run = ok(
        f.deployer(&["rollback", "ctx", "-n", &f.ns.name]),
        "rollback",
    );
    assert!(run.stdout.contains("rolled back to revision 1"), "{run}");
    assert_eq!(url(&f), format!("oci://{}", f.image("v1")));
    assert!(
        f.get("ctx").unwrap()["spec"].get("phase").is_none(),
        "the whole spec is restored, not only the url"
    );

    let run = ok(f.deployer(&["history", "ctx", "-n", &f.ns.name]), "history");
    // A header, then one line per revision: time, image and (unpinned here) no digest.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{run}");
    assert!(lines[0].starts_with("REVISION  APPLIED"), "{run}");
    assert!(
        lines[1].starts_with("1 ") && lines[1].contains(&f.image("v1")),
        "{run}"
    );
    assert!(
        lines[3].starts_with("3 ") && lines[3].ends_with("(current)"),
        "{run}"
    );
    let run = ok(
        f.deployer(&["history", "ctx", "-n", &f.ns.name, "-o", "json"]),
        "history -o json",
    );
    let revisions: Value = serde_json::from_str(&run.stdout).expect("history json");
    assert_eq!(revisions[1]["image"], format!("oci://{}", f.image("v2")));
    assert_eq!(revisions[2]["current"], true);
    assert!(
        revisions[0]["applied_at"]
            .as_str()
            .is_some_and(|t| t.contains('T'))
    );

    // A dry run, client or server, changes nothing.
    let run = ok(
        f.deployer(&[
            "rollback",
            "ctx",
            "2",
            "-n",
            &f.ns.name,
            "--dry-run",
            "-o",
            "json",
        ]),
        "rollback --dry-run",
    );
    let printed: Value = serde_json::from_str(&run.stdout).expect("rollback -o json");
    assert_eq!(printed["spec"]["url"], format!("oci://{}", f.image("v2")));
    let run = ok(
        f.deployer(&["rollback", "ctx", "2", "-n", &f.ns.name, "--dry-run=server"]),
        "rollback --dry-run=server",
    );
    assert!(run.stdout.contains("server dry run"), "{run}");
    assert!(url(&f).ends_with(":v1"), "a dry run rolled back");

    ok(
        f.deployer(&["rollback", "ctx", "2", "-n", &f.ns.name]),
        "rollback 2",
    );
    assert!(url(&f).ends_with(":v2"));
    // The flag earlier releases took still works.
    ok(
        f.deployer(&["rollback", "ctx", "-n", &f.ns.name, "--to", "1"]),
        "rollback --to 1",
    );
    assert!(url(&f).ends_with(":v1"));
    let run = failed(
        f.deployer(&["rollback", "ctx", "99", "-n", &f.ns.name]),
        "unknown revision",
    );
    assert!(run.stderr.contains("no revision 99"), "{run}");
}

/// A kubeconfig with two contexts on the stack's API server as admin, each defaulting to its
/// own namespace: two "clusters" for a multi-context apply.
fn two_context_kubeconfig(stack: &Stack, dir: &Path, ns_a: &str, ns_b: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let raw =
        kubectl_ok(
            stack
                .kubectl()
                .args(["config", "view", "--raw", "--flatten", "--minify"]),
        );
    std::fs::write(&path, raw).unwrap();
    let kubectl = || {
        let mut command = Command::new(tools::require("kubectl"));
        command.arg("--kubeconfig").arg(&path);
        command
    };
    let field = |what: &str| {
        kubectl_ok(kubectl().args([
            "config",
            "view",
            "-o",
            &format!("jsonpath={{.contexts[0].context.{what}}}"),
        ]))
    };
    let (cluster, user) = (field("cluster"), field("user"));
    for (name, ns) in [("a", ns_a), ("b", ns_b)] {
        kubectl_ok(kubectl().args([
            "config",
            "set-context",
            name,
            "--cluster",
            &cluster,
            "--user",
            &user,
            "--namespace",
            ns,
        ]));
    }
    path
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn applies_to_several_contexts_and_reports_each() {
    let f = Fixture::new("apply-multi-a");
    let other = f.stack.namespace("apply-multi-b");
    let kubeconfig = two_context_kubeconfig(f.stack, f.home.path(), &f.ns.name, &other.name);
    let kubeconfig = kubeconfig.to_str().unwrap();
    let image = f.image("v1");
    let run = ok(
        f.deployer(&[
            "apply",
            "ctx",
            "--image",
            &image,
            "--no-pin",
            "--kubeconfig",
            kubeconfig,
            "--context",
            "a",
            "--context",
            "b",
        ]),
        "multi-context apply",
    );
    assert!(
        run.stdout.contains("context a") && run.stdout.contains("context b"),
        "one line per context: {run}"
    );
    assert_eq!(run.stdout.matches("created").count(), 2, "{run}");
    assert!(f.get("ctx").is_some());
    let in_b = kubectl_ok(other.kubectl().args([
        "get",
        "wasmplugin",
        "ctx",
        "-o",
        "jsonpath={.spec.url}",
    ]));
    assert_eq!(in_b, format!("oci://{image}"));

    // Nothing half-applied: one context the API server refuses (RBAC) stops all before any write.
    let dev = {
        let raw = kubectl_ok(
            f.stack
                .kubectl()
                .args(["config", "view", "--raw", "--flatten"]),
        );
        let path = f.home.path().join("with-dev");
        std::fs::write(&path, raw).unwrap();
        path
    };
    let kc = dev.to_str().unwrap();
    let run = failed(
        f.deployer(&[
            "apply",
            "fresh",
            "--image",
            &image,
            "--no-pin",
            "-n",
            &f.ns.name,
            "--kubeconfig",
            kc,
            "--context",
            &f.stack.context,
            "--context",
            &f.stack.dev_context,
        ]),
        "apply with a forbidden context",
    );
    assert!(run.stderr.contains("forbidden"), "{run}");
    assert!(
        f.get("fresh").is_none(),
        "the allowed context was not written either: {run}"
    );
}

fn push_module(f: &Fixture, reference: &str) -> String {
    let module = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "proxy_abi_version_0_2_1"))
             (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
             (func (export "proxy_on_context_create") (param i32 i32)))"#,
    )
    .expect("valid wat");
    let path = f.home.path().join("plugin.wasm");
    std::fs::write(&path, module).unwrap();
    let run = ok(
        f.deployer(&[
            "push",
            path.to_str().unwrap(),
            reference,
            "--plain-http",
            "-o",
            "json",
        ]),
        "push",
    );
    let pushed: Value = serde_json::from_str(&run.stdout).expect("push -o json");
    pushed["digest"].as_str().expect("digest").to_string()
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn pins_the_tag_to_the_registry_digest() {
    let f = Fixture::new("apply-pin");
    let reference = f.image(&stack::unique_name("pin"));
    let pushed = push_module(&f, &reference);
    // The digest as an independent client (skopeo) sees it.
    let output = Command::new(tools::require("skopeo"))
        .args([
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(digest, pushed);

    let run = ok(
        f.apply("ctx", &["--image", &reference, "--plain-http"]),
        "pinned apply",
    );
    assert!(run.stdout.contains("created"), "{run}");
    let spec = f.get("ctx").unwrap()["spec"].clone();
    let repository = reference.rsplit_once(':').unwrap().0;
    assert_eq!(spec["url"], format!("oci://{repository}@{digest}"));
    assert_eq!(spec["sha256"], digest.trim_start_matches("sha256:"));
    let run = ok(
        f.apply("ctx", &["--image", &reference, "--plain-http"]),
        "pinned re-apply",
    );
    assert!(
        run.stdout.contains("unchanged"),
        "the same tag resolves to the same digest: {run}"
    );

    let missing = f.image("no-such-tag");
    let run = failed(
        f.apply("gone", &["--image", &missing, "--plain-http"]),
        "pin a missing tag",
    );
    assert!(
        run.stderr.contains("--no-pin") && run.stderr.contains("no-such-tag"),
        "{run}"
    );
    assert!(f.get("gone").is_none());
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn cluster_shows_what_render_printed() {
    let f = Fixture::new("apply-render");
    let config = f.home.path().join("config.yaml");
    std::fs::write(&config, "level: info\nlimits:\n  rps: 10\n").unwrap();
    let config = config.to_str().unwrap();
    let image = f.image("v1");
    let flags = [
        "--image",
        &image,
        "--no-pin",
        "--selector",
        "app=web,tier=front",
        "--config",
        config,
        "--set",
        "limits.burst=20",
        "--plugin-name",
        "ctx",
        "--phase",
        "authz",
        "--priority",
        "-5",
        "--fail-strategy",
        "fail-open",
        "--pull-policy",
        "always",
        "--pull-secret",
        "regcred",
        "--type",
        "http",
        "--match",
        "server:8080,9090",
        "--env",
        "MODE=demo",
        "--env",
        "HOSTNAME",
        "--sha256",
        &"c".repeat(64),
    ];
    let mut render = vec!["render", "ctx", "-n", &f.ns.name];
    render.extend_from_slice(&flags);
    let run = ok(f.deployer(&render), "render");
    let rendered: Value = serde_yaml::from_str(&run.stdout).expect("render prints YAML");
    assert_eq!(rendered["kind"], "WasmPlugin");

    ok(f.apply("ctx", &flags), "apply");
    let live = kubectl_ok(
        f.ns.kubectl()
            .args(["get", "wasmplugins", "ctx", "-o", "yaml"]),
    );
    let live: Value = serde_yaml::from_str(&live).unwrap();
    assert_eq!(
        live["spec"], rendered["spec"],
        "kubectl shows the spec render printed"
    );
    assert_eq!(live["spec"]["priority"], -5);
    assert_eq!(live["spec"]["pluginConfig"]["limits"]["burst"], 20);

    // -f with what render printed applies the same spec: unchanged.
    let file = f.home.path().join("rendered.yaml");
    std::fs::write(&file, &run.stdout).unwrap();
    let run = ok(
        f.deployer(&["apply", "-f", file.to_str().unwrap(), "--no-pin"]),
        "apply -f",
    );
    assert!(run.stdout.contains("unchanged"), "{run}");

    // So does what kubectl printed (server metadata and status are dropped).
    let dumped = f.home.path().join("dumped.yaml");
    std::fs::write(
        &dumped,
        kubectl_ok(
            f.ns.kubectl()
                .args(["get", "wasmplugins", "ctx", "-o", "yaml"]),
        ),
    )
    .unwrap();
    let run = ok(
        f.deployer(&["apply", "-f", dumped.to_str().unwrap(), "--no-pin"]),
        "apply -f kubectl's yaml",
    );
    assert!(run.stdout.contains("unchanged"), "{run}");

    let mut helm = vec!["render", "ctx", "--helm-values"];
    helm.extend_from_slice(&flags);
    let run = ok(f.deployer(&helm), "render --helm-values");
    let values: Value = serde_yaml::from_str(&run.stdout).unwrap();
    assert_eq!(values["name"], "ctx");
    assert_eq!(values["url"], rendered["spec"]["url"]);
    assert_eq!(values["selector"], rendered["spec"]["selector"]);
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn pull_secret_from_docker_config_holds_one_registry() {
    let f = Fixture::new("apply-secret");
    let registry = &f.stack.registry;
    let docker_config = serde_json::json!({"auths": {
        registry.as_str(): {"auth": "dXNlcjpzM2NyZXQtdmFsdWU="},
        "other.example.com": {"auth": "b3RoZXI6b3RoZXI="}
    }});
    std::fs::write(
        f.home.path().join("docker/config.json"),
        docker_config.to_string(),
    )
    .unwrap();
    let run = ok(
        f.apply_unpinned("ctx", &f.image("v1"), &["--pull-secret-from-docker-config"]),
        "apply",
    );
    assert!(
        !format!("{run}").contains("s3cret-value") && !format!("{run}").contains("dXNlcjpzM2"),
        "no secret in output"
    );
    assert_eq!(f.get("ctx").unwrap()["spec"]["imagePullSecret"], "ctx-pull");
    let secret: Value = serde_json::from_str(&kubectl_ok(
        f.ns.kubectl()
            .args(["get", "secret", "ctx-pull", "-o", "json"]),
    ))
    .expect("secret json");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let data = secret["data"][".dockerconfigjson"].as_str().unwrap();
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).expect("base64");
    let held: Value = serde_json::from_slice(&decoded).unwrap();
    let auths = held["auths"].as_object().unwrap();
    assert_eq!(
        auths.keys().collect::<Vec<_>>(),
        [registry],
        "only this image's registry"
    );
    assert_eq!(auths[registry.as_str()]["username"], "user");
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn errors_name_the_problem() {
    let f = Fixture::new("apply-errors");
    let image = f.image("v1");
    // RBAC: stack-dev may only view core resources.
    let run = failed(
        f.apply_unpinned("ctx", &image, &["--context", &f.stack.dev_context]),
        "forbidden",
    );
    assert!(
        run.stderr.contains("forbidden: stack-dev cannot")
            && run.stderr.contains("wasmplugins.extensions.istio.io"),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!("in namespace {}", f.ns.name)),
        "{run}"
    );

    let run = failed(
        f.deployer(&[
            "apply",
            "ctx",
            "--image",
            &image,
            "--no-pin",
            "-n",
            "no-such-namespace-here",
        ]),
        "namespace",
    );
    assert!(
        run.stderr
            .contains("namespace \"no-such-namespace-here\" not found"),
        "{run}"
    );

    // Unreachable: a closed port, answered in bounded time and named.
    let port = tools::free_port();
    let kubeconfig = fake_kubeconfig(f.home.path(), &format!("https://127.0.0.1:{port}"));
    let started = Instant::now();
    let run = failed(
        f.deployer(&["list", "--kubeconfig", &kubeconfig]),
        "unreachable",
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded: {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains(&format!(
            "cannot reach the API server https://127.0.0.1:{port}"
        )),
        "{run}"
    );

    // An API server without the CRD: discovery answers 404 for the group.
    let (server, _guard) = bare_http_404_server();
    let kubeconfig = fake_kubeconfig(f.home.path(), &server);
    let run = failed(
        f.deployer(&[
            "apply",
            "ctx",
            "--image",
            &image,
            "--no-pin",
            "--kubeconfig",
            &kubeconfig,
        ]),
        "no CRD",
    );
    assert!(
        run.stderr
            .contains("WasmPlugin CRD not found: is Istio installed in this cluster?"),
        "{run}"
    );
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn bad_input_is_refused_before_the_registry_or_cluster_is_asked() {
    let f = Fixture::new("apply-input");
    // Nothing listens on this port: reaching it would fail with a registry error instead.
    let image = format!("127.0.0.1:{}/apply-test/ctx:v1", tools::free_port());
    for command in ["apply", "render"] {
        let run = failed(
            f.deployer(&[
                command,
                "ctx",
                "-n",
                &f.ns.name,
                "--image",
                &image,
                "--plain-http",
                "--sha256",
                "xyz",
                "--selector",
                "app=*",
            ]),
            command,
        );
        assert!(
            run.stderr
                .contains("spec.sha256 \"xyz\": must be 64 lower-case hex")
                && run.stderr.contains("wildcards are not supported")
                && run.stderr.contains("nothing was sent"),
            "{command}: {run}"
        );
        assert!(!run.stderr.contains("cannot pin"), "{command}: {run}");
    }
    assert!(f.get("ctx").is_none(), "nothing was applied");
}

fn fake_kubeconfig(dir: &Path, server: &str) -> String {
    let path = dir.join(format!("kubeconfig-{}", server.rsplit(':').next().unwrap()));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: default}}\nclusters:\n- name: fake\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: fake\n  user: {{token: not-a-secret}}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// Stops the listener thread's accept loop when the test ends.
struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>, u16);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.1));
    }
}

/// Plain HTTP server answering every request "404 page not found", like an API server path
/// that does not exist (what a cluster without the CRD answers for its group).
fn bare_http_404_server() -> (String, StopOnDrop) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buf);
            let body = "404 page not found\n";
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://127.0.0.1:{port}"), StopOnDrop(stop, port))
}

/// A key pair as PEM files (PKCS#8 private, SPKI public) and the public key's fingerprint as
/// `deployer` records it (sha256 of the SPKI DER).
fn key_pair(dir: &Path, seed: u8) -> (PathBuf, PathBuf, String) {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use sha2::Digest;
    let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("a valid scalar");
    let private = dir.join(format!("k{seed}.key"));
    let public = dir.join(format!("k{seed}.pub"));
    std::fs::write(
        &private,
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let verifying = key.verifying_key();
    std::fs::write(
        &public,
        verifying.to_public_key_pem(LineEnding::LF).unwrap(),
    )
    .unwrap();
    let der = verifying.to_public_key_der().unwrap();
    let fingerprint = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(der.as_bytes()))
    );
    (private, public, fingerprint)
}

/// Pushes a module unique to `marker`, so its digest (and its signatures) are this test's own.
fn push_unique_module(f: &Fixture, reference: &str, marker: &str) -> String {
    let module = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1)
             (func (export "proxy_abi_version_0_2_1"))
             (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
             (func (export "proxy_on_context_create") (param i32 i32))
             (data (i32.const 0) "{marker}"))"#
    ))
    .expect("valid wat");
    let path = f.home.path().join(format!("{marker}.wasm"));
    std::fs::write(&path, module).unwrap();
    let run = ok(
        f.deployer(&[
            "push",
            path.to_str().unwrap(),
            reference,
            "--plain-http",
            "-o",
            "json",
        ]),
        "push",
    );
    let pushed: Value = serde_json::from_str(&run.stdout).expect("push -o json");
    pushed["digest"].as_str().expect("digest").to_string()
}

#[test]
#[ignore = "tier stack: starts the local stack (scripts/stack up); scripts/test runs it"]
fn verify_key_refuses_unsigned_images_before_any_write_and_records_the_key() {
    let f = Fixture::new("apply-verify");
    let (private, public, fingerprint) = key_pair(f.home.path(), 7);
    let (_, other_public, _) = key_pair(f.home.path(), 8);
    let public = public.to_str().unwrap();
    let unique = stack::unique_name("v");
    let signed_ref = f.image(&format!("{unique}-signed"));
    let unsigned_ref = f.image(&format!("{unique}-unsigned"));
    push_unique_module(&f, &signed_ref, &format!("{unique} signed"));
    push_unique_module(&f, &unsigned_ref, &format!("{unique} unsigned"));
    ok(
        f.deployer(&[
            "sign",
            &signed_ref,
            "--key",
            private.to_str().unwrap(),
            "--plain-http",
        ]),
        "sign",
    );

    // A new plugin on an unsigned image: refused, nothing created.
    let run = failed(
        f.apply(
            "fresh",
            &[
                "--image",
                &unsigned_ref,
                "--plain-http",
                "--verify-key",
                public,
            ],
        ),
        "apply --verify-key of an unsigned image",
    );
    assert!(
        run.stderr.contains("is not signed") && run.stderr.contains("nothing was written"),
        "{run}"
    );
    assert!(f.get("fresh").is_none());

    // The signed image under the right key: applied, the key recorded.
    let run = ok(
        f.apply(
            "ctx",
            &[
                "--image",
                &signed_ref,
                "--plain-http",
                "--verify-key",
                public,
            ],
        ),
        "apply --verify-key of a signed image",
    );
    assert!(run.stdout.contains("created"), "{run}");
    let live = f.get("ctx").unwrap();
    assert_eq!(
        live["metadata"]["annotations"]["wasm-deployer.io/verified-key"],
        fingerprint.as_str()
    );
    let version = f.resource_version("ctx");

    // Moving the live plugin to an unsigned image, or checking under another key: refused,
    // and the live object is untouched.
    let run = failed(
        f.apply(
            "ctx",
            &[
                "--image",
                &unsigned_ref,
                "--plain-http",
                "--verify-key",
                public,
            ],
        ),
        "apply --verify-key moving to an unsigned image",
    );
    assert!(run.stderr.contains("is not signed"), "{run}");
    let run = failed(
        f.apply(
            "ctx",
            &[
                "--image",
                &signed_ref,
                "--plain-http",
                "--verify-key",
                other_public.to_str().unwrap(),
            ],
        ),
        "apply --verify-key under another key",
    );
    assert!(run.stderr.contains("no valid signature"), "{run}");
    assert_eq!(f.resource_version("ctx"), version);

    // render refuses the same way and prints the annotation when it passes.
    let run = failed(
        f.deployer(&[
            "render",
            "r",
            "--image",
            &unsigned_ref,
            "--plain-http",
            "--verify-key",
            public,
        ]),
        "render --verify-key of an unsigned image",
    );
    assert!(run.stderr.contains("is not signed"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
    let run = ok(
        f.deployer(&[
            "render",
            "r",
            "--image",
            &signed_ref,
            "--plain-http",
            "--verify-key",
            public,
        ]),
        "render --verify-key of a signed image",
    );
    assert!(
        run.stdout
            .contains(&format!("wasm-deployer.io/verified-key: {fingerprint}")),
        "{run}"
    );

    // The annotation stays truthful: an apply without --verify-key drops it.
    ok(
        f.apply("ctx", &["--image", &unsigned_ref, "--plain-http"]),
        "apply of the unsigned image without --verify-key",
    );
    let live = f.get("ctx").unwrap();
    assert!(
        live["metadata"]["annotations"]
            .get("wasm-deployer.io/verified-key")
            .is_none(),
        "{live}"
    );
    // rollback --verify-key: back to the signed revision passes and records the key...
    let ns = f.ns.name.clone();
    let rollback = |extra: &[&str]| {
        let mut args = vec![
            "rollback",
            "ctx",
            "-n",
            &ns,
            "--plain-http",
            "--verify-key",
            public,
        ];
        args.extend_from_slice(extra);
        f.deployer(&args)
    };
    let run = ok(
        rollback(&[]),
        "rollback --verify-key to the signed revision",
    );
    assert!(run.stdout.contains("rolled back"), "{run}");
    assert_eq!(
        f.get("ctx").unwrap()["metadata"]["annotations"]["wasm-deployer.io/verified-key"],
        fingerprint.as_str()
    );
    // ...and back to the unsigned one is refused, the live object untouched.
    let version = f.resource_version("ctx");
    let run = failed(
        rollback(&[]),
        "rollback --verify-key to the unsigned revision",
    );
    assert!(run.stderr.contains("is not signed"), "{run}");
    assert_eq!(f.resource_version("ctx"), version);

    // A tag kept as a tag cannot be vouched for: it can move after the check.
    let run = failed(
        f.apply(
            "tag",
            &[
                "--image",
                &signed_ref,
                "--no-pin",
                "--plain-http",
                "--verify-key",
                public,
            ],
        ),
        "apply --verify-key --no-pin",
    );
    assert!(run.stderr.contains("pinned to a digest"), "{run}");
    assert!(f.get("tag").is_none());
}
