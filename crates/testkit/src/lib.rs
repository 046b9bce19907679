//! Test support shared by Mamori's test suites.
//!
//! Nothing here is meant for production: setup failures panic (with a
//! message saying what could not be set up), which is what a test wants.

pub mod apns;
pub mod sink;
