//! Library behind the `deployer` CLI. Each module is one boundary with its own error enum;
//! the binary's `commands/` turn those into user-facing output.
pub mod output;
pub mod oci;
pub mod module;
pub mod local;
pub mod plugin;
pub mod cluster;
pub mod build;
