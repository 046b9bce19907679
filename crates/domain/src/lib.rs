//! Mamori's domain vocabulary: identifiers parsed once at the edge, the states
//! an enrollment and a command move through, and the records the service layer
//! hands around. No I/O happens here.

mod ids;
mod model;

pub use ids::{CommandUuid, DeviceKey, IdError, TokenId};
pub use model::{
    ApiToken, CommandRecord, CommandState, Device, DeviceCertificate, EnrollmentLink,
    EnrollmentProfile, EnrollmentStatus, ProfileId,
};
