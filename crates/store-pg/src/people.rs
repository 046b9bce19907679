//! The people directory: pseudonymous people rows (personal fields sealed,
//! blind indexes for exact-match lookup), their wrapped data keys (in their
//! own table so a purge can destroy them) and device assignments.
//!
//! # Concurrency
//!
//! Everything that decides on the people rows it read takes the
//! [`Area::People`] lock: inserting a batch and updating a person (the
//! duplicate check names the row whose index is taken, which needs the
//! stored indexes not to move meanwhile), assigning a device or linking an
//! account to a person (its existence check, and the foreign key a purge
//! running at once would otherwise trip over) and purging. Offboarding
//! takes [`Area::Admins`]: it never disables the last enabled owner, a
//! count another server's disable could change under it.

use crate::{col, db, exec, from_opt_ts, from_ts, lock, query_all, query_opt, ts, Area, PgStore};
use async_trait::async_trait;
use mamori_domain::{
    AdminAccount, AdminId, CommandUuid, DeviceKey, EmploymentStatus, PersonId, PersonRecord,
};
use mamori_ports::{PeopleConflict, PeopleStore, PersonIndex, StoreError, StoreResult};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use tokio_postgres::Row;

mod unique;

use unique::{insert_batch, taken_index};

/// The columns of a [`PersonRecord`] (the row joined with its key), as a
/// string literal so it can be `concat!`ed into whole statements.
macro_rules! person_select_sql {
    () => {
        "SELECT p.id, p.status, p.departed_at, p.created_at, p.updated_at, p.sealed,
                p.email_index, p.user_id_index, p.department_index, k.key_id, k.wrapped_key
         FROM people p JOIN person_keys k ON k.person_id = p.id"
    };
}
pub(crate) use person_select_sql;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e.to_string())
}

fn person_id(v: &str) -> StoreResult<PersonId> {
    PersonId::parse(v).map_err(err)
}

fn device_key(v: &str) -> StoreResult<DeviceKey> {
    DeviceKey::parse(v).map_err(err)
}

pub(crate) fn person_from_row(r: &Row) -> StoreResult<PersonRecord> {
    let id: String = col(r, "id")?;
    let status: String = col(r, "status")?;
    Ok(PersonRecord {
        id: person_id(&id)?,
        status: EmploymentStatus::parse(&status)
            .ok_or_else(|| StoreError::new(format!("unknown employment status {status:?}")))?,
        departed_at: from_opt_ts(col(r, "departed_at")?)?,
        created_at: from_ts(col(r, "created_at")?)?,
        updated_at: from_ts(col(r, "updated_at")?)?,
        key_id: col(r, "key_id")?,
        wrapped_key: col(r, "wrapped_key")?,
        sealed: col(r, "sealed")?,
        email_index: col(r, "email_index")?,
        user_id_index: col(r, "user_id_index")?,
        department_index: col(r, "department_index")?,
    })
}

/// Maps every row with `person_from_row`.
pub(crate) fn people_from_rows(rows: &[Row]) -> StoreResult<Vec<PersonRecord>> {
    rows.iter().map(person_from_row).collect()
}

/// The devices rows `(udid)` as keys.
fn device_keys(rows: &[Row]) -> StoreResult<Vec<DeviceKey>> {
    rows.iter()
        .map(|r| device_key(&col::<String>(r, "udid")?))
        .collect()
}

/// A `u32` limit as the BIGINT `LIMIT` takes.
fn limit_col(limit: u32) -> i64 {
    i64::from(limit)
}

/// Whether person `id` exists, seen by `c`.
async fn person_exists(
    c: &impl deadpool_postgres::GenericClient,
    id: &PersonId,
) -> StoreResult<bool> {
    Ok(query_opt(
        c,
        "SELECT 1 AS found FROM people WHERE id = $1",
        &[&id.as_str()],
    )
    .await?
    .is_some())
}

#[async_trait]
impl PeopleStore for PgStore {
    async fn insert_people(
        &self,
        people: &[PersonRecord],
    ) -> StoreResult<Result<(), PeopleConflict>> {
        if people.is_empty() {
            return Ok(Ok(()));
        }
        let mut c = self.conn().await?;
        insert_batch(&mut c, people).await
    }

