//! Library behind the `deployer` CLI. Each module is one boundary with its own error enum;
//! the binary's `commands/` turn those into user-facing output.
pub mod build;
pub mod cluster;
pub mod duration;
pub mod error_chain;
pub mod local;
pub mod mesh;
pub mod module;
pub mod oci;
pub mod output;
pub mod plugin;
pub mod process;
pub mod sign;
pub mod tls;
