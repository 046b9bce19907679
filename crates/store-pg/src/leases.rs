//! Leases of the background jobs. Several servers race for them, so each
//! decision is one statement, and time is the database's clock: the
//! servers' own clocks need not agree.

use crate::{col, exec, query_all, query_opt, PgStore};
use async_trait::async_trait;
use mamori_ports::{Lease, LeaseStore, StoreError, StoreResult};
use std::time::Duration;
use time::OffsetDateTime;

#[async_trait]
impl LeaseStore for PgStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<Option<OffsetDateTime>> {
        let ttl = i64::try_from(ttl.as_millis())
            .map_err(|_| StoreError::new("a lease's length is out of range"))?;
        // One statement: a conflicting row is locked and the WHERE checked
        // against its latest version, so of servers racing for one lease
        // exactly one is granted (the others see it held). `now()` is when
        // the statement began, after the caller sent it: the end granted is
        // never earlier than the caller counts on, and a lease is taken
        // over only once it has run out by the database's clock.
        let granted = query_opt(
            &self.conn().await?,
            "INSERT INTO job_leases (name, holder, until_ms)
             VALUES ($1, $2, (extract(epoch FROM now()) * 1000)::BIGINT + $3)
             ON CONFLICT (name) DO UPDATE SET
                holder = excluded.holder, until_ms = excluded.until_ms
             WHERE job_leases.holder = excluded.holder
                OR job_leases.until_ms <= excluded.until_ms - $3
             RETURNING until_ms",
            &[&name, &holder, &ttl],
        )
        .await?;
        granted
            .map(|r| col::<i64>(&r, "until_ms").and_then(from_ms))
            .transpose()
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool> {
        let n = exec(
            &self.conn().await?,
            "DELETE FROM job_leases WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )
        .await?;
        Ok(n > 0)
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        query_all(
            &self.conn().await?,
            "SELECT name, holder, until_ms FROM job_leases ORDER BY name",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Lease {
                name: col(r, "name")?,
                holder: col(r, "holder")?,
                until: from_ms(col(r, "until_ms")?)?,
            })
        })
        .collect()
    }
}

fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(StoreError::from_cause)
}
