//! proxy-wasm filter: logs `NewHttpContext` per HTTP stream and `NewTcpContext` per TCP
//! connection, optionally shaped by a small JSON plugin configuration (see `config`).
//!
//! `config` and `plugin` are plain Rust, tested on the host; `abi` is the thin proxy-wasm
//! boundary compiled only for wasm32.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// `abi` is the crate's only unsafe code and compiled only for wasm32: `scripts/test` lints it
// with clippy for wasm32-wasip1, where this applies.
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "wasm32")]
mod abi;
pub mod config;
mod json;
pub mod plugin;
