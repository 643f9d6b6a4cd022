//! Differential tests with Istio's own code as the judge: `tools/istio/cmd/istio-judge` runs
//! istio-agent's wasm fetch (`pkg/wasm` LocalFileCache.Get, go-containerregistry) and istiod's
//! `ValidateWasmPlugin` from the pinned istio.io/istio module. For the same images and
//! manifests, `deployer` must reach the same verdict, and the sha256 it pins must be the one
//! Istio accepts.
mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use support::images::*;
use support::registry::Registry;
use support::tools;

/// Builds istio-judge once per test run from the wrapper module (Go's build cache makes a
/// rebuild after the first cheap: measured ~3 s warm; the same flags as scripts/setup's
/// Istio builds so their cache is shared).
fn judge() -> &'static Path {
    static JUDGE: OnceLock<PathBuf> = OnceLock::new();
    JUDGE.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("istio-judge");
        let output = std::process::Command::new(tools::require("go"))
            .current_dir(tools::repo_root().join("tools/istio"))
            .args([
                "build",
                "-trimpath",
                "-buildvcs=false",
                "-ldflags",
                "-s -w",
                "-o",
            ])
            .arg(&out)
            .arg("./cmd/istio-judge")
            .output()
            .expect("run go build");
        assert!(
            output.status.success(),
            "building istio-judge failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

fn verdict(args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(judge())
        .args(args)
        .output()
        .expect("run istio-judge");
    assert!(
        output.status.success(),
        "istio-judge {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "istio-judge printed {:?}: {err}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Istio's fetch of `url` (plain HTTP to a loopback registry, as go-containerregistry falls
/// back to it), optionally checking `sha256` as WasmPlugin `spec.sha256`.
fn istio_fetch(url: &str, sha256: Option<&str>) -> serde_json::Value {
    let mut args = vec!["fetch"];
    if let Some(sha256) = sha256 {
        args.extend(["-sha256", sha256]);
    }
    args.push(url);
    verdict(&args)
}

/// What `deployer inspect oci://REF -o json` says about an image.
fn deployer_view(dir: &Path, reference: &str) -> serde_json::Value {
    let out = deployer(
        dir,
        &[
            "inspect",
            &format!("oci://{reference}"),
            "--plain-http",
            "-o",
            "json",
        ],
    );
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|err| panic!("inspect {reference}: {err}\n{}{}", out.stdout, out.stderr))
}

/// `deployer render --image REF` (pinned): the spec's url and sha256.
fn deployer_pin(dir: &Path, reference: &str) -> Option<(String, String)> {
    let out = deployer(
        dir,
        &[
            "render",
            "p",
            "--image",
            reference,
            "--plain-http",
            "-o",
            "json",
        ],
    );
    if !out.ok {
        return None;
    }
    let spec = serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["spec"].clone();
    Some((
        spec["url"].as_str().unwrap().to_string(),
        spec["sha256"].as_str().unwrap().to_string(),
    ))
}

#[test]
#[ignore = "tier registry: starts docker-registry (scripts/setup registry) and Istio's code (istio-judge, built with Go); scripts/test runs it"]
fn fetch_verdicts_and_pins_agree_with_istio_agent() {
    let registry = Registry::plain();
    let work = workdir();
    let dir = work.path();
    let at = |name: &str| format!("{}/judge/{name}", registry.address());

    // The images: what push writes (both formats), indexes as multi-arch builds write them,
    // a layer of several gzip members, and an artifact Istio does not load.
    let compat = module("compat");
    let compat_digest = push_compat(dir, &compat, &at("compat:v1"));
    let raw_file = dir.join("raw.wasm");
    std::fs::write(&raw_file, module("raw")).unwrap();
    let out = deployer(
        dir,
        &[
            "push",
            raw_file.to_str().unwrap(),
            &at("raw:v1"),
            "--layout",
            "oci",
            "--plain-http",
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    let arm = push_compat(dir, &module("arm"), &at("multi:arm64"));
    let amd = push_compat(dir, &module("amd"), &at("multi:amd64"));
    let size = manifest_size(&registry, "judge/multi", &amd);
    let index = push_index(
        &at("multi:v1"),
        &[
            (&arm, Some(("linux", "arm64"))),
            (&amd, Some(("linux", "amd64"))),
        ],
        size,
    );
    push_index(
        &at("multi:unlabelled"),
        &[(&arm, Some(("linux", "arm64"))), (&amd, None)],
        size,
    );
    push_index(&at("multi:wasi"), &[(&arm, Some(("wasip1", "wasm")))], size);
    let filler: String = (0..40_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let big = module(&filler);
    push_multi_member(&big, 3, &at("pigz:v1"));
    let artifact = deployer::oci::image::Blob::new(
        "application/vnd.wasm.content.layer.v1+wasm",
        module("artifact"),
    );
    let config =
        deployer::oci::image::Blob::new("application/vnd.wasm.config.v1+json", b"{}".to_vec());
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": deployer::oci::image::OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.data.len()},
        "layers": [{"mediaType": artifact.media_type, "digest": artifact.digest, "size": artifact.data.len()}],
    }))
    .unwrap();
    upload(
        &deployer::oci::image::Image {
            format: deployer::oci::image::Format::Oci,
            config,
            layers: vec![artifact],
            manifest_digest: deployer::oci::image::sha256_digest(&manifest),
            manifest,
            manifest_media_type: deployer::oci::image::OCI_MANIFEST.to_string(),
        },
        &at("cncf:v1"),
    );

    let mut agreed = 0;
    for (name, istio_loads) in [
        ("compat:v1", true),
        ("raw:v1", true),
        ("multi:v1", true),
        ("multi:unlabelled", true),
        ("multi:wasi", false),
        ("pigz:v1", true),
        ("cncf:v1", false),
    ] {
        let reference = at(name);
        let istio = istio_fetch(&format!("oci://{reference}"), None);
        let ours = deployer_view(dir, &reference);
        assert_eq!(istio["ok"], istio_loads, "{name}: Istio says {istio}");
        assert_eq!(
            ours["istio_compatible"], istio["ok"],
            "{name}: deployer says {ours}\nIstio says {istio}"
        );
        if istio_loads {
            // The digest deployer reports is the checksum Istio recorded...
            let hex = istio["sha256"].as_str().unwrap();
            assert_eq!(ours["digest"], format!("sha256:{hex}").as_str(), "{name}");
            // ...and the pin `render` writes is accepted by Istio, url and sha256 alike.
            let (url, sha256) = deployer_pin(dir, &reference).expect("pinned");
            let pinned = istio_fetch(&url, Some(&sha256));
            assert_eq!(
                pinned["ok"], true,
                "{name}: Istio refused the pin: {pinned}"
            );
            assert_eq!(pinned["sha256"], sha256.as_str());
            // The same module: Istio's size is that of what `pull` writes.
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
            assert!(out.ok, "{name}: {}", out.stderr);
            assert_eq!(
                istio["size"].as_u64(),
                Some(std::fs::metadata(&pulled).unwrap().len()),
                "{name}"
            );
        } else if name == "multi:wasi" {
            // Resolving the index is where Istio stops, so there is no digest to pin.
            assert!(deployer_pin(dir, &reference).is_none(), "{name} pinned");
        }
        agreed += 1;
    }
    assert_eq!(agreed, 7);

    // What the old pin (the index's own digest) would have done: Istio refuses it.
    let wrong = istio_fetch(
        &format!("oci://{}", at("multi:v1")),
        Some(index.trim_start_matches("sha256:")),
    );
    assert_eq!(wrong["ok"], false);
    assert!(
        wrong["error"]
            .as_str()
            .unwrap()
            .contains("which does not match"),
        "{wrong}"
    );
    // And an index without linux/amd64 fails in Istio with the reason deployer names.
    let wasi = istio_fetch(&format!("oci://{}", at("multi:wasi")), None);
    assert!(
        wasi["error"]
            .as_str()
            .unwrap()
            .contains("no child with platform"),
        "{wasi}"
    );
    assert_eq!(
        compat_digest,
        deployer_view(dir, &at("compat:v1"))["digest"]
    );
}

/// A WasmPlugin manifest around `spec` (YAML lines, indented by the caller).
fn manifest(spec: &str) -> String {
    format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: judged\n  namespace: demo\nspec:\n  url: oci://registry.example/filters/x:v1\n{spec}"
    )
}

#[test]
#[ignore = "tier tools: runs Istio's code (istio-judge, built with Go from tools/istio); scripts/test runs it"]
fn validation_verdicts_agree_with_istiod() {
    let work = workdir();
    let dir = work.path();
    // (case, spec lines, istiod accepts it). Every case where istiod's ValidateWasmPlugin
    // decides; the CRD-only rules are below.
    let cases = [
        ("minimal", "", true),
        ("selector", "  selector: {matchLabels: {app: web}}\n", true),
        (
            "gateway with its group",
            "  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n",
            true,
        ),
        (
            "gateway without its group",
            "  targetRefs: [{kind: Gateway, name: gw}]\n",
            false,
        ),
        (
            "service",
            "  targetRefs: [{kind: Service, name: web}]\n",
            true,
        ),
        (
            "service entry",
            "  targetRefs: [{group: networking.istio.io, kind: ServiceEntry, name: se}]\n",
            true,
        ),
        (
            "gateway class",
            "  targetRefs: [{group: gateway.networking.k8s.io, kind: GatewayClass, name: istio}]\n",
            true,
        ),
        (
            "deployment",
            "  targetRefs: [{group: apps, kind: Deployment, name: web}]\n",
            false,
        ),
        (
            "cross-namespace target",
            "  targetRefs: [{kind: Service, name: web, namespace: other}]\n",
            false,
        ),
        (
            "deprecated targetRef to a Deployment",
            "  targetRef: {group: apps, kind: Deployment, name: web}\n",
            false,
        ),
        (
            "selector and targetRefs",
            "  selector: {matchLabels: {app: web}}\n  targetRefs: [{kind: Service, name: web}]\n",
            false,
        ),
        (
            "duplicate env",
            "  vmConfig: {env: [{name: A, value: \"1\"}, {name: A, value: \"2\"}]}\n",
            false,
        ),
        (
            "HOST env with a value",
            "  vmConfig: {env: [{name: A, valueFrom: HOST, value: \"1\"}]}\n",
            false,
        ),
        (
            "verificationKey",
            "  verificationKey: \"-----BEGIN PUBLIC KEY-----\"\n",
            true,
        ),
        ("bad sha256", "  sha256: abc\n", false),
        ("port 0", "  match: [{ports: [{number: 0}]}]\n", false),
    ];
    let mut compared = 0;
    for (case, spec, accepted) in cases {
        let file = dir.join("plugin.yaml");
        std::fs::write(&file, manifest(spec)).unwrap();
        let istio = verdict(&["validate", file.to_str().unwrap()]);
        assert_eq!(istio["ok"], accepted, "{case}: istiod says {istio}");
        let ours = deployer(
            dir,
            &[
                "render",
                "-f",
                file.to_str().unwrap(),
                "--no-pin",
                "-o",
                "json",
            ],
        );
        assert_eq!(
            ours.ok, accepted,
            "{case}: istiod says {istio}, deployer says:\n{}{}",
            ours.stdout, ours.stderr
        );
        compared += 1;
    }
    assert_eq!(compared, cases.len());

    // Rules of Istio's CRD (a list map keyed by port number, minLength, maxItems), which the API server applies
    // before istiod sees the object: ValidateWasmPlugin alone lets them through, deployer
    // refuses them as the API server would.
    let seventeen = format!(
        "  targetRefs: [{}]\n",
        (0..17)
            .map(|i| format!("{{kind: Service, name: s{i}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (case, spec, says) in [
        (
            "same port twice in one match",
            "  match: [{ports: [{number: 80}, {number: 80}]}]\n",
            "listed twice",
        ),
        ("empty pluginName", "  pluginName: \"\"\n", "pluginName"),
        ("17 targetRefs", seventeen.as_str(), "at most 16"),
    ] {
        let file = dir.join("crd.yaml");
        std::fs::write(&file, manifest(spec)).unwrap();
        assert_eq!(
            verdict(&["validate", file.to_str().unwrap()])["ok"],
            true,
            "{case}"
        );
        let ours = deployer(dir, &["render", "-f", file.to_str().unwrap(), "--no-pin"]);
        assert!(
            !ours.ok && ours.stderr.contains(says),
            "{case}: {}",
            ours.stderr
        );
    }
}

/// A TrafficExtension manifest around `spec` (YAML lines, indented by the caller).
fn traffic_extension(spec: &str) -> String {
    format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: TrafficExtension\nmetadata:\n  name: judged\n  namespace: demo\nspec:\n{spec}"
    )
}

#[test]
#[ignore = "tier tools: runs Istio's code (istio-judge, built with Go from tools/istio); scripts/test runs it"]
fn traffic_extension_verdicts_agree_with_istiod() {
    let work = workdir();
    let dir = work.path();
    let wasm = "  wasm: {url: oci://registry.example/filters/x:v1}\n";
    let lua = "  lua: {inlineCode: \"function envoy_on_request(h) end\"}\n";
    let big_lua = format!(
        "  lua: {{inlineCode: \"function envoy_on_request(h) end {}\"}}\n",
        "-".repeat(70 * 1024)
    );
    // (case, spec lines, istiod's ValidateTrafficExtension accepts it)
    let cases: Vec<(&str, String, bool)> = vec![
        ("wasm", wasm.into(), true),
        ("lua", lua.into(), true),
        ("neither", "  phase: AUTHZ\n".into(), false),
        ("70 KiB of Lua", big_lua, false),
        (
            "selector and wasm, unspecified phase, priority",
            format!("{wasm}  selector: {{matchLabels: {{app: web}}}}\n  phase: UNSPECIFIED\n  priority: 4\n"),
            true,
        ),
        (
            "selector and targetRefs",
            format!("{wasm}  selector: {{matchLabels: {{app: web}}}}\n  targetRefs: [{{kind: Service, name: web}}]\n"),
            false,
        ),
        (
            "gateway without its group",
            format!("{wasm}  targetRefs: [{{kind: Gateway, name: gw}}]\n"),
            false,
        ),
        (
            "bad sha256",
            "  wasm: {url: oci://registry.example/filters/x:v1, sha256: abc}\n".into(),
            false,
        ),
        (
            "duplicate env",
            "  wasm: {url: oci://r.example/x:v1, vmConfig: {env: [{name: A, value: \"1\"}, {name: A, value: \"2\"}]}}\n".into(),
            false,
        ),
        (
            "bad url scheme",
            "  wasm: {url: \"ftp://r.example/x.wasm\"}\n".into(),
            false,
        ),
    ];
    for (case, spec, accepted) in &cases {
        let file = dir.join("te.yaml");
        std::fs::write(&file, traffic_extension(spec)).unwrap();
        let istio = verdict(&["validate", file.to_str().unwrap()]);
        assert_eq!(istio["ok"], *accepted, "{case}: istiod says {istio}");
        let ours = deployer(
            dir,
            &[
                "render",
                "-f",
                file.to_str().unwrap(),
                "--no-pin",
                "-o",
                "json",
            ],
        );
        assert_eq!(
            ours.ok, *accepted,
            "{case}: istiod says {istio}, deployer says:\n{}{}",
            ours.stdout, ours.stderr
        );
        if ours.ok {
            // What deployer prints is what it read: the same spec, the same kind.
            let printed: serde_json::Value = serde_json::from_str(&ours.stdout).unwrap();
            let read: serde_json::Value = serde_yaml::from_str(&traffic_extension(spec)).unwrap();
            assert_eq!(printed["kind"], "TrafficExtension", "{case}");
            assert_eq!(printed["spec"], read["spec"], "{case}");
        }
    }

    // Both: spec.wasm and spec.lua are a protobuf oneof, so istiod's Go code only ever sees one
    // of them (the judge says ok); the CRD's CEL rule ("exactly one of wasm or lua must be
    // set") is what refuses it, and deployer refuses it as the API server does.
    let file = dir.join("both.yaml");
    std::fs::write(&file, traffic_extension(&format!("{wasm}{lua}"))).unwrap();
    assert_eq!(verdict(&["validate", file.to_str().unwrap()])["ok"], true);
    let ours = deployer(dir, &["render", "-f", file.to_str().unwrap(), "--no-pin"]);
    assert!(
        !ours.ok
            && ours
                .stderr
                .contains("exactly one of wasm or lua must be set"),
        "{}",
        ours.stderr
    );

    // Stricter than istiod, on purpose: a script Envoy would load and never call.
    let file = dir.join("silent.yaml");
    std::fs::write(
        &file,
        traffic_extension("  lua: {inlineCode: \"local x = 1\"}\n"),
    )
    .unwrap();
    assert_eq!(verdict(&["validate", file.to_str().unwrap()])["ok"], true);
    let ours = deployer(dir, &["render", "-f", file.to_str().unwrap()]);
    assert!(
        !ours.ok && ours.stderr.contains("defines neither"),
        "{}",
        ours.stderr
    );
}
