//! Test support shared by Mamori's test suites.
//!
//! Nothing here is meant for production: setup failures panic (with a
//! message saying what could not be set up), which is what a test wants.

// A test fixture that cannot be set up should stop the test with a message.
#![allow(clippy::expect_used)]

pub mod apns;
pub mod datadir;
pub mod pg;
pub mod sink;
