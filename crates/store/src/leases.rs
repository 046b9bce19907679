//! Leases of the background jobs. One server runs on an SQLite file (the
//! data directory's lock), so the process's clock is the only one.

use crate::{col, exec, query_all, query_opt, SqliteStore};
use async_trait::async_trait;
use mamori_ports::{Lease, LeaseStore, StoreError, StoreResult};
use rusqlite::params;
use std::time::Duration;
use time::OffsetDateTime;

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<Option<OffsetDateTime>> {
        let now = unix_ms(OffsetDateTime::now_utc())?;
        let until = now
            .checked_add(ttl_ms(ttl)?)
            .ok_or_else(|| StoreError::new("a lease's end is out of range"))?;
        let granted = self
            .write(|c| {
                query_opt(
                    c,
                    "INSERT INTO job_leases (name, holder, until_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET
                        holder = excluded.holder, until_ms = excluded.until_ms
                     WHERE job_leases.holder = excluded.holder OR job_leases.until_ms <= ?4
                     RETURNING until_ms",
                    params![name, holder, until, now],
                    |r| col::<i64>(r, "until_ms"),
                )
            })
            .await?;
        granted.map(from_ms).transpose()
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "DELETE FROM job_leases WHERE name = ? AND holder = ?",
                    params![name, holder],
                )
            })
            .await?;
        Ok(n > 0)
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT name, holder, until_ms FROM job_leases ORDER BY name",
                [],
                |r| {
                    Ok(Lease {
                        name: col(r, "name")?,
                        holder: col(r, "holder")?,
                        until: from_ms(col(r, "until_ms")?)?,
                    })
                },
            )
        })
        .await
    }
}

fn unix_ms(t: OffsetDateTime) -> StoreResult<i64> {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| StoreError::new("the clock is out of range"))
}

fn ttl_ms(ttl: Duration) -> StoreResult<i64> {
    i64::try_from(ttl.as_millis()).map_err(|_| StoreError::new("a lease's length is out of range"))
}

fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(StoreError::from_cause)
}
