//! Images for the Istio-fetch tests, put in a real registry: compat pushes by `deployer push`,
//! and what `deployer push` never writes (image indexes, multi-member gzip layers), uploaded
//! with the library's push. Plus a `deployer` runner isolated from the host's config.
use std::io::{Read, Write};
use std::path::Path;

use deployer::oci::image::{Blob, Format, Image, sha256_digest};
use deployer::oci::{self, ImageRef, Options, Transport};

use super::registry::Registry;
use super::tools;

/// A module Envoy would load; `tag` makes each one distinct.
pub fn module(tag: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (memory (export "memory") 1)
             (func (export "proxy_abi_version_0_2_1"))
             (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
             (data (i32.const 0) "{tag}"))"#
    ))
    .expect("valid wat")
}

pub struct Output {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn deployer(dir: &Path, args: &[&str]) -> Output {
    let output = tools::deployer()
        .current_dir(dir)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .env_remove("SOURCE_DATE_EPOCH")
        .args(args)
        .output()
        .expect("run deployer");
    Output {
        ok: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub fn plain() -> Options {
    Options {
        transport: Transport {
            plain_http: true,
            ..Transport::default()
        },
        ..Options::default()
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// Uploads `image` (blobs, then its manifest) to `reference` with the library's push.
pub fn upload(image: &Image, reference: &str) {
    let reference = ImageRef::parse(reference).expect("reference");
    runtime()
        .block_on(oci::push(image, &reference, &plain(), &|_| {}))
        .unwrap_or_else(|err| panic!("upload {reference}: {err}"));
}

/// The compat image of `module` pushed by `deployer push`; returns its manifest digest.
pub fn push_compat(dir: &Path, module: &[u8], reference: &str) -> String {
    let file = dir.join("push.wasm");
    std::fs::write(&file, module).unwrap();
    let out = deployer(
        dir,
        &[
            "push",
            file.to_str().unwrap(),
            reference,
            "--plain-http",
            "-o",
            "json",
        ],
    );
    assert!(out.ok, "push {reference}: {}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    json["digest"].as_str().unwrap().to_string()
}

/// An OCI image index over `entries` (digest, optional (os, architecture)), pushed to
/// `reference`; returns the index digest.
pub fn push_index(reference: &str, entries: &[(&str, Option<(&str, &str)>)], sizes: u64) -> String {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(digest, platform)| {
            let mut entry = serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": sizes,
            });
            if let Some((os, architecture)) = platform {
                entry["platform"] = serde_json::json!({"os": os, "architecture": architecture});
            }
            entry
        })
        .collect();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::image::OCI_INDEX,
        "manifests": manifests,
    }))
    .unwrap();
    let image = Image {
        format: Format::Compat,
        // push uploads a config blob first; an index has none, so this one is only stored.
        config: Blob::new("application/vnd.oci.empty.v1+json", b"{}".to_vec()),
        layers: Vec::new(),
        manifest_digest: sha256_digest(&index),
        manifest: index,
        manifest_media_type: oci::image::OCI_INDEX.to_string(),
    };
    upload(&image, reference);
    image.manifest_digest
}

pub fn manifest_size(registry: &Registry, repository: &str, digest: &str) -> u64 {
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/{repository}@{digest}", registry.address()),
    ]);
    raw.len() as u64
}

pub fn skopeo(args: &[&str]) -> String {
    let output = std::process::Command::new(tools::require("skopeo"))
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("docker")).unwrap();
    dir
}

/// The tar stream of a compat layer, cut in `members` pieces, each its own gzip member.
pub fn multi_member_layer(module: &[u8], members: usize) -> Vec<u8> {
    let compat = oci::image::package(module, Format::Compat, &oci::Metadata::default()).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&compat.layers[0].data[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut layer = Vec::new();
    for part in tar.chunks(tar.len().div_ceil(members)) {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(part).unwrap();
        layer.extend(encoder.finish().unwrap());
    }
    layer
}

/// A compat image of `module` whose one layer is `members` gzip members, uploaded to
/// `reference`; returns its manifest digest.
pub fn push_multi_member(module: &[u8], members: usize, reference: &str) -> String {
    let layer = Blob::new(
        oci::image::OCI_LAYER_TAR_GZIP,
        multi_member_layer(module, members),
    );
    let config = Blob::new(
        oci::image::OCI_CONFIG,
        br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec(),
    );
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::image::OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.data.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.data.len()}],
    }))
    .unwrap();
    let image = Image {
        format: Format::Compat,
        config,
        layers: vec![layer],
        manifest_digest: sha256_digest(&manifest),
        manifest,
        manifest_media_type: oci::image::OCI_MANIFEST.to_string(),
    };
    upload(&image, reference);
    image.manifest_digest
}
