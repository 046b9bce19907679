//! People and privacy: the sealed directory of people (HR sync, look-ups,
//! reveal), the key vault, personal-data exports, offboarding and
//! retention.

mod directory;
pub mod export;
mod import;
mod keys;
pub mod offboard;
mod retention;
pub mod vault;

pub use directory::*;
pub use import::*;
pub use keys::*;
pub use retention::*;

use mamori_ports::{
    ApprovalStore, CertStore, DepartmentStore, DeviceStore, PeopleStore, SecretStore,
};

/// The storage ports people and privacy uses, and no more: the directory
/// and departments, secrets; approvals, for exports; certificates and
/// devices, to offboard.
/// [`Services`](crate::Services) holds the store as this trait for the
/// context's files (checked by the architecture tests).
pub trait PeoplePorts:
    PeopleStore + DepartmentStore + ApprovalStore + SecretStore + CertStore + DeviceStore
{
}

impl<T> PeoplePorts for T where
    T: PeopleStore
        + DepartmentStore
        + ApprovalStore
        + SecretStore
        + CertStore
        + DeviceStore
        + ?Sized
{
}
