//! The people directory: pseudonymous people rows (personal fields sealed,
//! blind indexes for exact-match lookup), their wrapped data keys (in their
//! own table so a purge can destroy them) and device assignments.

use crate::{col, db, exec, from_opt_ts, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{
    AdminAccount, AdminId, CommandUuid, DeviceKey, EmploymentStatus, PersonId, PersonRecord,
};
use mamori_ports::{PeopleConflict, PeopleStore, PersonIndex, StoreError, StoreResult};
use rusqlite::{params, params_from_iter, Row};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

mod unique;

use unique::{insert_batch, is_unique_violation, taken_index};

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

/// Most IDs bound in one `IN (...)` list.
const IN_CHUNK: usize = 500;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e.to_string())
}

fn person_id(v: &str) -> StoreResult<PersonId> {
    PersonId::parse(v).map_err(err)
}

fn device_key(v: &str) -> StoreResult<DeviceKey> {
    DeviceKey::parse(v).map_err(err)
}

pub(crate) fn person_from_row(r: &Row<'_>) -> StoreResult<PersonRecord> {
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

#[async_trait]
impl PeopleStore for SqliteStore {
    async fn insert_people(
        &self,
        people: &[PersonRecord],
    ) -> StoreResult<Result<(), PeopleConflict>> {
        if people.is_empty() {
            return Ok(Ok(()));
        }
        let people = people.to_vec();
        self.write_blocking(move |c| insert_batch(c, &people)).await
    }

    async fn update_person(&self, rec: &PersonRecord) -> StoreResult<Result<bool, PeopleConflict>> {
        self.write(|c| {
            let updated = c
                .prepare_cached(
                    "UPDATE people SET sealed = ?, email_index = ?, user_id_index = ?,
                            department_index = ?, status = ?, departed_at = ?, updated_at = ?
                     WHERE id = ?",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        rec.sealed,
                        rec.email_index,
                        rec.user_id_index,
                        rec.department_index,
                        rec.status.as_str(),
                        rec.departed_at.map(ts),
                        ts(rec.updated_at),
                        rec.id.as_str()
                    ])
                });
            match updated {
                Ok(n) => Ok(Ok(n == 1)),
                Err(e) if is_unique_violation(&e) => match taken_index(c, rec)? {
                    Some(index) => Ok(Err(PeopleConflict::Duplicate { row: 0, index })),
                    None => Err(db(e)),
                },
                Err(e) => Err(db(e)),
            }
        })
        .await
    }

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRecord>> {
        self.read(|c| {
            query_opt(
                c,
                concat!(person_select_sql!(), " WHERE p.id = ?"),
                [id.as_str()],
                person_from_row,
            )
        })
        .await
    }

    async fn person_by_index(
        &self,
        index: PersonIndex,
        hash: &str,
    ) -> StoreResult<Option<PersonRecord>> {
        let sql = match index {
            PersonIndex::Email => concat!(person_select_sql!(), " WHERE p.email_index = ?"),
            PersonIndex::UserId => concat!(person_select_sql!(), " WHERE p.user_id_index = ?"),
        };
        self.read(|c| query_opt(c, sql, [hash], person_from_row))
            .await
    }

    async fn list_people(
        &self,
        after: Option<&PersonId>,
        limit: u32,
    ) -> StoreResult<Vec<PersonRecord>> {
        let after = after.map_or(String::new(), |p| p.as_str().to_owned());
        self.read_blocking(move |c| {
            query_all(
                c,
                concat!(
                    person_select_sql!(),
                    " WHERE p.id > ? ORDER BY p.id LIMIT ?"
                ),
                params![after, i64::from(limit)],
                person_from_row,
            )
        })
        .await
    }

    async fn count_people(&self) -> StoreResult<u64> {
        let n = self
            .read(|c| {
                query_opt(c, "SELECT COUNT(*) AS n FROM people", [], |r| {
                    col::<i64>(r, "n")
                })
            })
            .await?;
        u64::try_from(n.unwrap_or(0)).map_err(err)
    }

    async fn assign_device(
        &self,
        device: &DeviceKey,
        person: Option<&PersonId>,
    ) -> StoreResult<bool> {
        self.write(|c| {
            let tx = c.transaction().map_err(db)?;
            if let Some(p) = person {
                let exists = query_opt(
                    &tx,
                    "SELECT 1 FROM people WHERE id = ?",
                    [p.as_str()],
                    |_| Ok(()),
                )?;
                if exists.is_none() {
                    return Err(StoreError::new(format!(
                        "cannot assign device {device} to person {p}: no such person"
                    )));
                }
            }
            let n = exec(
                &tx,
                "UPDATE devices SET person_id = ? WHERE udid = ?",
                params![person.map(PersonId::as_str), device.as_str()],
            )?;
            tx.commit().map_err(db)?;
            Ok(n == 1)
        })
        .await
    }

    async fn person_devices(&self, id: &PersonId) -> StoreResult<Vec<DeviceKey>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT udid FROM devices WHERE person_id = ? ORDER BY udid",
                [id.as_str()],
                |r| device_key(&col::<String>(r, "udid")?),
            )
        })
        .await
    }

    async fn people_devices(&self, ids: &[PersonId]) -> StoreResult<Vec<Vec<DeviceKey>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(|p| p.as_str().to_owned()).collect();
        self.read_blocking(move |c| {
            let mut by_person: HashMap<String, Vec<DeviceKey>> = HashMap::new();
            let unique: Vec<&String> = {
                let mut seen = HashSet::with_capacity(ids.len());
                ids.iter().filter(|i| seen.insert(i.as_str())).collect()
            };
            for chunk in unique.chunks(IN_CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!(
                    "SELECT person_id, udid FROM devices WHERE person_id IN ({marks})
                     ORDER BY person_id, udid"
                );
                for (person, udid) in query_all(c, &sql, params_from_iter(chunk), |r| {
                    Ok((col::<String>(r, "person_id")?, col::<String>(r, "udid")?))
                })? {
                    by_person
                        .entry(person)
                        .or_default()
                        .push(device_key(&udid)?);
                }
            }
            Ok(ids
                .iter()
                .map(|i| by_person.get(i).cloned().unwrap_or_default())
                .collect())
        })
        .await
    }

    async fn device_person(&self, device: &DeviceKey) -> StoreResult<Option<PersonId>> {
        let id = self
            .read(|c| {
                query_opt(
                    c,
                    "SELECT person_id FROM devices WHERE udid = ?",
                    [device.as_str()],
                    |r| col::<Option<String>>(r, "person_id"),
                )
            })
            .await?;
        id.flatten().as_deref().map(person_id).transpose()
    }

    async fn people_due_for_purge(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<PersonId>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT id FROM people WHERE status = 'departed' AND departed_at <= ?
                 ORDER BY departed_at, id LIMIT ?",
                params![ts(before), i64::from(limit)],
                |r| person_id(&col::<String>(r, "id")?),
            )
        })
        .await
    }

    async fn purge_people(&self, ids: &[PersonId], now: OffsetDateTime) -> StoreResult<u64> {
        let ids: Vec<String> = ids.iter().map(|i| i.as_str().to_owned()).collect();
        self.write_blocking(move |c| {
            let tx = c.transaction().map_err(db)?;
            let mut purged = 0u64;
            for id in &ids {
                exec(
                    &tx,
                    "UPDATE devices SET person_id = NULL WHERE person_id = ?",
                    [id],
                )?;
                exec(
                    &tx,
                    "UPDATE admins SET person_id = NULL WHERE person_id = ?",
                    [id],
                )?;
                exec(&tx, "DELETE FROM person_keys WHERE person_id = ?", [id])?;
                let n = exec(&tx, "DELETE FROM people WHERE id = ?", [id])?;
                if n == 1 {
                    exec(
                        &tx,
                        "INSERT INTO people_tombstones (id, purged_at) VALUES (?, ?)
                         ON CONFLICT (id) DO NOTHING",
                        params![id, ts(now)],
                    )?;
                    purged += 1;
                }
            }
            tx.commit().map_err(db)?;
            Ok(purged)
        })
        .await
    }

    async fn is_purged(&self, id: &PersonId) -> StoreResult<bool> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT 1 AS found FROM people_tombstones WHERE id = ?",
                [id.as_str()],
                |_| Ok(()),
            )
        })
        .await
        .map(|o| o.is_some())
    }

    async fn forget_deleted(&self) -> StoreResult<()> {
        self.write_blocking(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(db)
        })
        .await
    }

    async fn link_admin_person(
        &self,
        admin: &AdminId,
        person: Option<&PersonId>,
    ) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE admins SET person_id = ? WHERE id = ?",
                    params![person.map(PersonId::as_str), admin.as_str()],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn person_admins(&self, id: &PersonId) -> StoreResult<Vec<AdminAccount>> {
        self.read(|c| {
            query_all(
                c,
                concat!(
                    crate::admins::admin_select!(),
                    " WHERE person_id = ? AND disabled_at IS NULL ORDER BY name"
                ),
                [id.as_str()],
                crate::admins::admin_from_row,
            )
        })
        .await
    }

    async fn offboard_person(
        &self,
        id: &PersonId,
        now: OffsetDateTime,
        close: &[AdminId],
    ) -> StoreResult<Option<Vec<(AdminId, String, u64, u64)>>> {
        self.write(|c| {
            let tx = c.transaction().map_err(db)?;
            let n = exec(
                &tx,
                "UPDATE people SET status = 'departed',
                        departed_at = COALESCE(departed_at, ?), updated_at = ?
                 WHERE id = ?",
                params![ts(now), ts(now), id.as_str()],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let admins = query_all(
                &tx,
                "SELECT id, name FROM admins WHERE person_id = ? AND disabled_at IS NULL ORDER BY name",
                [id.as_str()],
                |r| Ok((col::<String>(r, "id")?, col::<String>(r, "name")?)),
            )?;
            let mut out = Vec::new();
            for (admin, name) in admins {
                if !close.iter().any(|c| c.as_str() == admin) {
                    continue;
                }
                // The last enabled owner stays, whoever asks.
                let closed = exec(
                    &tx,
                    "UPDATE admins SET disabled_at = ?, disabled_reason = 'offboarded'
                     WHERE id = ? AND disabled_at IS NULL
                       AND (role != 'owner'
                            OR (SELECT COUNT(*) FROM admins
                                WHERE role = 'owner' AND disabled_at IS NULL) > 1)",
                    params![ts(now), admin],
                )?;
                if closed == 0 {
                    continue;
                }
                let (sessions, tokens) = crate::admins::revoke_credentials(&tx, &admin, now)?;
                out.push((AdminId::parse(&admin).map_err(err)?, name, sessions, tokens));
            }
            tx.commit().map_err(db)?;
            Ok(Some(out))
        })
        .await
    }

    async fn set_device_offboarding(
        &self,
        device: &DeviceKey,
        mark: Option<(&CommandUuid, OffsetDateTime)>,
    ) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE devices SET offboard_command = ?, offboard_deadline = ? WHERE udid = ?",
                params![
                    mark.map(|m| m.0.as_str()),
                    mark.map(|m| ts(m.1)),
                    device.as_str()
                ],
            )
        })
        .await?;
        Ok(())
    }

    async fn device_offboarding(
        &self,
        device: &DeviceKey,
    ) -> StoreResult<Option<(CommandUuid, OffsetDateTime)>> {
        let row = self
            .read(|c| {
                query_opt(
                    c,
                    "SELECT offboard_command, offboard_deadline FROM devices WHERE udid = ?",
                    [device.as_str()],
                    |r| {
                        Ok((
                            col::<Option<String>>(r, "offboard_command")?,
                            col::<Option<i64>>(r, "offboard_deadline")?,
                        ))
                    },
                )
            })
            .await?;
        match row {
            Some((Some(cmd), Some(deadline))) => Ok(Some((
                CommandUuid::parse(&cmd).map_err(err)?,
                from_ts(deadline)?,
            ))),
            _ => Ok(None),
        }
    }

    async fn offboarding_overdue(&self, now: OffsetDateTime) -> StoreResult<Vec<DeviceKey>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT udid FROM devices WHERE offboard_deadline IS NOT NULL AND offboard_deadline <= ?
                 ORDER BY udid",
                [ts(now)],
                |r| device_key(&col::<String>(r, "udid")?),
            )
        })
        .await
    }

    async fn person_keys_not_under(
        &self,
        current: &str,
        limit: u32,
    ) -> StoreResult<Vec<(PersonId, String, Vec<u8>)>> {
        let current = current.to_owned();
        self.read_blocking(move |c| {
            query_all(
                c,
                "SELECT person_id, key_id, wrapped_key FROM person_keys WHERE key_id <> ?
                 ORDER BY person_id LIMIT ?",
                params![current, i64::from(limit)],
                |r| {
                    Ok((
                        person_id(&col::<String>(r, "person_id")?)?,
                        col::<String>(r, "key_id")?,
                        col::<Vec<u8>>(r, "wrapped_key")?,
                    ))
                },
            )
        })
        .await
    }

    async fn rewrap_person_keys(
        &self,
        keys: &[(PersonId, String, String, Vec<u8>)],
    ) -> StoreResult<u64> {
        let keys: Vec<(String, String, String, Vec<u8>)> = keys
            .iter()
            .map(|(p, old, new, w)| (p.as_str().to_owned(), old.clone(), new.clone(), w.clone()))
            .collect();
        self.write_blocking(move |c| {
            let tx = c.transaction().map_err(db)?;
            let mut n = 0u64;
            for (person, old, new, wrapped) in &keys {
                n += exec(
                    &tx,
                    "UPDATE person_keys SET key_id = ?, wrapped_key = ? WHERE person_id = ? AND key_id = ?",
                    params![new, wrapped, person, old],
                )? as u64;
            }
            tx.commit().map_err(db)?;
            Ok(n)
        })
        .await
    }
}
