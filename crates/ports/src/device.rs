//! Ports of device management: enrollment profiles, certificates, devices,
//! the command queue, inventory, held re-enrollments.

use crate::StoreResult;
use async_trait::async_trait;
use mamori_domain::{
    CommandRecord, CommandState, CommandUuid, Device, DeviceCertificate, DeviceKey, EnrollmentLink,
    EnrollmentProfile, ProfileId,
};
use time::{Duration, OffsetDateTime};

/// Enrollment profiles and their SCEP challenges.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Records a new profile.
    async fn insert_profile(&self, profile: &EnrollmentProfile) -> StoreResult<()>;
    /// Atomically spends one use of the challenge whose SHA-256 is given:
    /// succeeds only when the profile exists, is not expired at `now` and has
    /// uses left. Returns the profile id when a use was spent.
    async fn consume_challenge(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProfileId>>;
    /// The profile whose challenge has this SHA-256, if it is unexpired at
    /// `now` and has uses left. Spends nothing (see
    /// [`CertStore::record_issuance`]).
    async fn challenge_profile(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProfileId>>;
    /// Records a new enrollment link.
    async fn insert_link(&self, link: &EnrollmentLink) -> StoreResult<()>;
    /// Atomically spends one download of the link whose secret hash is given
    /// (exists, unexpired, uses left); returns it when a use was spent.
    async fn consume_link(
        &self,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<EnrollmentLink>>;
    /// The links still usable at `now` (unexpired, downloads left), newest
    /// first, at most `limit`.
    async fn active_links(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<EnrollmentLink>>;
    /// Ends a link now; false when it was unknown or already over.
    async fn revoke_link(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool>;
}

/// Device identity certificates issued by the CA.
#[async_trait]
pub trait CertStore: Send + Sync {
    /// Records an issued certificate.
    async fn insert_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()>;
    /// Records a SCEP issuance, all of it in one transaction: spends one use
    /// of the enrollment profile `spend` when given (it must exist, be
    /// unexpired at `now` and have uses left), inserts the certificate and
    /// appends the audit record, linked onto the chain's end by `linker`
    /// as [`crate::AuditStore::append_audit`] does. A renewal
    /// (`cert.renewed_from`) is recorded only if the certificate it renews
    /// is still unrevoked, unexpired, bound to the same device and not held
    /// for an administrator, checked in the same transaction (and a
    /// revocation of the device's certificates is ordered with it).
    /// `false`: no use was left to spend, or the renewed identity was
    /// retired; nothing was written (nor on an `Err`).
    async fn record_issuance(
        &self,
        spend: Option<&str>,
        cert: &DeviceCertificate,
        audit: &mamori_domain::AuditEvent,
        linker: &dyn crate::ChainLinker,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Looks a certificate up by SHA-256 fingerprint.
    async fn certificate(&self, fingerprint: &str) -> StoreResult<Option<DeviceCertificate>>;
    /// Binds a certificate to the enrollment that authenticated with it.
    async fn bind_certificate(&self, fingerprint: &str, device: &DeviceKey) -> StoreResult<()>;
    /// Every certificate bound to the device (revoked or not), newest first.
    async fn device_certificates(&self, device: &DeviceKey) -> StoreResult<Vec<DeviceCertificate>>;
    /// Revokes every unrevoked certificate bound to the device; returns how many.
    async fn revoke_device_certificates(
        &self,
        device: &DeviceKey,
        now: OffsetDateTime,
    ) -> StoreResult<u64>;
}

/// What an Authenticate message establishes.
#[derive(Debug, Clone)]
pub struct AuthenticateRecord {
    /// Enrollment identity.
    pub device: DeviceKey,
    /// Set for user enrollments.
    pub enrollment_id: Option<String>,
    /// APNs topic.
    pub topic: String,
    /// Inventory fields Authenticate carries.
    pub fields: InventoryFields,
    /// Time of the message.
    pub now: OffsetDateTime,
}

/// Inventory fields kept as typed, searchable columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InventoryFields {
    /// Serial number.
    pub serial_number: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Model name.
    pub model_name: Option<String>,
    /// Product name.
    pub product_name: Option<String>,
    /// Device name.
    pub device_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// OS build.
    pub build_version: Option<String>,
}

/// User channels one device may have (a Shared iPad's users): a
/// TokenUpdate for one more is not stored. Without a cap, one device could
/// grow the table without end with made-up user IDs (the outside attack's
/// finding: 65 MB in 22 s).
pub const MAX_USER_CHANNELS: i64 = 100;

/// What a TokenUpdate establishes.
#[derive(Debug, Clone)]
pub struct TokenUpdateRecord {
    /// Enrollment identity.
    pub device: DeviceKey,
    /// Set when the message came on a user channel.
    pub user_id: Option<String>,
    /// APNs device token.
    pub push_token: Vec<u8>,
    /// PushMagic to send in pushes.
    pub push_magic: String,
    /// APNs topic.
    pub topic: String,
    /// UnlockToken sealed with the server's secret box, when the device sent one.
    pub sealed_unlock_token: Option<Vec<u8>>,
    /// Time of the message.
    pub now: OffsetDateTime,
}

/// Which inventory result a command produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryKind {
    /// DeviceInformation QueryResponses.
    DeviceInformation,
    /// SecurityInfo.
    SecurityInfo,
}

/// How many devices are in each state (the console's overview).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceCounts {
    /// Enrolled: managed and reachable by push.
    pub enrolled: u64,
    /// Enrolled and seen at or after the time asked about.
    pub seen_since: u64,
    /// Authenticate received but never a TokenUpdate: the enrollment
    /// never finished, so the device has never checked in.
    pub waiting: u64,
    /// Checked out or unenrolled.
    pub checked_out: u64,
}

/// Where a device can be reached by push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// Enrollment identity.
    pub device: DeviceKey,
    /// APNs device token.
    pub token: Vec<u8>,
    /// PushMagic.
    pub push_magic: String,
    /// APNs topic.
    pub topic: String,
}

/// Enrollments and their inventory.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Creates or resets the enrollment on Authenticate (the queue of a
    /// previous enrollment of the same device is cleared).
    async fn authenticate(&self, rec: &AuthenticateRecord) -> StoreResult<()>;
    /// As [`Self::authenticate`], for a new identity starting a new
    /// enrollment (no enrollment of the device is live): in the same
    /// transaction, the device's person assignment and its static group
    /// memberships, left from an earlier enrollment that ended, are
    /// cleared. Returns what was cleared.
    async fn authenticate_anew(&self, rec: &AuthenticateRecord) -> StoreResult<ClearedAssignment>;
    /// Stores push credentials; false when the device is unknown, or when
    /// a new user channel would make more than [`MAX_USER_CHANNELS`].
    async fn token_update(&self, rec: &TokenUpdateRecord) -> StoreResult<bool>;
    /// Ends the enrollment and clears its queue; false when unknown.
    async fn check_out(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<bool>;
    /// Records that the device was seen.
    async fn touch(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<()>;
    /// One device.
    async fn device(&self, device: &DeviceKey) -> StoreResult<Option<Device>>;
    /// A page of devices ordered by identifier, starting after `after`.
    async fn list_devices(&self, after: Option<&DeviceKey>, limit: u32)
        -> StoreResult<Vec<Device>>;
    /// How many devices are in each state; `seen_since` counts the
    /// enrolled ones seen at or after that time.
    async fn device_counts(&self, seen_since: OffsetDateTime) -> StoreResult<DeviceCounts>;
    /// Push targets of enrolled, push-ready devices among the given ones.
    async fn push_targets(&self, devices: &[DeviceKey]) -> StoreResult<Vec<PushTarget>>;
    /// The device's UnlockToken as stored (sealed), if it sent one.
    async fn sealed_unlock_token(&self, device: &DeviceKey) -> StoreResult<Option<Vec<u8>>>;
    /// Stores an inventory result (raw JSON plus typed fields).
    async fn set_inventory(
        &self,
        device: &DeviceKey,
        kind: InventoryKind,
        raw: &serde_json::Value,
        fields: &InventoryFields,
    ) -> StoreResult<()>;
}

/// What [`DeviceStore::authenticate_anew`] cleared of an earlier
/// enrollment of the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClearedAssignment {
    /// The device was assigned to a person.
    pub person: bool,
    /// Static groups it was a member of.
    pub static_groups: u64,
}

/// A command to queue for one device.
#[derive(Debug, Clone)]
pub struct NewCommand {
    /// Command UUID (unique per device and command).
    pub command_uuid: CommandUuid,
    /// Target device.
    pub device: DeviceKey,
    /// RequestType.
    pub request_type: String,
    /// The encoded plist the device will receive.
    pub payload: Vec<u8>,
}

/// A budget of commands queued without a second administrator (an
/// EraseDevice of one device), shared by every administrator and every
/// server: at most `at_most` commands in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBudget<'a> {
    /// The budget's name (`erase`).
    pub name: &'a str,
    /// The sliding window: commands queued longer ago no longer count.
    pub window: Duration,
    /// Commands the window may hold.
    pub at_most: u64,
}

