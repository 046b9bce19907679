//! The `mamori` binary's library half: configuration, key bootstrap and
//! wiring, so integration tests start exactly what `mamori serve` starts.

pub mod app;
pub mod backup;
pub mod config;
pub mod keys;
pub mod migrate;
pub mod operator;
