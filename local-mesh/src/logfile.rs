//! The pod's `istio-proxy` container log: the agent's and Envoy's output as CRI log lines (what
//! a kubelet writes and kwok reads back for `kubectl logs`).
use std::io::Write;
use std::path::{Path, PathBuf};

use deployer::mesh::logline;
use k8s_openapi::jiff::Timestamp;

use crate::Error;

pub struct LogFile {
    path: PathBuf,
    file: std::fs::File,
}

impl LogFile {
    pub fn create(path: &Path) -> Result<Self, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                what: "cannot open the sidecar log",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One line of the container's `stream` (stdout or stderr).
    pub fn line(&mut self, stream: &str, text: &str) {
        let line = logline::cri_line(Timestamp::now(), stream, text);
        // A full disk must not take the sidecar down; the line goes to our stderr then.
        if self.file.write_all(line.as_bytes()).is_err() {
            eprint!("{line}");
        }
    }

    /// A line of local-mesh's own, in the agent's format, for what happens around the agent
    /// (it could not start, it exited).
    pub fn note(&mut self, level: &str, message: &str) {
        let line = logline::agent_line(Timestamp::now(), level, "local-mesh", message);
        self.line("stderr", &line);
    }
}