/// A command being delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredCommand {
    /// Command UUID.
    pub command_uuid: CommandUuid,
    /// The encoded plist.
    pub payload: Vec<u8>,
}

/// Outcome of recording a device's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultOutcome {
    /// Stored; carries the command's RequestType.
    Recorded { request_type: String },
    /// No such command is outstanding for this device.
    UnknownCommand,
}

/// The command queue.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Queues commands (all or nothing).
    async fn enqueue(&self, commands: &[NewCommand], now: OffsetDateTime) -> StoreResult<()>;
    /// Queues commands (all or nothing) if they fit in `budget` beside
    /// what it spent within its window before `now`, spends it and appends
    /// `audit` (linked onto the chain's end by `linker`, as
    /// [`crate::AuditStore::append_audit`] does), all in one transaction:
    /// `None`. When they do not fit, nothing is queued, spent or recorded:
    /// `Some(spent)`, the commands already in the window. Judged and spent
    /// atomically across every server, so requests at once cannot together
    /// overspend.
    async fn enqueue_within(
        &self,
        commands: &[NewCommand],
        budget: QueueBudget<'_>,
        audit: &mamori_domain::AuditEvent,
        linker: &dyn crate::ChainLinker,
        now: OffsetDateTime,
    ) -> StoreResult<Option<u64>>;
    /// Marks the oldest eligible command Delivered and returns it. NotNow
    /// commands are eligible only when `include_not_now` (the device is Idle).
    async fn next_command(
        &self,
        device: &DeviceKey,
        include_not_now: bool,
        now: OffsetDateTime,
    ) -> StoreResult<Option<DeliveredCommand>>;
    /// Records the device's answer.
    async fn record_result(
        &self,
        device: &DeviceKey,
        command: &CommandUuid,
        state: CommandState,
        result: &serde_json::Value,
        error_chain: Option<&serde_json::Value>,
        now: OffsetDateTime,
    ) -> StoreResult<ResultOutcome>;
    /// Every per-device record of a command UUID.
    async fn command(&self, command: &CommandUuid) -> StoreResult<Option<CommandRecord>>;
    /// A device's commands, newest first (results left out).
    async fn device_commands(
        &self,
        device: &DeviceKey,
        limit: u32,
    ) -> StoreResult<Vec<CommandRecord>>;
}

