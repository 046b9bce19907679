//! Mamori's domain vocabulary: identifiers parsed once at the edge, the states
//! an enrollment and a command move through, and the records the service layer
//! hands around. No I/O happens here.

mod admin;
mod approval;
mod audit_action;
pub mod breach;
pub mod chain;
mod group;
mod ids;
mod incident;
mod logsafe;
mod model;
mod people;
mod policy;

pub use admin::{
    AdminAccount, AdminCredentials, AdminSession, AuditEvent, AuditRecord, Permission, Role,
    SessionStage, Suspension, WebauthnCredential,
};

pub use approval::{Approval, ApprovalStatus};
pub use audit_action::{AuditAction, Outcome};
pub use group::{DeviceGroup, DeviceProfile, GroupRule, ProfileState};
pub use ids::{
    AdminId, ApprovalId, CommandUuid, DeviceKey, GroupId, IdError, IncidentId, PersonId, PolicyId,
    SessionId, TokenId,
};
pub use incident::{AffectedPerson, Incident, IncidentFacts, IncidentStatus};
pub use logsafe::{escaped_in_logs, log_safe, LogSafe};
pub use model::{
    ApiToken, CommandRecord, CommandState, Device, DeviceCertificate, EnrollmentLink,
    EnrollmentProfile, EnrollmentStatus, ProfileId,
};
pub use people::{EmploymentStatus, PersonRecord, PersonView, PersonalFields};
pub use policy::{Policy, PolicyKind};
