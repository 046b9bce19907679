//! Device management: enrollment profiles and SCEP, check-in, the command
//! queue and its results, device identity (certificates and the identity
//! cache), re-enrollment, pushes, inventory, and reads of what devices
//! report about their users.

pub mod cache;
pub mod checkin;
pub mod commands;
pub mod devices;
pub mod enroll;
pub mod identity;
pub mod inventory;
pub mod privacy;
pub mod push;
pub mod readiness;
pub mod reenroll;
pub mod retire;
pub mod scep;
pub mod wipe;

use crate::{CoreResult, Services};
use mamori_domain::{CommandState, CommandUuid, DeviceKey};

use mamori_ports::{
    AuditStore, CertStore, DeviceStore, GroupStore, IdentityFeed, InventoryStore, PeopleStore,
    ProfileStore, QueueStore, ReenrollmentStore, SecretStore,
};

/// What another context does when a device answers. Check-in calls every
/// handler the composition root lists in `crate::RESULT_HANDLERS`, in
/// order, so device management calls no context above it and the whole
/// path of a result is written down in one place.
#[async_trait::async_trait]
pub trait ResultHandler: Send + Sync {
    /// A device answered a command (anything but `NotNow`).
    async fn command_answered(
        &self,
        services: &Services,
        device: &DeviceKey,
        command: &CommandUuid,
        state: CommandState,
    ) -> CoreResult<()>;

    /// A device reported the identifiers of the profiles it has.
    async fn profiles_reported(
        &self,
        services: &Services,
        device: &DeviceKey,
        identifiers: &[String],
    ) -> CoreResult<()>;
}

/// The storage ports device management uses, and no more: profiles,
/// certificates, devices, the queue, inventory, re-enrollment and secrets;
/// group names for a device's page; a device's person and offboarding mark;
/// the audit log, where a certificate's issuance and its record are one
/// write.
/// [`Services`](crate::Services) holds the store as this trait for the
/// context's files (checked by the architecture tests).
pub trait DevicePorts:
    ProfileStore
    + CertStore
    + DeviceStore
    + QueueStore
    + InventoryStore
    + ReenrollmentStore
    + SecretStore
    + GroupStore
    + PeopleStore
    + AuditStore
    + IdentityFeed
{
}

impl<T> DevicePorts for T where
    T: ProfileStore
        + CertStore
        + DeviceStore
        + QueueStore
        + InventoryStore
        + ReenrollmentStore
        + SecretStore
        + GroupStore
        + PeopleStore
        + AuditStore
        + IdentityFeed
        + ?Sized
{
}
