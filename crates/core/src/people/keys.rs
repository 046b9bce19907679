//! The keys that seal the directory: the master-key check, the sealed
//! blind-index key, per-person data keys (sealed under the master key)
//! and their rewrapping when the master key changes.

use super::*;
use crate::access::ClientContext;
use crate::access::Operator;
use crate::people::vault::{blind_index, DataKey};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{EmploymentStatus, PersonId, PersonRecord, PersonalFields};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Name of the sealed blind-index key in the secret store (its presence
/// means the database holds personal data).
pub const INDEX_KEY: &str = "people-index-key";

/// A known value sealed with the master key at first start: a different
/// master key fails to open it.
const MASTER_CHECK: &str = "master-key-check";

const MASTER_CHECK_TEXT: &[u8] = b"mamori master key check v1";

/// Associated data binding the wrapped index key.
const INDEX_KEY_AAD: &[u8] = b"mamori/people-index-key";

/// The department's blind index (`""` when there is none): trimmed and
/// case-folded, so "Sales" and " sales" are one department.
pub fn department_index(key: &[u8], department: Option<&str>) -> String {
    match department.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => blind_index(key, "department", &d.to_lowercase()),
        None => String::new(),
    }
}

pub(super) fn person_aad(id: &PersonId) -> Vec<u8> {
    format!("mamori/person/{id}").into_bytes()
}

pub(super) fn key_aad(id: &PersonId) -> Vec<u8> {
    format!("mamori/person-key/{id}").into_bytes()
}

impl Services {
    /// Refuses to run with keys that do not open this database: the master
    /// key (sealed secrets; checked against a value sealed at first start)
    /// and the people key (personal data; checked against the blind-index
    /// key). Called at start.
    pub async fn check_master_key(&self) -> CoreResult<()> {
        match self.ports.people.secret(MASTER_CHECK).await? {
            Some(sealed) => {
                let ok = self
                    .pki
                    .secret_box
                    .open(&sealed, Some(MASTER_CHECK.as_bytes()))
                    .is_ok_and(|v| v.as_slice() == MASTER_CHECK_TEXT);
                if !ok {
                    return Err(CoreError::Internal(
                        "the master key (master.key / MAMORI_MASTER_KEY) does not open this \
                         database's sealed secrets; start with the key the data was written with"
                            .into(),
                    ));
                }
            }
            None => {
                let sealed = self
                    .pki
                    .secret_box
                    .seal(MASTER_CHECK_TEXT, Some(MASTER_CHECK.as_bytes()))
                    .map_err(|e| CoreError::Internal(e.into()))?;
                self.ports
                    .people
                    .put_secret(MASTER_CHECK, &sealed, self.clock.now())
                    .await?;
            }
        }
        if let Some(wrapped) = self.ports.people.secret(INDEX_KEY).await? {
            self.open_index_key(&wrapped).map_err(|_| {
                CoreError::Internal(
                    "the people key (people.key / MAMORI_PEOPLE_KEY) does not open this \
                     database's personal data; start with the key the data was written with"
                        .into(),
                )
            })?;
        }
        Ok(())
    }

    fn open_index_key(&self, stored: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>> {
        // Stored as `<key id>\0<wrapped key>`.
        let pos = stored
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| CoreError::Internal("index key record malformed".into()))?;
        let id = std::str::from_utf8(&stored[..pos])
            .map_err(|_| CoreError::Internal("index key record malformed".into()))?;
        self.vault.unwrap(id, &stored[pos + 1..], INDEX_KEY_AAD)
    }

