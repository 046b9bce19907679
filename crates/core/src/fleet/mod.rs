//! Fleet: configuration policies and their versions, device groups and the
//! reconciler that brings each device to its groups' policies, and
//! compliance rules with quarantine.

pub mod compliance;
pub mod groups;
pub mod policies;
