//! proxy-wasm filter: logs `NewHttpContext` per HTTP stream and `NewTcpContext` per TCP connection.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
