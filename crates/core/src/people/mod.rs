//! People and privacy: the sealed directory of people (HR sync, look-ups,
//! reveal), the key vault, personal-data exports, offboarding and
//! retention.

mod directory;
pub mod export;
pub mod offboard;
pub mod vault;

pub use directory::*;
