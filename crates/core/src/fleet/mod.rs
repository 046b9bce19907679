//! Fleet: configuration policies and their versions, device groups and the
//! reconciler that brings each device to its groups' policies, and
//! compliance rules with quarantine.

pub mod compliance;
pub mod groups;
pub mod policies;

use mamori_ports::{
    ComplianceStore, DeviceStore, GroupStore, PeopleStore, PolicyStore, QueueStore,
};

/// The storage ports fleet uses, and no more: policies, groups and
/// compliance; devices and the queue, to reconcile; people's devices, for
/// rules by department.
/// [`Services`](crate::Services) holds the store as this trait for the
/// context's files (checked by the architecture tests).
pub trait FleetPorts:
    PolicyStore + GroupStore + ComplianceStore + DeviceStore + QueueStore + PeopleStore
{
}

impl<T> FleetPorts for T where
    T: PolicyStore + GroupStore + ComplianceStore + DeviceStore + QueueStore + PeopleStore + ?Sized
{
}
