//! Reads a wasm module the way Envoy's proxy-wasm host loads it and says whether it would load,
//! and why not. `inspect`, `build` and `push` (validation before upload) share it.
//!
//! The rules follow proxy-wasm-cpp-host (src/wasm.cc, src/v8/v8.cc): an ABI marker export,
//! an allocator export, a memory, callbacks with the signatures the host calls them with, and
//! only function imports the host registers, with the host's signatures (`host`).
mod abi;
mod analyze;
pub mod host;
mod report;

use std::path::{Path, PathBuf};

pub use analyze::inspect;
pub use report::{Export, Import, Problem, Report};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read module {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads and inspects a module file.
pub fn inspect_file(path: &Path) -> Result<Report, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(inspect(&bytes))
}

#[cfg(test)]
mod tests;
