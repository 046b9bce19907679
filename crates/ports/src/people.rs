//! Ports of people and privacy: the directory, assignments, offboarding,
//! retention, departments.

use crate::StoreResult;
use async_trait::async_trait;
use mamori_domain::{AdminAccount, AdminId, CommandUuid, DeviceKey, PersonId, PersonRecord};
use time::OffsetDateTime;

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
    /// Makes what was just deleted unrecoverable from the backend's own
    /// files (a purged person's sealed key must not linger in a journal or
    /// an old row version). How is the backend's business: SQLite moves
    /// its write-ahead log into the database file and truncates it.
    async fn forget_deleted(&self) -> StoreResult<()>;
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