    /// Master-key rotation: re-wraps every person's data key (and the
    /// blind-index key) that is not yet under the current master key, in
    /// batches. The personal fields themselves are untouched. Returns how
    /// many data keys were re-wrapped.
    pub async fn rewrap_data_keys(&self, by: &Operator, ctx: &ClientContext) -> CoreResult<u64> {
        let actor = &by.actor();
        let current = self.vault.current_id();
        if let Some(stored) = self.ports.people.secret(INDEX_KEY).await? {
            let pos = stored.iter().position(|b| *b == 0).unwrap_or(0);
            if stored[..pos] != *current.as_bytes() {
                let raw = self.open_index_key(&stored)?;
                let rec = self.wrap_index_key(&raw)?;
                self.ports
                    .people
                    .put_secret(INDEX_KEY, &rec, self.clock.now())
                    .await?;
            }
        }
        let mut total = 0;
        loop {
            let batch = self
                .ports
                .people
                .person_keys_not_under(&current, 1000)
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut out = Vec::with_capacity(batch.len());
            for (person, old, wrapped) in batch {
                let raw = self.vault.unwrap(&old, &wrapped, &key_aad(&person))?;
                let (new, rewrapped) = self.vault.wrap(&raw, &key_aad(&person))?;
                out.push((person, old, new, rewrapped));
            }
            let n = self.ports.people.rewrap_person_keys(&out).await?;
            if n == 0 {
                // Every row changed under us (another rotation?): stop
                // rather than spin; the caller checks what is left.
                break;
            }
            total += n;
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::KeysRewrap,
                Outcome::Success,
            )
            .detail(format!("master key={current} data keys re-wrapped={total}")),
        )
        .await?;
        Ok(total)
    }

    /// Data keys still wrapped by another master key than the current one.
    pub async fn data_keys_not_current(&self) -> CoreResult<usize> {
        Ok(self
            .ports
            .people
            .person_keys_not_under(&self.vault.current_id(), 1)
            .await?
            .len())
    }

    /// The stored form of the blind-index key: `<master key id>\0<wrapped>`
    /// (read by `open_index_key`).
    fn wrap_index_key(&self, raw: &[u8]) -> CoreResult<Vec<u8>> {
        let (id, wrapped) = self.vault.wrap(raw, INDEX_KEY_AAD)?;
        let mut rec = id.into_bytes();
        rec.push(0);
        rec.extend_from_slice(&wrapped);
        Ok(rec)
    }

    /// The blind-index key, created on first use.
    /// The blind-index key. Read from the store once per process: its
    /// value never changes (a master-key rotation re-wraps it, and it is
    /// never replaced, only stored if absent), so every look-up after the
    /// first saves a read and an unwrap.
    pub(super) async fn index_key(&self) -> CoreResult<Zeroizing<Vec<u8>>> {
        self.index_key
            .get_or_try_init(|| self.load_index_key())
            .await
            .cloned()
    }

    async fn load_index_key(&self) -> CoreResult<Zeroizing<Vec<u8>>> {
        if let Some(stored) = self.ports.people.secret(INDEX_KEY).await? {
            return self.open_index_key(&stored);
        }
        let raw = Zeroizing::new(
            mamori_crypto::try_random_bytes(32).map_err(|e| CoreError::Internal(e.into()))?,
        );
        let stored = self.wrap_index_key(&raw)?;
        // Of several first uses at once, on one server or several, one
        // stores its key and every one uses the stored key: an overwrite
        // would leave the people indexed under the lost one unfindable.
        let store: &dyn SecretStore = &*self.ports.people;
        store
            .put_secret_if_absent(INDEX_KEY, &stored, self.clock.now())
            .await?;
        let stored = self
            .ports
            .people
            .secret(INDEX_KEY)
            .await?
            .ok_or_else(|| CoreError::Internal("index key vanished".into()))?;
        self.open_index_key(&stored)
    }

    pub(super) fn seal_new(
        &self,
        index_key: &[u8],
        mut fields: PersonalFields,
        status: EmploymentStatus,
        now: OffsetDateTime,
    ) -> CoreResult<PersonRecord> {
        validate_fields(&mut fields).map_err(CoreError::BadRequest)?;
        let id = PersonId::parse(&hex::encode(
            mamori_crypto::try_random_bytes(16).map_err(|e| CoreError::Internal(e.into()))?,
        ))
        .map_err(|e| CoreError::Internal(e.into()))?;
        let (key, raw) = DataKey::generate()?;
        let (key_id, wrapped_key) = self.vault.wrap(&raw, &key_aad(&id))?;
        let json =
            Zeroizing::new(serde_json::to_vec(&fields).map_err(|e| CoreError::Internal(e.into()))?);
        Ok(PersonRecord {
            sealed: key.seal(&json, &person_aad(&id))?,
            email_index: blind_index(index_key, "email", &fields.email),
            user_id_index: blind_index(index_key, "user_id", &fields.user_id.to_lowercase()),
            department_index: Some(department_index(index_key, fields.department.as_deref())),
            id,
            status,
            departed_at: (status == EmploymentStatus::Departed).then_some(now),
            created_at: now,
            updated_at: now,
            key_id,
            wrapped_key,
        })
    }

    /// Opens a person's fields.
    pub(crate) fn open_fields(&self, r: &PersonRecord) -> CoreResult<PersonalFields> {
        let raw = self
            .vault
            .unwrap(&r.key_id, &r.wrapped_key, &key_aad(&r.id))?;
        let key = DataKey::from_raw(&raw)?;
        let json = key.open(&r.sealed, &person_aad(&r.id))?;
        serde_json::from_slice(&json).map_err(|e| CoreError::internal("person record", e))
    }
}