    async fn update_person(&self, rec: &PersonRecord) -> StoreResult<Result<bool, PeopleConflict>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Serialised with batch inserts and other updates, so the index
        // another person holds cannot change between the check and the
        // update (SQLite's single writer gives the same).
        lock(&tx, &[Area::People]).await?;
        // The update would fail on a UNIQUE index exactly when the person
        // exists and another person holds one of the new indexes.
        if let Some(index) = taken_index(&tx, rec).await? {
            if person_exists(&tx, &rec.id).await? {
                return Ok(Err(PeopleConflict::Duplicate { row: 0, index }));
            }
        }
        let n = exec(
            &tx,
            "UPDATE people SET sealed = $1, email_index = $2, user_id_index = $3,
                    department_index = $4, status = $5, departed_at = $6, updated_at = $7
             WHERE id = $8",
            &[
                &rec.sealed,
                &rec.email_index,
                &rec.user_id_index,
                &rec.department_index,
                &rec.status.as_str(),
                &rec.departed_at.map(ts),
                &ts(rec.updated_at),
                &rec.id.as_str(),
            ],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(Ok(n == 1))
    }

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRecord>> {
        let c = self.conn().await?;
        query_opt(
            &c,
            concat!(person_select_sql!(), " WHERE p.id = $1"),
            &[&id.as_str()],
        )
        .await?
        .as_ref()
        .map(person_from_row)
        .transpose()
    }

    async fn person_by_index(
        &self,
        index: PersonIndex,
        hash: &str,
    ) -> StoreResult<Option<PersonRecord>> {
        let sql = match index {
            PersonIndex::Email => concat!(person_select_sql!(), " WHERE p.email_index = $1"),
            PersonIndex::UserId => concat!(person_select_sql!(), " WHERE p.user_id_index = $1"),
        };
        let c = self.conn().await?;
        query_opt(&c, sql, &[&hash])
            .await?
            .as_ref()
            .map(person_from_row)
            .transpose()
    }

