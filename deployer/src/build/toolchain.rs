//! Which compiler can produce wasm32-wasip1 here: rustup's target when installed, else Debian's
//! packaged toolchain building std from source.
use std::path::Path;
use std::process::Command;

use super::Error;
use super::flags;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup with `rustup target add wasm32-wasip1`: plain `cargo build --target`.
    Rustup,
    /// Debian's rustc-web/cargo-web: `-Zbuild-std` with RUSTC_BOOTSTRAP and wasm-ld.
    Debian,
}

/// What the Debian route needs, with the package that ships it.
const DEBIAN_PARTS: &[(&str, &str)] = &[
    ("/usr/bin/cargo", "cargo-web"),
    ("/usr/bin/rustc", "rustc-web"),
    (
        "/usr/lib/rustlib/src/rust/library/Cargo.lock",
        "rust-web-src",
    ),
    ("/usr/lib/llvm-16/bin/wasm-ld", "lld-16"),
    ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
];

pub const DEBIAN_PACKAGES: &str = "rustc-web cargo-web rust-web-src lld-16 wasi-libc";

impl Toolchain {
    /// Short name, also the directory under `target/wasm-build/`.
    pub fn name(&self) -> &'static str {
        match self {
            Toolchain::Rustup => "rustup",
            Toolchain::Debian => "debian",
        }
    }

    /// Prefers rustup's target (the normal path with internet), falls back to Debian's.
    /// `dir` is where the build runs, so rust-toolchain.toml overrides are honoured.
    pub fn detect(dir: &Path) -> Result<Toolchain, Error> {
        if rustup_has_target(dir) {
            return Ok(Toolchain::Rustup);
        }
        let missing: Vec<String> = DEBIAN_PARTS
            .iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(path, package)| format!("{path} ({package})"))
            .collect();
        if missing.is_empty() {
            return Ok(Toolchain::Debian);
        }
        Err(Error::NoToolchain { missing })
    }

    pub fn cargo(&self) -> Command {
        match self {
            Toolchain::Rustup => Command::new("cargo"),
            Toolchain::Debian => {
                let mut command = Command::new("/usr/bin/cargo");
                // Without RUSTC, Debian's cargo runs rustup's rustc shim (first on PATH), which
                // has no wasm std sources.
                command.env("RUSTC", "/usr/bin/rustc");
                command
            }
        }
    }

    /// Environment and extra arguments for `cargo build`.
    pub fn configure_build(&self, command: &mut Command) {
        let mut rustflags: Vec<&str> = flags::COMMON_RUSTFLAGS.to_vec();
        if *self == Toolchain::Debian {
            command
                .env("RUSTC_BOOTSTRAP", "1")
                .args(flags::DEBIAN_CARGO_ARGS);
            rustflags.extend_from_slice(flags::DEBIAN_RUSTFLAGS);
        }
        // CARGO_ENCODED_RUSTFLAGS would silently win over RUSTFLAGS (cargo sets it for build
        // scripts, and a parent `cargo test` may leak it).
        command.env_remove("CARGO_ENCODED_RUSTFLAGS");
        if !rustflags.is_empty() {
            let user = std::env::var("RUSTFLAGS").unwrap_or_default();
            let joined = std::iter::once(rustflags.join(" "))
                .chain((!user.trim().is_empty()).then_some(user))
                .collect::<Vec<_>>();
            command.env("RUSTFLAGS", joined.join(" "));
        }
    }
}

fn rustup_has_target(dir: &Path) -> bool {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output();
    match output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.trim() == flags::TARGET),
        _ => false,
    }
}

/// The message for a machine with neither route, naming both fixes.
pub fn install_hint(missing: &[String]) -> String {
    format!(
        "no toolchain here can build {target}. Install one of:\n  \
         - rustup's target (needs internet): rustup target add {target}\n  \
         - Debian's packages: apt-get install {DEBIAN_PACKAGES}   (or: scripts/setup wasm)\n\
         missing for the Debian route: {}",
        missing.join(", "),
        target = flags::TARGET,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_hint_names_both_routes() {
        let hint = install_hint(&["/usr/bin/cargo (cargo-web)".into()]);
        assert!(hint.contains("rustup target add wasm32-wasip1"), "{hint}");
        assert!(
            hint.contains("apt-get install rustc-web cargo-web rust-web-src lld-16 wasi-libc"),
            "{hint}"
        );
        assert!(hint.contains("/usr/bin/cargo (cargo-web)"), "{hint}");
    }

    #[test]
    fn debian_route_sets_bootstrap_and_linker() {
        let mut command = Toolchain::Debian.cargo();
        Toolchain::Debian.configure_build(&mut command);
        let envs: Vec<(String, String)> = command
            .get_envs()
            .filter_map(|(key, value)| {
                Some((key.to_str()?.to_string(), value?.to_str()?.to_string()))
            })
            .collect();
        let env = |name: &str| {
            envs.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(env("RUSTC"), Some("/usr/bin/rustc"));
        assert_eq!(env("RUSTC_BOOTSTRAP"), Some("1"));
        assert!(
            env("RUSTFLAGS")
                .is_some_and(|flags| flags.starts_with("-C linker=/usr/lib/llvm-16/bin/wasm-ld"))
        );
        assert!(
            command
                .get_args()
                .any(|arg| arg == "-Zbuild-std=std,panic_abort")
        );
    }
}
