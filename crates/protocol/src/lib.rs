//! Apple MDM wire protocol for Mamori: property-list handling, check-in and
//! command-response parsing, command encoding and schema validation against
//! Apple's device-management YAML, enrollment-profile generation, and the
//! CMS / SCEP / CSR building blocks.
//!
//! The crate is pure: no file or network I/O at run time (Apple's schema is
//! embedded at compile time from `apple-schema/`).

pub mod bounded;
pub mod checkin;
pub mod cms;
pub mod command;
pub mod connect;
pub mod csr;
#[cfg(any(test, feature = "test-payloads"))]
pub mod fuzzing;
#[cfg(any(test, feature = "test-payloads"))]
pub mod hostile;
pub mod mobileconfig;
pub mod plistjson;
pub mod proxy;
pub mod reply;
pub mod results;
pub mod scep;
pub mod schema;