    async fn list_people(
        &self,
        after: Option<&PersonId>,
        limit: u32,
    ) -> StoreResult<Vec<PersonRecord>> {
        let after = after.map_or("", PersonId::as_str);
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            concat!(
                person_select_sql!(),
                // Both sides seek: with `p.id` alone the planner's merge
                // join walked person_keys from its start on every page
                // (13.6 ms at the 15,000th person, 0.2 ms with this).
                " WHERE p.id > $1 AND k.person_id > $1 ORDER BY p.id LIMIT $2"
            ),
            &[&after, &limit_col(limit)],
        )
        .await?;
        people_from_rows(&rows)
    }

    async fn count_people(&self) -> StoreResult<u64> {
        let c = self.conn().await?;
        let n = match query_opt(&c, "SELECT COUNT(*) AS n FROM people", &[]).await? {
            Some(r) => col::<i64>(&r, "n")?,
            None => 0,
        };
        u64::try_from(n).map_err(err)
    }

    async fn assign_device(
        &self,
        device: &DeviceKey,
        person: Option<&PersonId>,
    ) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        if let Some(p) = person {
            // Serialised with purges: a person checked here cannot be
            // purged before this assignment commits.
            lock(&tx, &[Area::People]).await?;
            if !person_exists(&tx, p).await? {
                return Err(StoreError::new(format!(
                    "cannot assign device {device} to person {p}: no such person"
                )));
            }
        }
        let n = exec(
            &tx,
            "UPDATE devices SET person_id = $1 WHERE udid = $2",
            &[&person.map(PersonId::as_str), &device.as_str()],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }

    async fn person_devices(&self, id: &PersonId) -> StoreResult<Vec<DeviceKey>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT udid FROM devices WHERE person_id = $1 ORDER BY udid",
            &[&id.as_str()],
        )
        .await?;
        device_keys(&rows)
    }

    async fn people_devices(&self, ids: &[PersonId]) -> StoreResult<Vec<Vec<DeviceKey>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One array parameter, however many people.
        let unique: Vec<&str> = {
            let mut seen = HashSet::with_capacity(ids.len());
            ids.iter()
                .map(PersonId::as_str)
                .filter(|i| seen.insert(*i))
                .collect()
        };
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT person_id, udid FROM devices WHERE person_id = ANY($1)
             ORDER BY person_id, udid",
            &[&unique],
        )
        .await?;
        let mut by_person: HashMap<String, Vec<DeviceKey>> = HashMap::new();
        for r in &rows {
            let person: String = col(r, "person_id")?;
            let udid: String = col(r, "udid")?;
            by_person
                .entry(person)
                .or_default()
                .push(device_key(&udid)?);
        }
        Ok(ids
            .iter()
            .map(|i| by_person.get(i.as_str()).cloned().unwrap_or_default())
            .collect())
    }

    async fn device_person(&self, device: &DeviceKey) -> StoreResult<Option<PersonId>> {
        let c = self.conn().await?;
        let id = match query_opt(
            &c,
            "SELECT person_id FROM devices WHERE udid = $1",
            &[&device.as_str()],
        )
        .await?
        {
            Some(r) => col::<Option<String>>(&r, "person_id")?,
            None => None,
        };
        id.as_deref().map(person_id).transpose()
    }

    async fn people_due_for_purge(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<PersonId>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT id FROM people WHERE status = 'departed' AND departed_at <= $1
             ORDER BY departed_at, id LIMIT $2",
            &[&ts(before), &limit_col(limit)],
        )
        .await?;
        rows.iter()
            .map(|r| person_id(&col::<String>(r, "id")?))
            .collect()
    }

    async fn purge_people(&self, ids: &[PersonId], now: OffsetDateTime) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = ids.iter().map(PersonId::as_str).collect();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Serialised with assignments and links: one committed after the
        // links were cleared here would make the people row's delete
        // trip the foreign key.
        lock(&tx, &[Area::People]).await?;
        exec(
            &tx,
            "UPDATE devices SET person_id = NULL WHERE person_id = ANY($1)",
            &[&ids],
        )
        .await?;
        exec(
            &tx,
            "UPDATE admins SET person_id = NULL WHERE person_id = ANY($1)",
            &[&ids],
        )
        .await?;
        // The key row goes: every copy of the sealed fields is unreadable.
        exec(
            &tx,
            "DELETE FROM person_keys WHERE person_id = ANY($1)",
            &[&ids],
        )
        .await?;
        let row = query_opt(
            &tx,
            "WITH gone AS (DELETE FROM people WHERE id = ANY($1) RETURNING id),
                  tomb AS (INSERT INTO people_tombstones (id, purged_at)
                           SELECT id, $2::BIGINT FROM gone
                           ON CONFLICT (id) DO NOTHING)
             SELECT COUNT(*) AS n FROM gone",
            &[&ids, &ts(now)],
        )
        .await?;
        let purged = match row {
            Some(r) => col::<i64>(&r, "n")?,
            None => 0,
        };
        tx.commit().await.map_err(db)?;
        u64::try_from(purged).map_err(err)
    }

    async fn is_purged(&self, id: &PersonId) -> StoreResult<bool> {
        let c = self.conn().await?;
        Ok(query_opt(
            &c,
            "SELECT 1 AS found FROM people_tombstones WHERE id = $1",
            &[&id.as_str()],
        )
        .await?
        .is_some())
    }

    async fn forget_deleted(&self) -> StoreResult<()> {
        // A plain VACUUM only marks a deleted row's space free, the bytes
        // stay in the page until overwritten; VACUUM FULL writes the table
        // anew and removes the old file, so no purged key survives in the
        // key table. The people rows' sealed fields are unreadable without
        // their keys: a plain VACUUM drops their old versions without
        // blocking readers. Neither can run in a transaction (nor as a
        // prepared statement), hence one simple query each.
        let c = self.conn().await?;
        c.batch_execute("VACUUM FULL person_keys")
            .await
            .map_err(db)?;
        c.batch_execute("VACUUM people").await.map_err(db)
    }

    async fn link_admin_person(
        &self,
        admin: &AdminId,
        person: Option<&PersonId>,
    ) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        if person.is_some() {
            // Serialised with purges, as for device assignments.
            lock(&tx, &[Area::People]).await?;
        }
        let n = exec(
            &tx,
            "UPDATE admins SET person_id = $1 WHERE id = $2",
            &[&person.map(PersonId::as_str), &admin.as_str()],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }

    async fn person_admins(&self, id: &PersonId) -> StoreResult<Vec<AdminAccount>> {
        let c = self.conn().await?;
        query_all(
            &c,
            concat!(
                crate::admins::admin_select!(),
                " WHERE person_id = $1 AND disabled_at IS NULL ORDER BY name"
            ),
            &[&id.as_str()],
        )
        .await?
        .iter()
        .map(crate::admins::admin_from_row)
        .collect()
    }

    async fn offboard_person(
        &self,
        id: &PersonId,
        now: OffsetDateTime,
        close: &[AdminId],
    ) -> StoreResult<Option<Vec<(AdminId, String, u64, u64)>>> {
        let at = ts(now);
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The last-owner count below must see every other disable that
        // committed before it: disables are serialised on this lock.
        lock(&tx, &[Area::Admins]).await?;
        let n = exec(
            &tx,
            "UPDATE people SET status = 'departed',
                    departed_at = COALESCE(departed_at, $1), updated_at = $1
             WHERE id = $2",
            &[&at, &id.as_str()],
        )
        .await?;
        if n == 0 {
            return Ok(None);
        }
        let admins = query_all(
            &tx,
            "SELECT id, name FROM admins WHERE person_id = $1 AND disabled_at IS NULL ORDER BY name",
            &[&id.as_str()],
        )
        .await?;
        let mut out = Vec::new();
        for r in &admins {
            let admin: String = col(r, "id")?;
            let name: String = col(r, "name")?;
            if !close.iter().any(|c| c.as_str() == admin) {
                continue;
            }
            // The last enabled owner stays, whoever asks.
            let closed = exec(
                &tx,
                "UPDATE admins SET disabled_at = $1, disabled_reason = 'offboarded'
                 WHERE id = $2 AND disabled_at IS NULL
                   AND (role != 'owner'
                        OR (SELECT COUNT(*) FROM admins
                            WHERE role = 'owner' AND disabled_at IS NULL) > 1)",
                &[&at, &admin],
            )
            .await?;
            if closed == 0 {
                continue;
            }
            let (sessions, tokens) = crate::admins::revoke_credentials(&tx, &admin, now).await?;
            out.push((AdminId::parse(&admin).map_err(err)?, name, sessions, tokens));
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(out))
    }

    async fn set_device_offboarding(
        &self,
        device: &DeviceKey,
        mark: Option<(&CommandUuid, OffsetDateTime)>,
    ) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE devices SET offboard_command = $1, offboard_deadline = $2 WHERE udid = $3",
            &[
                &mark.map(|m| m.0.as_str()),
                &mark.map(|m| ts(m.1)),
                &device.as_str(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn device_offboarding(
        &self,
        device: &DeviceKey,
    ) -> StoreResult<Option<(CommandUuid, OffsetDateTime)>> {
        let c = self.conn().await?;
        let Some(r) = query_opt(
            &c,
            "SELECT offboard_command, offboard_deadline FROM devices WHERE udid = $1",
            &[&device.as_str()],
        )
        .await?
        else {
            return Ok(None);
        };
        let cmd: Option<String> = col(&r, "offboard_command")?;
        let deadline: Option<i64> = col(&r, "offboard_deadline")?;
        match (cmd, deadline) {
            (Some(cmd), Some(deadline)) => Ok(Some((
                CommandUuid::parse(&cmd).map_err(err)?,
                from_ts(deadline)?,
            ))),
            _ => Ok(None),
        }
    }

    async fn offboarding_overdue(&self, now: OffsetDateTime) -> StoreResult<Vec<DeviceKey>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT udid FROM devices
             WHERE offboard_deadline IS NOT NULL AND offboard_deadline <= $1
             ORDER BY udid",
            &[&ts(now)],
        )
        .await?;
        device_keys(&rows)
    }

    async fn person_keys_not_under(
        &self,
        current: &str,
        limit: u32,
    ) -> StoreResult<Vec<(PersonId, String, Vec<u8>)>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT person_id, key_id, wrapped_key FROM person_keys WHERE key_id <> $1
             ORDER BY person_id LIMIT $2",
            &[&current, &limit_col(limit)],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    person_id(&col::<String>(r, "person_id")?)?,
                    col::<String>(r, "key_id")?,
                    col::<Vec<u8>>(r, "wrapped_key")?,
                ))
            })
            .collect()
    }

    async fn rewrap_person_keys(
        &self,
        keys: &[(PersonId, String, String, Vec<u8>)],
    ) -> StoreResult<u64> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let mut n = 0u64;
        // Each update is conditional on the old key ID (atomic by itself):
        // a key another server re-wrapped meanwhile is left alone.
        for (person, old, new, wrapped) in keys {
            n += exec(
                &tx,
                "UPDATE person_keys SET key_id = $1, wrapped_key = $2
                 WHERE person_id = $3 AND key_id = $4",
                &[new, wrapped, &person.as_str(), old],
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}
