//! Every flag that shapes the module, in one place. To change how small the module gets,
//! edit this file only.

/// proxy-wasm hosts load core modules; wasip1 gives std a libc and Envoy provides its imports.
pub const TARGET: &str = "wasm32-wasip1";

/// Size-tuned profile, defined in the toolkit's root Cargo.toml.
pub const PROFILE: &str = "wasm-release";

/// The profile for crates whose workspace does not define `[profile.wasm-release]`, passed as
/// `--config profile.wasm-release.<key>=<value>`. Mirrors the root Cargo.toml.
pub const PROFILE_DEFAULTS: &[(&str, &str)] = &[
    ("inherits", "\"release\""),
    ("opt-level", "\"s\""),
    ("lto", "true"),
    ("codegen-units", "1"),
    ("panic", "\"abort\""),
    ("strip", "true"),
    ("debug", "false"),
];

/// Debian's toolchain has no prebuilt wasm std: build it from rust-web-src (needs
/// RUSTC_BOOTSTRAP). Unstable size flags (e.g. `-Zbuild-std-features=...`) belong here too;
/// they only apply to this toolchain, since rustup's stable one rejects -Z flags.
pub const DEBIAN_CARGO_ARGS: &[&str] = &["-Zbuild-std=std,panic_abort"];

/// Debian's rustc has no bundled rust-lld or self-contained wasi-libc: link with LLVM 16's
/// wasm-ld against Debian's wasi-libc.
pub const DEBIAN_RUSTFLAGS: &[&str] = &[
    "-C",
    "linker=/usr/lib/llvm-16/bin/wasm-ld",
    "-C",
    "link-self-contained=no",
    "-L",
    "/usr/lib/wasm32-wasi",
];

/// Extra RUSTFLAGS for every toolchain (none yet).
pub const COMMON_RUSTFLAGS: &[&str] = &[];

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback profile must stay what the toolkit's own workspace measured as smallest.
    #[test]
    fn profile_defaults_match_the_root_manifest() {
        let manifest =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
                .expect("read the root Cargo.toml");
        let header = format!("[profile.{PROFILE}]");
        let section: Vec<(String, String)> = manifest
            .lines()
            .skip_while(|line| line.trim() != header)
            .skip(1)
            .take_while(|line| !line.trim_start().starts_with('['))
            .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
            .collect();
        let defaults: Vec<(String, String)> = PROFILE_DEFAULTS
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        assert_eq!(section, defaults);
    }
}
