//! The narrow storage and delivery ports the services depend on. Each consumer
//! asks for the smallest trait it needs; `Store` bundles them for wiring.
//! Implementations live in `mamori-store` (SQLite now, PostgreSQL next).
//!
//! Contract: "not found" is `Ok(None)` / `Ok(false)`; `Err` always means the
//! backend failed.

use async_trait::async_trait;
use mamori_domain::{
    AdminAccount, AdminCredentials, AdminId, AdminSession, ApiToken, Approval, ApprovalStatus,
    AuditEvent, AuditRecord, CommandRecord, CommandState, CommandUuid, Device, DeviceCertificate,
    DeviceKey, EnrollmentLink, EnrollmentProfile, PersonId, PersonRecord, ProfileId, Role,
    SessionId, TokenId, WebauthnCredential,
};
use time::OffsetDateTime;

/// A storage backend failure. The text is for the log, never for a client.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

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
}

/// Device identity certificates issued by the CA.
#[async_trait]
pub trait CertStore: Send + Sync {
    /// Records an issued certificate.
    async fn insert_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()>;
    /// Records a SCEP issuance, all of it in one transaction: spends one use
    /// of the enrollment profile `spend` when given (it must exist, be
    /// unexpired at `now` and have uses left), inserts the certificate and
    /// appends the audit record. `Ok(false)`: no use was left to spend, and
    /// nothing was written; on `Err` nothing was written either.
    async fn record_issuance(
        &self,
        spend: Option<&str>,
        cert: &DeviceCertificate,
        audit: &AuditEvent,
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
    /// Stores push credentials; false when the device is unknown.
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

/// Administrator API tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Records a token with the hash of its secret.
    async fn insert_token(&self, token: &ApiToken, secret_hash: &str) -> StoreResult<()>;
    /// A token and its secret hash.
    async fn token(&self, id: &TokenId) -> StoreResult<Option<(ApiToken, String)>>;
    /// Records a successful use.
    async fn touch_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<()>;
    /// Revokes a token; false when unknown or already revoked.
    async fn revoke_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<bool>;
    /// Every token, or only those of one account; oldest first.
    async fn list_tokens(&self, admin: Option<&AdminId>) -> StoreResult<Vec<ApiToken>>;
}

/// Administrator accounts, their factors and their sessions.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Records a new account; false when the name is taken.
    async fn insert_admin(
        &self,
        admin: &AdminAccount,
        credentials: &AdminCredentials,
    ) -> StoreResult<bool>;
    /// An account by ID.
    async fn admin(&self, id: &AdminId) -> StoreResult<Option<AdminAccount>>;
    /// An account by login name (exact match).
    async fn admin_by_name(&self, name: &str) -> StoreResult<Option<AdminAccount>>;
    /// Every account, by name.
    async fn list_admins(&self) -> StoreResult<Vec<AdminAccount>>;
    /// An account's secrets.
    async fn admin_credentials(&self, id: &AdminId) -> StoreResult<Option<AdminCredentials>>;
    /// Replaces the password hash and the must-change flag; `now` is when
    /// the password was set.
    async fn set_password(
        &self,
        id: &AdminId,
        password_hash: &str,
        must_change: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Resets an account that lost its factors, in one transaction: a new
    /// one-time password (must be changed), no TOTP, no WebAuthn
    /// credentials, no recovery codes, no lock, and every session and token
    /// revoked. Returns (sessions, tokens) revoked; `None` for no account.
    async fn reset_admin(
        &self,
        id: &AdminId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Removes the enrolled TOTP secret; false when none was enrolled.
    async fn clear_totp(&self, id: &AdminId) -> StoreResult<bool>;
    /// Removes one of the account's WebAuthn credentials; false when the
    /// account has no credential with that ID.
    async fn delete_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool>;
    /// Stores (or clears) a TOTP secret offered for enrollment.
    async fn set_totp_pending(&self, id: &AdminId, sealed: Option<&[u8]>) -> StoreResult<()>;
    /// Makes the pending TOTP secret the enrolled one, with its first
    /// accepted step, and clears the pending one. False when none was pending.
    async fn activate_totp(&self, id: &AdminId, step: u64) -> StoreResult<bool>;
    /// Replay protection: records `step` as the last accepted TOTP step only
    /// if it is later than the stored one (atomically); false otherwise.
    async fn advance_totp_step(&self, id: &AdminId, step: u64) -> StoreResult<bool>;
    /// Adds one failed login; returns the new count of consecutive failures.
    async fn add_login_failure(&self, id: &AdminId) -> StoreResult<u32>;
    /// Sets the backoff end and the lock (None clears).
    async fn set_login_block(
        &self,
        id: &AdminId,
        throttled_until: Option<OffsetDateTime>,
        locked_at: Option<OffsetDateTime>,
    ) -> StoreResult<()>;
    /// Unlocks: clears the lock, the backoff and the failure count.
    async fn unlock_admin(&self, id: &AdminId) -> StoreResult<()>;
    /// Records a completed login: clears failures, sets time and source.
    async fn record_login(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        source: &str,
    ) -> StoreResult<()>;
    /// Changes the role.
    async fn set_role(&self, id: &AdminId, role: Role) -> StoreResult<()>;
    /// Disables the account and, in the same transaction, revokes all its
    /// sessions and tokens. Returns (sessions, tokens) revoked; `None` when
    /// the account was already disabled or does not exist, or, with
    /// `keep_last_owner`, when it is the last enabled owner (checked in the
    /// same statement that disables it).
    async fn disable_admin(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        reason: &str,
        keep_last_owner: bool,
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Re-enables a disabled account (its old sessions and tokens stay
    /// revoked); false when it was not disabled.
    async fn enable_admin(&self, id: &AdminId) -> StoreResult<bool>;
    /// Suspends the account (kept until [`AdminStore::reinstate_admin`])
    /// and, in the same transaction, revokes all its sessions and tokens.
    /// Returns (sessions, tokens) revoked; `None` when the account was
    /// already suspended or does not exist.
    async fn suspend_admin(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        reason: &str,
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Lifts a suspension (the revoked sessions and tokens stay revoked);
    /// false when the account was not suspended.
    async fn reinstate_admin(&self, id: &AdminId) -> StoreResult<bool>;
    /// Replaces the account's recovery codes (SHA-256 hashes).
    async fn replace_recovery_codes(&self, id: &AdminId, hashes: &[String]) -> StoreResult<()>;
    /// Spends an unused recovery code; false when none matches.
    async fn use_recovery_code(
        &self,
        id: &AdminId,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Unused recovery codes left.
    async fn recovery_codes_left(&self, id: &AdminId) -> StoreResult<u32>;
    /// Records a WebAuthn credential; false when its ID is already registered.
    async fn insert_webauthn(&self, credential: &WebauthnCredential) -> StoreResult<bool>;
    /// Makes a pending credential (registered in a recovery session)
    /// usable now; `Ok(false)` when there is no such pending credential.
    async fn activate_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool>;
    /// The account's WebAuthn credentials, oldest first.
    async fn webauthn_credentials(&self, id: &AdminId) -> StoreResult<Vec<WebauthnCredential>>;
    /// Stores a credential's updated data (signature counter) and use time.
    async fn update_webauthn(
        &self,
        credential_id: &str,
        data: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Records a session with the SHA-256 of its secret.
    async fn insert_session(&self, session: &AdminSession, secret_hash: &str) -> StoreResult<()>;
    /// The session whose secret has this hash (revoked or not).
    async fn session_by_secret(&self, secret_hash: &str) -> StoreResult<Option<AdminSession>>;
    /// Records activity on a session.
    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()>;
    /// Records a re-authentication.
    async fn set_session_step_up(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()>;
    /// Revokes one session of an account; false when it is unknown, not the
    /// account's, or already revoked.
    async fn revoke_session(
        &self,
        admin: &AdminId,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Revokes every live session of an account, except `keep`; returns how
    /// many.
    async fn revoke_admin_sessions(
        &self,
        admin: &AdminId,
        keep: Option<&SessionId>,
        now: OffsetDateTime,
    ) -> StoreResult<u64>;
    /// The account's unrevoked, unexpired sessions, newest first.
    async fn list_sessions(
        &self,
        admin: &AdminId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<AdminSession>>;
}

/// Which blind index a lookup uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonIndex {
    /// The e-mail's index.
    Email,
    /// The user ID's index.
    UserId,
}

/// Why a batch of people was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeopleConflict {
    /// Row `row` (0-based in the batch) has an e-mail or user ID index
    /// already taken (by a stored person or an earlier row of the batch).
    Duplicate {
        /// Row in the batch.
        row: usize,
        /// Which index.
        index: PersonIndex,
    },
}

/// The people directory (personal fields only ever sealed).
#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// Stores a batch of new people in one transaction: all or none. A
    /// taken blind index is `Ok(Err(..))` naming the first such row.
    async fn insert_people(
        &self,
        people: &[PersonRecord],
    ) -> StoreResult<Result<(), PeopleConflict>>;
    /// Replaces a person's sealed fields, indexes, status and times (not the
    /// key). `Ok(Err(..))` when the new index is another person's; `Ok(Ok(false))`
    /// when the person does not exist.
    async fn update_person(
        &self,
        person: &PersonRecord,
    ) -> StoreResult<Result<bool, PeopleConflict>>;
    /// A person by pseudonymous ID.
    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRecord>>;
    /// A person by blind index.
    async fn person_by_index(
        &self,
        index: PersonIndex,
        hash: &str,
    ) -> StoreResult<Option<PersonRecord>>;
    /// People ordered by ID, after `after`, at most `limit`.
    async fn list_people(
        &self,
        after: Option<&PersonId>,
        limit: u32,
    ) -> StoreResult<Vec<PersonRecord>>;
    /// Number of people.
    async fn count_people(&self) -> StoreResult<u64>;
    /// Assigns a device to a person, or unassigns it (`None`); false when
    /// the device does not exist.
    async fn assign_device(
        &self,
        device: &DeviceKey,
        person: Option<&PersonId>,
    ) -> StoreResult<bool>;
    /// The devices assigned to a person.
    async fn person_devices(&self, id: &PersonId) -> StoreResult<Vec<DeviceKey>>;
    /// The devices assigned to each of `ids` (same order).
    async fn people_devices(&self, ids: &[PersonId]) -> StoreResult<Vec<Vec<DeviceKey>>>;
    /// The person a device is assigned to.
    async fn device_person(&self, device: &DeviceKey) -> StoreResult<Option<PersonId>>;
    /// Departed people whose departure is at or before `before`, oldest
    /// first, at most `limit`.
    async fn people_due_for_purge(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<PersonId>>;
    /// Purges people in one transaction: their data keys (crypto-shredding
    /// every copy of their sealed fields), their rows, their device and
    /// account links; leaves a tombstone (ID, time) each. Returns how many
    /// existed.
    async fn purge_people(&self, ids: &[PersonId], now: OffsetDateTime) -> StoreResult<u64>;
    /// Whether `id` was purged (a tombstone exists).
    async fn is_purged(&self, id: &PersonId) -> StoreResult<bool>;
    /// Links an administrator account to the person it belongs to (or
    /// unlinks it); false when the account does not exist.
    async fn link_admin_person(
        &self,
        admin: &AdminId,
        person: Option<&PersonId>,
    ) -> StoreResult<bool>;
    /// The enabled administrator accounts linked to a person.
    async fn person_admins(&self, id: &PersonId) -> StoreResult<Vec<AdminAccount>>;
    /// In one transaction: marks the person departed (keeping an earlier
    /// departure time), disables those of the accounts in `close` that are
    /// linked to them and enabled — never the last enabled owner — and
    /// revokes those accounts' sessions and tokens. Returns, per account
    /// disabled, (id, name, sessions revoked, tokens revoked); `None` when
    /// the person does not exist.
    async fn offboard_person(
        &self,
        id: &PersonId,
        now: OffsetDateTime,
        close: &[AdminId],
    ) -> StoreResult<Option<Vec<(AdminId, String, u64, u64)>>>;
    /// Marks a device as leaving management: `command` is the last command
    /// it gets; when it answers it (or at `deadline`) its certificates are
    /// revoked. `None` clears the mark.
    async fn set_device_offboarding(
        &self,
        device: &DeviceKey,
        mark: Option<(&CommandUuid, OffsetDateTime)>,
    ) -> StoreResult<()>;
    /// The device's offboarding command and deadline, if it is leaving.
    async fn device_offboarding(
        &self,
        device: &DeviceKey,
    ) -> StoreResult<Option<(CommandUuid, OffsetDateTime)>>;
    /// Devices whose offboarding deadline has passed.
    async fn offboarding_overdue(&self, now: OffsetDateTime) -> StoreResult<Vec<DeviceKey>>;
    /// Data keys wrapped by a master key other than `current`: (person,
    /// master key ID, wrapped key), at most `limit`.
    async fn person_keys_not_under(
        &self,
        current: &str,
        limit: u32,
    ) -> StoreResult<Vec<(PersonId, String, Vec<u8>)>>;
    /// Stores re-wrapped data keys: (person, old master key ID, new master
    /// key ID, new wrapped key), each only if still wrapped by the old one.
    /// Returns how many were replaced.
    async fn rewrap_person_keys(
        &self,
        keys: &[(PersonId, String, String, Vec<u8>)],
    ) -> StoreResult<u64>;
    /// Moves the write-ahead log into the database file and truncates it,
    /// so deleted data does not linger in the WAL.
    async fn checkpoint(&self) -> StoreResult<()>;
}

/// Requests waiting for a second administrator.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Records a new request.
    async fn insert_approval(&self, approval: &Approval) -> StoreResult<()>;
    /// A request by ID.
    async fn approval(&self, id: &str) -> StoreResult<Option<Approval>>;
    /// Pending, unexpired requests, oldest first.
    async fn pending_approvals(&self, now: OffsetDateTime) -> StoreResult<Vec<Approval>>;
    /// Decides a request atomically: only a pending, unexpired one changes.
    /// False otherwise.
    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        decided_by: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Marks an approved request used (an export downloaded), atomically:
    /// false when it is not approved or was used already.
    async fn use_approval(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool>;
}

/// The audit trail: append-only, hash-chained (see [`crate::audit`]).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one record, linked to the last one
    /// ([`crate::audit::record_hash`]); returns its sequence number.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<i64>;
    /// Appends several records, in order, all or none (one transaction);
    /// returns their sequence numbers.
    async fn append_audit_batch(&self, events: &[AuditEvent]) -> StoreResult<Vec<i64>> {
        let mut seqs = Vec::with_capacity(events.len());
        for e in events {
            seqs.push(self.append_audit(e).await?);
        }
        Ok(seqs)
    }
    /// Records after `after` (sequence number), oldest first.
    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    /// Records with their chain links, after `after`, oldest first.
    async fn audit_chain(
        &self,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::audit::ChainedRecord>>;
    /// The newest chained record's sequence number and hash.
    async fn last_audit_hash(&self) -> StoreResult<Option<(i64, Vec<u8>)>>;
    /// Stores a signed checkpoint.
    async fn insert_audit_checkpoint(&self, c: &crate::audit::Checkpoint) -> StoreResult<()>;
    /// Every checkpoint, oldest first.
    async fn audit_checkpoints(&self) -> StoreResult<Vec<crate::audit::Checkpoint>>;
    /// Records of the given actions in [from, to), optionally of one actor,
    /// oldest first.
    async fn audit_by_action(
        &self,
        actions: &[&str],
        from: OffsetDateTime,
        to: OffsetDateTime,
        actor: Option<&str>,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// Feeds `into` every record of the given actions in [from, to),
    /// narrowed by `filter` (one actor, an actor prefix) — only the columns of
    /// [`crate::report::Access`], in no particular order — and hands it
    /// back. For the breach-scope report over millions of records: no
    /// record is materialised on the way.
    async fn scan_audit_access(
        &self,
        actions: &[&str],
        from: OffsetDateTime,
        to: OffsetDateTime,
        filter: &crate::report::AccessFilter,
        into: crate::report::ScopeBuilder,
    ) -> StoreResult<crate::report::ScopeBuilder>;
}

/// Where each audit sink (syslog, webhook) stands: the last record it
/// acknowledged, so a sink that was down resumes from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkState {
    /// The sink's configured name.
    pub name: String,
    /// Sequence number of the last record delivered (0: none yet).
    pub delivered_seq: i64,
    /// When a batch was last delivered.
    pub delivered_at: Option<OffsetDateTime>,
    /// Since when deliveries fail (None: healthy).
    pub failing_since: Option<OffsetDateTime>,
    /// The last failure, for administrators ("HTTP 503", "connection refused").
    pub last_error: Option<String>,
}

/// Delivery cursors of the audit sinks.
#[async_trait]
pub trait SinkStore: Send + Sync {
    /// One sink's state (None: never run).
    async fn sink_state(&self, name: &str) -> StoreResult<Option<SinkState>>;
    /// Stores a sink's state. The cursor never moves backwards.
    async fn save_sink_state(&self, state: &SinkState) -> StoreResult<()>;
}

/// Retention of the audit log: records leave it only from its start and
/// only up to a signed mark (see [`crate::audit::Truncation`]).
#[async_trait]
pub trait AuditRetentionStore: Send + Sync {
    /// The newest chained record written before `before`.
    async fn last_audit_before(
        &self,
        before: OffsetDateTime,
    ) -> StoreResult<Option<(i64, Vec<u8>)>>;
    /// Every truncation mark, oldest first.
    async fn audit_truncations(&self) -> StoreResult<Vec<crate::audit::Truncation>>;
    /// Stores the mark, then removes the records it covers (in batches, so
    /// appends are not held up); returns how many were removed.
    async fn truncate_audit(&self, mark: &crate::audit::Truncation) -> StoreResult<u64>;
}

/// Incidents and the people they affect.
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Records a new incident; false when one for the same alert exists.
    async fn insert_incident(&self, i: &mamori_domain::Incident) -> StoreResult<bool>;
    /// One incident.
    async fn incident(&self, id: &str) -> StoreResult<Option<mamori_domain::Incident>>;
    /// Every incident, newest first.
    async fn list_incidents(&self) -> StoreResult<Vec<mamori_domain::Incident>>;
    /// Replaces an incident's changeable parts (title, status, window,
    /// actor, discovery time, facts, updated_at).
    async fn update_incident(&self, i: &mamori_domain::Incident) -> StoreResult<bool>;
    /// Sets who is affected: adds new people, updates the fields of known
    /// ones (keeping when they were notified), removes people no longer in
    /// scope who were not notified.
    async fn set_incident_people(
        &self,
        id: &str,
        people: &[(String, Vec<String>)],
    ) -> StoreResult<()>;
    /// The people affected, by pseudonymous ID.
    async fn incident_people(&self, id: &str) -> StoreResult<Vec<mamori_domain::AffectedPerson>>;
    /// Marks people (all when None) notified; returns how many changed.
    async fn mark_notified(
        &self,
        id: &str,
        people: Option<&[String]>,
        now: OffsetDateTime,
    ) -> StoreResult<u64>;
}

/// Policies and their sealed secrets.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Adds a policy; false when the name is taken.
    async fn insert_policy(
        &self,
        p: &mamori_domain::Policy,
        sealed_secrets: Option<&[u8]>,
    ) -> StoreResult<bool>;
    /// One policy with its sealed secrets.
    async fn policy(
        &self,
        id: &str,
    ) -> StoreResult<Option<(mamori_domain::Policy, Option<Vec<u8>>)>>;
    /// Every policy, by name.
    async fn list_policies(&self) -> StoreResult<Vec<mamori_domain::Policy>>;
    /// Replaces a policy if its stored version is `expected_version`
    /// (false otherwise, or when the new name is taken).
    async fn update_policy(
        &self,
        p: &mamori_domain::Policy,
        sealed_secrets: Option<&[u8]>,
        expected_version: i64,
    ) -> StoreResult<bool>;
    /// Deletes a policy; false when there was none.
    async fn delete_policy(&self, id: &str) -> StoreResult<bool>;
}

/// Device groups, their policies, and the profiles on each device.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Adds a group; false when the name is taken.
    async fn insert_group(&self, g: &mamori_domain::DeviceGroup) -> StoreResult<bool>;
    /// Every group with its members and policies, by name.
    async fn list_groups(&self) -> StoreResult<Vec<mamori_domain::DeviceGroup>>;
    /// Deletes a group (members and assignments too); false when none.
    async fn delete_group(&self, id: &str) -> StoreResult<bool>;
    /// Adds and removes static members.
    async fn change_group_members(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> StoreResult<()>;
    /// Replaces the policies assigned to a group.
    async fn set_group_policies(&self, id: &str, policies: &[String]) -> StoreResult<()>;
    /// Every device-profile row.
    async fn device_profiles(&self) -> StoreResult<Vec<mamori_domain::DeviceProfile>>;
    /// One device's profile rows.
    async fn profiles_of_device(
        &self,
        udid: &str,
    ) -> StoreResult<Vec<mamori_domain::DeviceProfile>>;
    /// Inserts or replaces rows (in one transaction).
    async fn put_device_profiles(&self, rows: &[mamori_domain::DeviceProfile]) -> StoreResult<()>;
    /// The row whose command is `command_uuid`.
    async fn device_profile_by_command(
        &self,
        command_uuid: &str,
    ) -> StoreResult<Option<mamori_domain::DeviceProfile>>;
    /// Removes a row.
    async fn delete_device_profile(&self, udid: &str, profile_identifier: &str) -> StoreResult<()>;
}

/// Compliance rules per group (JSON, read by `crate::compliance`).
#[async_trait]
pub trait ComplianceStore: Send + Sync {
    /// Sets or (None) clears a group's rules.
    async fn set_group_compliance(
        &self,
        group: &str,
        rules: Option<&serde_json::Value>,
    ) -> StoreResult<()>;
    /// Every group's rules.
    async fn group_compliance(&self) -> StoreResult<Vec<(String, serde_json::Value)>>;
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

/// The department blind index of people (dynamic groups by department).
#[async_trait]
pub trait DepartmentStore: Send + Sync {
    /// People whose department index is `index`.
    async fn people_in_department(&self, index: &str) -> StoreResult<Vec<PersonId>>;
    /// People not indexed yet (with their keys), at most `limit`.
    async fn people_without_department_index(&self, limit: u32) -> StoreResult<Vec<PersonRecord>>;
    /// Sets a person's department index (`""`: indexed, no department).
    async fn set_department_index(&self, person: &PersonId, index: &str) -> StoreResult<()>;
}

/// Sealed secrets (already encrypted by the caller) stored by name.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores or replaces a sealed secret.
    async fn put_secret(&self, name: &str, sealed: &[u8], now: OffsetDateTime) -> StoreResult<()>;
    /// Reads a sealed secret.
    async fn secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Deletes a sealed secret; false when there was none.
    async fn delete_secret(&self, name: &str) -> StoreResult<bool>;
}

/// Who created, reset or changed the role of which administrator account
/// (and, from the API, re-enabled or unlocked it).
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Records that `controller` created (`create`), reset (`reset`),
    /// changed the role of (`role`), re-enabled (`enable`) or unlocked
    /// (`unlock`) `controlled`.
    async fn record_control(
        &self,
        controller: &AdminId,
        controlled: &AdminId,
        kind: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Whether the two accounts count as one person through rows at or
    /// after `since`: either controls the other, directly or through a
    /// chain (A created B, B created C: A and C), or one account controls
    /// both (A created B and C: B and C), following a few rows up from
    /// each side.
    async fn controls_either(
        &self,
        a: &AdminId,
        b: &AdminId,
        since: OffsetDateTime,
    ) -> StoreResult<bool>;
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

/// Every port at once, for wiring.
pub trait Store:
    ProfileStore
    + CertStore
    + DeviceStore
    + QueueStore
    + TokenStore
    + SecretStore
    + AdminStore
    + AuditStore
    + PeopleStore
    + ApprovalStore
    + SinkStore
    + AuditRetentionStore
    + IncidentStore
    + PolicyStore
    + GroupStore
    + ComplianceStore
    + InventoryStore
    + DepartmentStore
    + ReenrollmentStore
    + ControlStore
{
}
impl<T> Store for T where
    T: ProfileStore
        + CertStore
        + DeviceStore
        + QueueStore
        + TokenStore
        + SecretStore
        + AdminStore
        + AuditStore
        + PeopleStore
        + ApprovalStore
        + SinkStore
        + AuditRetentionStore
        + IncidentStore
        + PolicyStore
        + GroupStore
        + ComplianceStore
        + InventoryStore
        + DepartmentStore
        + ReenrollmentStore
        + ControlStore
{
}

/// Sends APNs notifications.
#[async_trait]
pub trait Pusher: Send + Sync {
    /// Pushes to each target; returns how many were accepted by APNs.
    async fn push(&self, targets: &[PushTarget]) -> usize;
    /// Installs the MDM push certificate and key (PEM); returns its topic.
    /// The error text is safe to show the administrator.
    fn configure(&self, cert_pem: &str, key_pem: &str) -> Result<String, String>;
    /// The topic of the installed certificate, if any.
    fn topic(&self) -> Option<String>;
}

/// A clock, so tests can move time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
