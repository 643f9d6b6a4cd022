//! A WasmPlugin's `imagePullSecret` in the sidecar stand-in, as istio-agent reads it: the
//! filter sits in a TLS registry with basic auth, and the stand-in pulls it with the
//! credentials of the `kubernetes.io/dockerconfigjson` Secret the plugin names, never with a
//! docker config of its own. Each test has its own registry, namespace and stand-in.
mod support;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine;
use support::registry::Registry;
use support::sidecar::{PodSpec, StandIn, create_pod};
use support::stack::{Namespace, Stack, kubectl_ok, stack};
use support::tools;

const USER: &str = "mesh-puller";
const PASSWORD: &str = "pull-pw-7f3a9c";
const PLUGIN: &str = "ctx";

/// A secure registry holding the filter, and a docker config that knows its credentials (what
/// `docker login` writes); the deployer reads it, the stand-in never does.
struct Secured {
    registry: Registry,
    ca: PathBuf,
    docker: tempfile::TempDir,
    image: String,
}

impl Secured {
    /// Starts the registry and pushes the filter with --username/--password-stdin.
    fn start(stack: &Stack, ns: &Namespace<'_>) -> Self {
        let registry = Registry::secure(USER, PASSWORD);
        let ca = registry.ca.clone().expect("a secure registry has a CA");
        let docker = tempfile::tempdir().expect("docker config dir");
        let image = format!("{}/{}/ctx:v1", registry.address(), ns.name);
        let secured = Secured {
            registry,
            ca,
            docker,
            image,
        };
        let output = secured
            .deployer(stack)
            .arg("push")
            .arg(support::wasm::filter_module())
            .arg(&secured.image)
            .args(["--username", USER, "--password-stdin", "--ca-file"])
            .arg(&secured.ca)
            .write_stdin(PASSWORD)
            .output()
            .expect("run deployer push");
        assert!(output.status.success(), "push: {:?}", text(&output));
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let config =
            serde_json::json!({ "auths": { secured.registry.address(): { "auth": auth } } });
        std::fs::write(
            secured.docker.path().join("config.json"),
            config.to_string(),
        )
        .expect("write docker config");
        secured
    }

    fn deployer(&self, stack: &Stack) -> assert_cmd::Command {
        let mut command = tools::deployer();
        command
            .envs(stack.env())
            .env("DOCKER_CONFIG", self.docker.path());
        command
    }

    /// `deployer apply` of the filter to app=web pods, trusting the registry's CA.
    fn apply(&self, stack: &Stack, ns: &Namespace<'_>, extra: &[&str]) {
        let output = self
            .deployer(stack)
            .args(["apply", PLUGIN, "-n", &ns.name, "--image", &self.image])
            .args(["--selector", "app=web", "--plugin-name", "context_logger"])
            .arg("--ca-file")
            .arg(&self.ca)
            .args(extra)
            .output()
            .expect("run deployer apply");
        assert!(output.status.success(), "apply: {:?}", text(&output));
    }

    fn status(&self, stack: &Stack, ns: &Namespace<'_>) -> Output {
        self.deployer(stack)
            .args(["status", PLUGIN, "-n", &ns.name, "--ca-file"])
            .arg(&self.ca)
            .output()
            .expect("run deployer status")
    }

