//! Shared harness for integration tests: finds the real components installed by
//! `scripts/setup` and starts them on loopback. Each test binary uses a subset of it.
#![allow(dead_code)]

pub mod envoy;
pub mod helm;
pub mod images;
pub mod mesh;
pub mod registry;
pub mod stack;
pub mod tools;
pub mod wasm;
