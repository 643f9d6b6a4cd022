//! Locating the real binaries the tests drive. A missing tool fails the test with the
//! command that installs it; tests never skip.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where `scripts/setup` caches what it fetched or built (see scripts/lib.sh).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASM_DEPLOYER_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    base.join("wasm-deployer")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deployer/ has a parent")
        .to_path_buf()
}

/// Finds `name` in the set-up cache, then on PATH; panics with the fix when absent.
pub fn require(name: &str) -> PathBuf {
    let cached = cache_dir().join("bin").join(name);
    if cached.exists() {
        return cached;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!("`{name}` is not installed: run `scripts/setup all` (or `scripts/test`, which runs it first)")
    })
}

/// The `deployer` binary under test, as an assert_cmd command.
pub fn deployer() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("deployer").expect("deployer binary is built by cargo test")
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// Runs `command` with `stdin` fed in; returns its output whatever the exit status.
pub fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    let description = format!("{command:?}");
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {description}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("write to {description}: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {description}: {e}"))
}

/// Runs `command` and returns its stdout; panics with its stderr when it fails.
pub fn run_ok(command: &mut Command, stdin: Option<&str>) -> String {
    let description = format!("{command:?}");
    let output = run(command, stdin);
    assert!(
        output.status.success(),
        "{description} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}