    /// A meshed `web` pod and its stand-in, told the registry's CA.
    fn web_pod(&self, stack: &Stack, ns: &Namespace<'_>) -> StandIn {
        create_pod(
            ns,
            &PodSpec {
                name: "web",
                labels: &[("app", "web")],
                wasm_info: true,
                sidecar: true,
            },
        );
        StandIn::start_with(
            stack,
            &ns.name,
            "web",
            &[OsStr::new("--ca-file"), self.ca.as_os_str()],
        )
    }
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `kubectl logs web -c istio-proxy` once it satisfies `wanted` (30 s at most).
fn eventually_proxy_log(ns: &Namespace<'_>, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = ns
            .kubectl()
            .args(["logs", "web", "-c", "istio-proxy"])
            .output()
            .expect("run kubectl logs");
        let log = String::from_utf8_lossy(&output.stdout).into_owned();
        if wanted(&log) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not after 30s; kubectl logs said:\n{log}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status_of_first_plugin(state: &serde_json::Value) -> String {
    state["plugins"][0]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_sidecar_pulls_with_the_plugins_image_pull_secret() {
    let stack = stack();
    let ns = stack.namespace("pull-secret");
    let secured = Secured::start(stack, &ns);
    secured.apply(stack, &ns, &["--pull-secret-from-docker-config"]);
    let secret_type =
        kubectl_ok(
            ns.kubectl()
                .args(["get", "secret", "ctx-pull", "-o", "jsonpath={.type}"]),
        );
    assert_eq!(secret_type, "kubernetes.io/dockerconfigjson");

    let mut sidecar = secured.web_pod(stack, &ns);
    let state = sidecar.wait_state(|state| state["plugins"][0]["status"] == "loaded");
    for _ in 0..3 {
        assert_eq!(sidecar.get("/"), 200);
    }
    let log = eventually_proxy_log(&ns, "three NewHttpContext lines", |log| {
        log.matches("NewHttpContext").count() == 3
    });
    assert!(
        log.contains(&format!(
            "wasm log {}.{PLUGIN} context_logger: NewHttpContext",
            ns.name
        )),
        "{log}"
    );
    // The registry saw the Secret's user, and nothing printed the password.
    assert!(secured.registry.log().contains(USER), "registry log");
    for said in [log, state.to_string(), sidecar.stderr()] {
        assert!(!said.contains(PASSWORD), "the password leaked: {said}");
    }
    let output = secured.status(stack, &ns);
    assert!(output.status.success(), "status: {:?}", text(&output));
}

#[test]
fn a_missing_or_wrong_pull_secret_is_an_agent_fetch_error_until_it_is_fixed() {
    let stack = stack();
    let ns = stack.namespace("pull-secret-missing");
    let secured = Secured::start(stack, &ns);
    secured.apply(stack, &ns, &["--pull-secret", "ctx-pull"]);

    let mut sidecar = secured.web_pod(stack, &ns);
    let state = sidecar.wait_state(|state| state["plugins"][0]["status"] != "loaded");
    let missing = format!("imagePullSecret {}/ctx-pull not found", ns.name);
    assert!(status_of_first_plugin(&state).contains(&missing), "{state}");
    // FAIL_CLOSE (the default): a deny-all filter where the module would be.
    assert_eq!(sidecar.get("/"), 403);
    let prefix = format!(
        "\terror\twasm\terror in converting the wasm config to local: cannot fetch Wasm module oci://{}/{}/ctx",
        secured.registry.address(),
        ns.name
    );
    eventually_proxy_log(&ns, "the agent's fetch error", |log| {
        log.lines()
            .any(|line| line.contains(&prefix) && line.contains(&missing))
    });
    let output = secured.status(stack, &ns);
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "status must fail:\n{stdout}");
    assert!(
        stdout.contains("could not fetch the module"),
        "{stdout}{stderr}"
    );

    // The wrong type of Secret: the agent says so.
    kubectl_ok(ns.kubectl().args([
        "create",
        "secret",
        "generic",
        "ctx-pull",
        &format!("--from-literal=password={PASSWORD}"),
    ]));
    let state = sidecar.wait_state(|state| {
        status_of_first_plugin(state)
            .contains("is of type Opaque, not kubernetes.io/dockerconfigjson")
    });

    // The right Secret, holding another registry only.
    kubectl_ok(ns.kubectl().args(["delete", "secret", "ctx-pull"]));
    let other = serde_json::json!({ "auths": { "registry.example:5000": { "auth": "dTpw" } } });
    let other_file = secured.docker.path().join("other.json");
    std::fs::write(&other_file, other.to_string()).expect("write other config");
    kubectl_ok(ns.kubectl().args([
        "create",
        "secret",
        "generic",
        "ctx-pull",
        "--type",
        "kubernetes.io/dockerconfigjson",
        &format!("--from-file=.dockerconfigjson={}", other_file.display()),
    ]));
    let no_entry = format!(
        "has no credentials for registry {}",
        secured.registry.address()
    );
    sidecar.wait_state(|state| status_of_first_plugin(state).contains(&no_entry));

    // Fixed: the Secret the deployer writes from the docker config; the running sidecar pulls.
    kubectl_ok(ns.kubectl().args(["delete", "secret", "ctx-pull"]));
    secured.apply(stack, &ns, &["--pull-secret-from-docker-config"]);
    sidecar.wait_state(|state| state["plugins"][0]["status"] == "loaded");
    assert_eq!(sidecar.get("/"), 200);
    let log = eventually_proxy_log(&ns, "a NewHttpContext line after the fix", |log| {
        log.contains("NewHttpContext")
    });
    for said in [log, state.to_string(), sidecar.stderr()] {
        assert!(!said.contains(PASSWORD), "the password leaked: {said}");
    }
}
