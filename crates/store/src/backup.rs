//! Consistent snapshots for backups, and reading a restored snapshot.
//!
//! A backup never contains people's data keys: `snapshot_for_backup`
//! copies the database (`VACUUM INTO`, consistent while the server writes)
//! and then deletes every wrapped data key from the copy and rewrites it.
//! Restored, the snapshot's personal fields open only with data keys the
//! live database still has — a person purged after the backup stays
//! unreadable, whatever happens to the backup file.

use crate::{db, SqliteStore};
use mamori_domain::PersonId;
use mamori_ports::{StoreError, StoreResult};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// What a restored snapshot holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSummary {
    /// `PRAGMA integrity_check` answer ("ok" when intact).
    pub integrity: String,
    /// Schema version.
    pub schema_version: i64,
    /// Enrolled and past devices.
    pub devices: u64,
    /// Administrator accounts.
    pub admins: u64,
    /// Audit records.
    pub audit_records: u64,
    /// Data keys present (0 in every backup Mamori makes).
    pub data_keys: u64,
    /// People: ID and sealed fields.
    pub people: Vec<(PersonId, Vec<u8>)>,
}

fn count(c: &Connection, table: &str) -> StoreResult<u64> {
    let n: i64 = c
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .map_err(db)?;
    u64::try_from(n).map_err(StoreError::from_cause)
}

impl SqliteStore {
    /// Writes a consistent copy of the database to `dest` (which must not
    /// exist) without any data key.
    pub async fn snapshot_for_backup(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::new(format!("{} exists", dest.display())));
        }
        let target = dest.to_string_lossy().into_owned();
        self.read_blocking(move |c| {
            c.execute("VACUUM INTO ?", [&target]).map_err(db)?;
            Ok(())
        })
        .await?;
        let dest: PathBuf = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let c = Connection::open(&dest).map_err(db)?;
            c.pragma_update(None, "secure_delete", "ON").map_err(db)?;
            c.execute_batch("DELETE FROM person_keys; VACUUM;")
                .map_err(db)?;
            c.close().map_err(|(_, e)| db(e))
        })
        .await
        .map_err(StoreError::from_cause)?
    }
}

/// Reads a snapshot file (a restored backup) without changing it.
pub fn read_snapshot(path: &Path) -> StoreResult<SnapshotSummary> {
    let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db)?;
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(db)?;
    let schema_version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    let mut stmt = c
        .prepare("SELECT id, sealed FROM people ORDER BY id")
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let mut people = Vec::new();
    while let Some(r) = rows.next().map_err(db)? {
        let id: String = r.get(0).map_err(db)?;
        let sealed: Vec<u8> = r.get(1).map_err(db)?;
        people.push((
            PersonId::parse(&id).map_err(StoreError::from_cause)?,
            sealed,
        ));
    }
    Ok(SnapshotSummary {
        integrity,
        schema_version,
        devices: count(&c, "devices")?,
        admins: count(&c, "admins")?,
        audit_records: count(&c, "audit_log")?,
        data_keys: count(&c, "person_keys")?,
        people,
    })
}

/// The newest schema version this build knows.
pub fn schema_version() -> i64 {
    crate::migrate::latest()
}

/// A live person's data key, as the live directory holds it: (person,
/// master key ID, wrapped key).
pub type LiveDataKey = (PersonId, String, Vec<u8>);

/// After a restore into `restored`: gives the restored people the data keys
/// the live directory still holds (`live`, read through the ports of
/// whichever backend it is on; keys of people the backup does not hold are
/// ignored), and removes the people it does not hold a key for (purged
/// since the backup, or unknown): their rows go, their device and account
/// links are cleared, a tombstone stays. Returns (people kept, people
/// removed).
pub fn adopt_data_keys(restored: &Path, live: &[LiveDataKey]) -> StoreResult<(u64, u64)> {
    let mut c = Connection::open(restored).map_err(db)?;
    c.pragma_update(None, "secure_delete", "ON").map_err(db)?;
    let tx = c.transaction().map_err(db)?;
    tx.execute("DELETE FROM person_keys", []).map_err(db)?;
    {
        let mut adopt = tx
            .prepare(
                "INSERT INTO person_keys (person_id, key_id, wrapped_key)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM people WHERE id = ?1)",
            )
            .map_err(db)?;
        for (id, key_id, wrapped) in live {
            adopt
                .execute(rusqlite::params![id.as_str(), key_id, wrapped])
                .map_err(db)?;
        }
    }
    tx.execute_batch(
        "INSERT INTO people_tombstones (id, purged_at)
             SELECT p.id, CAST(strftime('%s', 'now') AS INTEGER) FROM people p
             WHERE p.id NOT IN (SELECT person_id FROM person_keys)
             ON CONFLICT (id) DO NOTHING;
         UPDATE devices SET person_id = NULL
             WHERE person_id IS NOT NULL AND person_id NOT IN (SELECT person_id FROM person_keys);
         UPDATE admins SET person_id = NULL
             WHERE person_id IS NOT NULL AND person_id NOT IN (SELECT person_id FROM person_keys);",
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    let removed = c
        .execute(
            "DELETE FROM people WHERE id NOT IN (SELECT person_id FROM person_keys)",
            [],
        )
        .map_err(db)? as u64;
    let kept = count(&c, "people")?;
    c.execute_batch("VACUUM;").map_err(db)?;
    Ok((kept, removed))
}
