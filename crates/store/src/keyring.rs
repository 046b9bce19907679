//! The people key ring as the processes on one database share it. One
//! server runs on an SQLite file, so the process's clock is the only one;
//! the command line (`mamori keys rotate`) reads the same rows.

use crate::{col, exec, query_all, query_opt, SqliteStore};
use async_trait::async_trait;
use mamori_ports::{KeyHolder, KeyRingStore, PeopleKeyChoice, StoreError, StoreResult};
use rusqlite::{params, Connection};
use std::time::Duration;
use time::OffsetDateTime;

/// How long after running out a report is swept.
const SWEEP_AFTER_MS: i64 = 24 * 3600 * 1000;

fn choice(c: &Connection) -> StoreResult<PeopleKeyChoice> {
    Ok(query_opt(
        c,
        "SELECT current_key, next_key FROM people_key_choice WHERE id = 1",
        [],
        |r| {
            Ok(PeopleKeyChoice {
                current: Some(col(r, "current_key")?),
                next: col(r, "next_key")?,
            })
        },
    )?
    .unwrap_or_default())
}

#[async_trait]
impl KeyRingStore for SqliteStore {
    async fn people_key_choice(&self) -> StoreResult<PeopleKeyChoice> {
        self.read(choice).await
    }

    async fn adopt_people_key(&self, current: &str) -> StoreResult<PeopleKeyChoice> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO people_key_choice (id, current_key) VALUES (1, ?)
                 ON CONFLICT (id) DO NOTHING",
                [current],
            )?;
            choice(c)
        })
        .await
    }

    async fn prepare_people_key(&self, current: &str, next: &str) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE people_key_choice SET next_key = ?2
                     WHERE id = 1 AND current_key = ?1 AND ?2 <> ?1
                       AND (next_key IS NULL OR next_key = ?2)",
                    params![current, next],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn promote_people_key(&self, next: &str) -> StoreResult<bool> {
        let now = unix_ms(OffsetDateTime::now_utc())?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE people_key_choice SET current_key = next_key, next_key = NULL
                     WHERE id = 1 AND next_key = ?1
                       AND NOT EXISTS (
                           SELECT 1 FROM people_key_holders
                           WHERE until_ms > ?2
                             AND instr(',' || loaded || ',', ',' || ?1 || ',') = 0)",
                    params![next, now],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn report_people_keys(
        &self,
        holder: &str,
        loaded: &[String],
        wraps_with: &str,
        ttl: Duration,
    ) -> StoreResult<()> {
        let loaded = joined(loaded)?;
        let now = unix_ms(OffsetDateTime::now_utc())?;
        let until = i64::try_from(ttl.as_millis())
            .ok()
            .and_then(|t| now.checked_add(t))
            .ok_or_else(|| StoreError::new("a report's length is out of range"))?;
        self.write(|c| {
            exec(
                c,
                "DELETE FROM people_key_holders WHERE until_ms < ?",
                [now - SWEEP_AFTER_MS],
            )?;
            exec(
                c,
                "INSERT INTO people_key_holders (holder, loaded, wraps_with, until_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (holder) DO UPDATE SET
                    loaded = excluded.loaded, wraps_with = excluded.wraps_with,
                    until_ms = excluded.until_ms",
                params![holder, loaded, wraps_with, until],
            )
            .map(|_| ())
        })
        .await
    }

    async fn withdraw_people_keys(&self, holder: &str) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "DELETE FROM people_key_holders WHERE holder = ?",
                [holder],
            )
            .map(|_| ())
        })
        .await
    }

    async fn people_key_holders(&self) -> StoreResult<Vec<KeyHolder>> {
        let now = unix_ms(OffsetDateTime::now_utc())?;
        self.read(|c| {
            query_all(
                c,
                "SELECT holder, loaded, wraps_with, until_ms FROM people_key_holders
                 WHERE until_ms > ? ORDER BY holder",
                [now],
                |r| {
                    Ok(KeyHolder {
                        holder: col(r, "holder")?,
                        loaded: split(&col::<String>(r, "loaded")?),
                        wraps_with: col(r, "wraps_with")?,
                        until: from_ms(col(r, "until_ms")?)?,
                    })
                },
            )
        })
        .await
    }

    async fn people_keys_wrapping(&self) -> StoreResult<Vec<String>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT DISTINCT key_id FROM person_keys ORDER BY key_id",
                [],
                |r| col(r, "key_id"),
            )
        })
        .await
    }
}

/// The loaded keys as stored: comma-separated (a key ID has no comma).
pub(crate) fn joined(ids: &[String]) -> StoreResult<String> {
    if ids.iter().any(|k| k.is_empty() || k.contains(',')) {
        return Err(StoreError::new("a key ID is empty or holds a comma"));
    }
    Ok(ids.join(","))
}

fn split(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

fn unix_ms(t: OffsetDateTime) -> StoreResult<i64> {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| StoreError::new("the clock is out of range"))
}

fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(StoreError::from_cause)
}