/// One installed application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstalledApp {
    /// Bundle identifier.
    pub bundle_id: String,
    /// Name.
    pub name: Option<String>,
    /// Version (short version when reported).
    pub version: Option<String>,
}

/// Installed applications and the inventory refresh schedule.
#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Replaces a device's application list.
    async fn set_device_apps(&self, device: &DeviceKey, apps: &[InstalledApp]) -> StoreResult<()>;
    /// A device's applications.
    async fn device_apps(&self, device: &DeviceKey) -> StoreResult<Vec<InstalledApp>>;
    /// Devices with an application whose bundle ID is `app` or whose name
    /// contains it (case-insensitive).
    async fn devices_with_app(&self, app: &str) -> StoreResult<Vec<DeviceKey>>;
    /// Enrolled devices whose inventory was never asked for, or last
    /// before `before`; at most `limit`.
    async fn inventory_due(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<DeviceKey>>;
    /// Notes that the inventory of these devices was asked for now.
    async fn mark_inventory_requested(
        &self,
        devices: &[DeviceKey],
        now: OffsetDateTime,
    ) -> StoreResult<()>;
}

/// A device identity held back from an enrollment whose previous identity
/// is still live (see `crate::reenroll`).
#[derive(Debug, Clone)]
pub struct PendingReenrollment {
    /// SHA-256 fingerprint of the held certificate.
    pub fingerprint: String,
    /// What its Authenticate message would have recorded.
    pub authenticate: AuthenticateRecord,
    /// Where the Authenticate came from.
    pub source: Option<String>,
    /// What its TokenUpdate sent, if it has sent one.
    pub push: Option<PendingPush>,
}

/// Push credentials of a held identity (applied on approval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPush {
    /// APNs device token.
    pub token: Vec<u8>,
    /// PushMagic.
    pub magic: String,
    /// UnlockToken, sealed.
    pub sealed_unlock_token: Option<Vec<u8>>,
}

/// Held re-enrollments.
#[async_trait]
pub trait ReenrollmentStore: Send + Sync {
    /// Holds an identity (replacing an earlier hold of the same one for the
    /// same device). `Ok(false)`: the identity is held for another device,
    /// and nothing changed (a hold never moves to another device).
    async fn hold_reenrollment(&self, p: &PendingReenrollment) -> StoreResult<bool>;
    /// Records the push credentials a held identity sent; `Ok(false)` when
    /// that identity is not held.
    async fn set_held_push(&self, fingerprint: &str, push: &PendingPush) -> StoreResult<bool>;
    /// One held identity, by certificate fingerprint.
    async fn held_reenrollment(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<PendingReenrollment>>;
    /// Every held identity (of one device when given), oldest first.
    async fn held_reenrollments(
        &self,
        device: Option<&DeviceKey>,
    ) -> StoreResult<Vec<PendingReenrollment>>;
    /// Forgets a held identity; `Ok(false)` when it was not held.
    async fn release_reenrollment(&self, fingerprint: &str) -> StoreResult<bool>;
    /// Revokes a held identity's certificate and forgets it, together.
    async fn revoke_held(&self, fingerprint: &str, now: OffsetDateTime) -> StoreResult<bool>;
}
