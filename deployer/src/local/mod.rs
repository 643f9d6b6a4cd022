//! The lab: a proxy-wasm module in a local Envoy, started through func-e, with its
//! `wasm log` lines streamed back. The pieces: [`config`] renders the Envoy bootstrap,
//! [`tools`] finds func-e and Envoy, [`envoy`] supervises the process.
use std::path::PathBuf;

pub mod config;
pub mod envoy;
pub mod tools;

pub use config::{LabConfig, Mode, plugin_config_from_file};
pub use envoy::{Event, Line, Running};
pub use tools::{Launch, Tools};

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "port {port} on 127.0.0.1 is already in use: stop what listens there or pick another port with --port"
    )]
    PortInUse { port: u16 },
    #[error("cannot check whether port {port} on 127.0.0.1 is free: {source}")]
    PortCheck { port: u16, source: std::io::Error },
    #[error(
        "wasm module {path} does not exist: build one with `deployer build` or pass an existing file to --wasm"
    )]
    ModuleMissing { path: PathBuf },
    #[error("cannot read plugin configuration {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin configuration {path} is not valid JSON or YAML: {message}")]
    ConfigParse { path: PathBuf, message: String },
    #[error("cannot render the Envoy configuration: {message}")]
    Render { message: String },
    #[error(
        "`{tool}` not found in {searched}: run `scripts/setup envoy func-e` or pass --{tool} PATH"
    )]
    ToolMissing {
        tool: &'static str,
        searched: String,
    },
    #[error("{flag} {path}: no executable file there")]
    NotExecutable { path: PathBuf, flag: &'static str },
    #[error("cannot prepare the lab's working directory: {source}")]
    WorkDir { source: std::io::Error },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot wait for {program}: {source}")]
    Wait {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("Envoy refused to start ({status}). What it said:\n{reason}")]
    EnvoyRefused { status: String, reason: String },
    #[error("Envoy did not become ready within {within} (stopped it). What it said:\n{reason}")]
    NotReady { within: String, reason: String },
    #[error("Envoy stopped unexpectedly ({status}). What it said:\n{reason}")]
    EnvoyStopped { status: String, reason: String },
}

/// Fails with `PortInUse` when something already listens on 127.0.0.1:`port`. Envoy binds
/// with SO_REUSEPORT, so a second Envoy would silently share the port instead of failing.
pub fn ensure_port_free(port: u16) -> Result<(), LocalError> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            Err(LocalError::PortInUse { port })
        }
        Err(source) => Err(LocalError::PortCheck { port, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_reported_with_the_fix() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let err = ensure_port_free(port).unwrap_err();
        assert!(matches!(err, LocalError::PortInUse { port: p } if p == port));
        assert!(err.to_string().contains("--port"), "{err}");
        drop(holder);
        ensure_port_free(port).unwrap();
    }
}
