//! End-to-end tests: the real server (as `mamori serve` wires it) on loopback
//! over real TLS with a real SQLite database in a temporary directory, driven
//! by the device simulator and by an administrator's HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod admins;
mod anomaly;
mod approvals;
mod architecture;
mod attacks;
mod audit;
mod authz;
mod backup;
mod bad_input;
mod browser;
mod bulk_reads;
mod cli;
mod common;
mod compliance;
mod connections;
mod console;
mod console_admins;
mod console_approvals;
mod console_audit;
mod console_devices;
mod console_enrollment;
mod console_fleet;
mod console_import;
mod console_passkey;
mod console_people;
mod console_settings;
mod dead_credentials;
mod device_privacy;
mod enrollment;
mod groups;
mod hostile;
mod incidents;
mod insider;
mod interop;
mod inventory;
mod people;
mod policies;
mod push;
mod queue;
mod reenroll;
mod scep_input;
mod sinks;
