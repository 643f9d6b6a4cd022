//! Compiles a proxy-wasm crate to a wasm32-wasip1 module with the size-tuned profile, using
//! whichever toolchain this machine has (see `toolchain`), and finds the module from cargo's
//! own artifact messages.
mod cargo;
pub mod flags;
mod toolchain;
mod workspace;

use std::path::{Path, PathBuf};

pub use cargo::build;
pub use toolchain::Toolchain;
pub use workspace::BUNDLED_FILTER;

#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Cargo.toml of the crate or workspace; default: the workspace around the current
    /// directory, else the toolkit checkout this binary was built from.
    pub manifest_path: Option<PathBuf>,
    /// Package to build; default: see `Workspace::select`.
    pub package: Option<String>,
    /// Capture cargo's output (shown only on failure) instead of streaming it.
    pub quiet: bool,
}

#[derive(Debug, Clone)]
pub struct Built {
    pub package: String,
    pub module: PathBuf,
    pub toolchain: Toolchain,
    pub target: &'static str,
    pub profile: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", toolchain::install_hint(missing))]
    NoToolchain { missing: Vec<String> },
    #[error("{path} does not exist: --manifest-path takes the Cargo.toml of a proxy-wasm crate")]
    ManifestNotFound { path: PathBuf },
    #[error(
        "no Cargo.toml in {dir} or its parents: run from a proxy-wasm crate or pass --manifest-path path/to/Cargo.toml"
    )]
    NoManifest { dir: PathBuf },
    #[error("cargo cannot read {manifest}: {message}")]
    Metadata { manifest: PathBuf, message: String },
    #[error("no package `{package}` in this workspace (packages: {})", available.join(", "))]
    PackageNotFound {
        package: String,
        available: Vec<String>,
    },
    #[error(
        "cannot tell which crate to build in {workspace} (cdylib crates: {}): pass -p NAME",
        if candidates.is_empty() { "none".to_string() } else { candidates.join(", ") }
    )]
    AmbiguousPackage {
        workspace: PathBuf,
        candidates: Vec<String>,
    },
    #[error(
        "package `{package}` builds no cdylib, so there is no .wasm module: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml"
    )]
    NotCdylib { package: String },
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cargo build of `{package}` failed ({status}){}", if output.is_empty() { String::new() } else { format!(":\n{output}") })]
    Cargo {
        package: String,
        status: String,
        output: String,
    },
    #[error(
        "cargo built `{package}` but reported no .wasm artifact (looked for the cdylib `{target}`)"
    )]
    NoArtifact { package: String, target: String },
}

/// The manifest a request builds from (see `Request::manifest_path`).
fn resolve_manifest(request: &Request) -> Result<PathBuf, Error> {
    if let Some(path) = &request.manifest_path {
        let path = if path.is_dir() {
            path.join("Cargo.toml")
        } else {
            path.clone()
        };
        if !path.is_file() {
            return Err(Error::ManifestNotFound { path });
        }
        // cargo runs in the crate's directory, where a relative path would not resolve.
        return Ok(std::path::absolute(&path).unwrap_or(path));
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if let Some(found) = cwd
        .ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|path| path.is_file())
    {
        return Ok(found);
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    if checkout.is_file() {
        return Ok(checkout);
    }
    Err(Error::NoManifest { dir: cwd })
}
