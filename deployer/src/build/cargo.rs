//! Runs `cargo build` for the wasm target and reads the module path from its JSON messages.
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::workspace::Workspace;
use super::{Built, Error, Request, Toolchain, flags, resolve_manifest};

/// Cargo's output kept for an error message: the end is where the compiler's error is.
const KEPT_OUTPUT_LINES: usize = 200;

/// Builds the requested crate and returns where the module is. Blocking: run it off the
/// async runtime.
pub fn build(request: &Request) -> Result<Built, Error> {
    let manifest = resolve_manifest(request)?;
    let crate_dir = manifest
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let toolchain = Toolchain::detect(&crate_dir)?;
    let workspace = Workspace::load(toolchain.cargo(), &manifest)?;
    let package = workspace.select(
        request.package.as_deref(),
        &manifest,
        request.manifest_path.is_some(),
    )?;
    let Some(lib_target) = package.cdylib.clone() else {
        return Err(Error::NotCdylib {
            package: package.name.clone(),
        });
    };

    let mut command = toolchain.cargo();
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "-p",
            &package.name,
            "--lib",
            "--target",
            flags::TARGET,
            "--profile",
            flags::PROFILE,
        ])
        .args(["--message-format", "json-render-diagnostics"])
        // Its own directory per toolchain: never waits on the lock of a host `cargo test`, and
        // Debian's and rustup's compilers never overwrite each other's artifacts.
        .arg("--target-dir")
        .arg(
            workspace
                .target_directory
                .join("wasm-build")
                .join(toolchain.name()),
        )
        .current_dir(&crate_dir);
    if !workspace.defines_profile(flags::PROFILE) {
        for (key, value) in flags::PROFILE_DEFAULTS {
            command
                .arg("--config")
                .arg(format!("profile.{}.{key}={value}", flags::PROFILE));
        }
    }
    toolchain.configure_build(&mut command);
    if request.quiet {
        command.arg("--quiet");
    }

    let module = run(command, request.quiet, &package.name, &lib_target)?;
    Ok(Built {
        package: package.name.clone(),
        module,
        toolchain,
        target: flags::TARGET,
        profile: flags::PROFILE,
    })
}

fn run(
    mut command: Command,
    quiet: bool,
    package: &str,
    lib_target: &str,
) -> Result<PathBuf, Error> {
    command.stdout(Stdio::piped()).stdin(Stdio::null());
    command.stderr(if quiet {
        Stdio::piped()
    } else {
        Stdio::inherit()
    });
    // A killed deployer takes its cargo along instead of leaving it holding the target dir
    // lock; SIGTERM lets cargo stop its own rustc jobs.
    crate::process::die_with_parent(&mut command, crate::process::Signal::TERM);
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        program: "cargo".into(),
        source,
    })?;

    // Drain stderr on its own thread so a chatty compiler cannot block on a full pipe.
    let stderr = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });

    // json-render-diagnostics: the compiler's errors go to stderr as text, artifacts to stdout.
    let mut module = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message["reason"] == "compiler-artifact" && is_module_of(&message, lib_target) {
                module = wasm_file(&message).or(module);
            }
        }
    }
    let status = child.wait().map_err(|source| Error::Spawn {
        program: "cargo".into(),
        source,
    })?;
    let stderr = stderr
        .and_then(|handle| handle.join().ok())
        .unwrap_or_default();
    if !status.success() {
        let output = if quiet {
            tail(&stderr, KEPT_OUTPUT_LINES)
        } else {
            String::new()
        };
        return Err(Error::Cargo {
            package: package.into(),
            status: status.to_string(),
            output,
        });
    }
    module.ok_or_else(|| Error::NoArtifact {
        package: package.into(),
        target: lib_target.into(),
    })
}

fn is_module_of(message: &Value, lib_target: &str) -> bool {
    let target = &message["target"];
    target["name"].as_str() == Some(lib_target)
        && target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib"))
}

fn wasm_file(message: &Value) -> Option<PathBuf> {
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|name| name.ends_with(".wasm"))
        .map(PathBuf::from)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}
