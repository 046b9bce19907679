//! Short-lived shared state (`mamori_ports::EphemeralStore`): one-time
//! values, counters, gates and claims in the `ephemeral` table. The writer
//! connection decides each in one transaction (other processes on the file
//! wait for it, `BEGIN IMMEDIATE`).

use crate::{col, db, exec, query_opt, SqliteStore};
use async_trait::async_trait;
use mamori_ports::{EphemeralStore, Space, StoreError, StoreResult, Tally};
use rusqlite::{params, Connection, TransactionBehavior};
use time::{Duration, OffsetDateTime};

/// Expired entries swept, at most, whenever a new one is stored.
const SWEEP_BATCH: i64 = 100;

/// The next tick of a space's use order (`?1` is the space).
const TICK: &str = "(SELECT COALESCE(MAX(used), 0) + 1 FROM ephemeral WHERE space = ?1)";

#[async_trait]
impl EphemeralStore for SqliteStore {
    async fn put_once(
        &self,
        space: Space<'_>,
        key: &str,
        value: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.write(|c| {
            let tx = immediate(c)?;
            sweep_some(&tx, now)?;
            let others: i64 = query_opt(
                &tx,
                "SELECT COUNT(*) AS n FROM ephemeral
                 WHERE space = ?1 AND key <> ?2 AND expires_ms > ?3",
                params![space.name, key, ms(now)],
                |r| col(r, "n"),
            )?
            .unwrap_or(0);
            if others >= cap(space) {
                return Ok(false);
            }
            exec(
                &tx,
                &format!(
                    "INSERT INTO ephemeral (space, key, value, count, carried, at_ms, used, expires_ms)
                     VALUES (?1, ?2, ?3, 0, 0, NULL, {TICK}, ?4)
                     ON CONFLICT (space, key) DO UPDATE SET
                        value = excluded.value, count = 0, carried = 0, at_ms = NULL,
                        used = excluded.used, expires_ms = excluded.expires_ms"
                ),
                params![space.name, key, value, ms(expires)],
            )?;
            tx.commit().map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn take_once(
        &self,
        space: Space<'_>,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Vec<u8>>> {
        let taken = self
            .write(|c| {
                query_opt(
                    c,
                    "DELETE FROM ephemeral WHERE space = ?1 AND key = ?2
                     RETURNING value, expires_ms",
                    params![space.name, key],
                    |r| {
                        Ok((
                            col::<Option<Vec<u8>>>(r, "value")?,
                            col::<i64>(r, "expires_ms")?,
                        ))
                    },
                )
            })
            .await?;
        Ok(taken.and_then(|(value, expires)| value.filter(|_| expires > ms(now))))
    }

    async fn count_event(
        &self,
        space: Space<'_>,
        key: &str,
        idle: Duration,
        keep: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Tally> {
        self.write(|c| {
            let tx = immediate(c)?;
            let new = !exists(&tx, space, key)?;
            let (count, at) = query_opt(
                &tx,
                &format!(
                    "INSERT INTO ephemeral AS e (space, key, count, at_ms, used, expires_ms)
                     VALUES (?1, ?2, 1, ?3, {TICK}, ?4)
                     ON CONFLICT (space, key) DO UPDATE SET
                        count = CASE WHEN e.expires_ms <= ?3 OR e.at_ms IS NULL OR ?3 - e.at_ms >= ?5
                                     THEN 1 ELSE e.count + 1 END,
                        at_ms = ?3, used = excluded.used, expires_ms = ?4
                     RETURNING count, at_ms"
                ),
                params![
                    space.name,
                    key,
                    ms(now),
                    ms(now + keep),
                    millis(idle)
                ],
                |r| Ok((col::<i64>(r, "count")?, col::<i64>(r, "at_ms")?)),
            )?
            .ok_or_else(|| StoreError::new("counting an event stored nothing"))?;
            if new {
                evict(&tx, space, now)?;
            }
            tx.commit().map_err(db)?;
            tally(count, at)
        })
        .await
    }

    async fn tally(
        &self,
        space: Space<'_>,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Tally>> {
        let row = self
            .write(|c| {
                query_opt(
                    c,
                    &format!(
                        "UPDATE ephemeral SET used = {TICK}
                         WHERE space = ?1 AND key = ?2 AND expires_ms > ?3 AND at_ms IS NOT NULL
                         RETURNING count, at_ms"
                    ),
                    params![space.name, key, ms(now)],
                    |r| Ok((col::<i64>(r, "count")?, col::<i64>(r, "at_ms")?)),
                )
            })
            .await?;
        row.map(|(count, at)| tally(count, at)).transpose()
    }

    async fn pass_gate(
        &self,
        space: Space<'_>,
        key: &str,
        every: Duration,
        keep: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Option<u32>> {
        self.write(|c| {
            let tx = immediate(c)?;
            let new = !exists(&tx, space, key)?;
            // `within`: the gate passed less than `every` ago (or the clock
            // stepped back); every SET expression reads the row as it was.
            let within = "(e.at_ms IS NOT NULL AND e.expires_ms > ?3 AND ?3 - e.at_ms < ?5)";
            let (count, carried) = query_opt(
                &tx,
                &format!(
                    "INSERT INTO ephemeral AS e (space, key, count, carried, at_ms, used, expires_ms)
                     VALUES (?1, ?2, 0, 0, ?3, {TICK}, ?4)
                     ON CONFLICT (space, key) DO UPDATE SET
                        carried = CASE WHEN {within} THEN e.carried
                                       WHEN e.expires_ms <= ?3 THEN 0 ELSE e.count END,
                        count = CASE WHEN {within} THEN e.count + 1 ELSE 0 END,
                        at_ms = CASE WHEN {within} THEN e.at_ms ELSE ?3 END,
                        used = excluded.used, expires_ms = ?4
                     RETURNING count, carried"
                ),
                params![
                    space.name,
                    key,
                    ms(now),
                    ms(now + keep),
                    millis(every)
                ],
                |r| Ok((col::<i64>(r, "count")?, col::<i64>(r, "carried")?)),
            )?
            .ok_or_else(|| StoreError::new("passing a gate stored nothing"))?;
            if new {
                evict(&tx, space, now)?;
            }
            tx.commit().map_err(db)?;
            Ok((count == 0).then(|| clamp(carried)))
        })
        .await
    }

    async fn reopen_gate(&self, space: Space<'_>, key: &str, carried: u32) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE ephemeral SET at_ms = NULL, count = count + ?3
                 WHERE space = ?1 AND key = ?2",
                params![space.name, key, i64::from(carried)],
            )
        })
        .await?;
        Ok(())
    }

    async fn claim(
        &self,
        space: Space<'_>,
        key: &str,
        holder: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        // A claim of a space at its cap is refused, even one that would
        // take over an expired claim of its own key.
        let claimed = self
            .write(|c| {
                query_opt(
                    c,
                    &format!(
                        "INSERT INTO ephemeral (space, key, value, count, carried, at_ms, used, expires_ms)
                         SELECT ?1, ?2, ?3, 0, 0, NULL, {TICK}, ?4
                         WHERE (SELECT COUNT(*) FROM ephemeral
                                WHERE space = ?1 AND expires_ms > ?5) < ?6
                         ON CONFLICT (space, key) DO UPDATE SET
                            value = excluded.value, used = excluded.used,
                            expires_ms = excluded.expires_ms
                         WHERE ephemeral.expires_ms <= ?5
                         RETURNING 1 AS claimed"
                    ),
                    params![space.name, key, holder, ms(expires), ms(now), cap(space)],
                    |_| Ok(()),
                )
            })
            .await?;
        Ok(claimed.is_some())
    }

    async fn release(&self, space: Space<'_>, key: &str, holder: &[u8]) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "DELETE FROM ephemeral WHERE space = ?1 AND key = ?2 AND value = ?3",
                    params![space.name, key, holder],
                )
            })
            .await?;
        Ok(n > 0)
    }

    async fn forget(&self, space: Space<'_>, key: &str) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "DELETE FROM ephemeral WHERE space = ?1 AND key = ?2",
                params![space.name, key],
            )
        })
        .await?;
        Ok(())
    }

    async fn sweep_ephemeral(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "DELETE FROM ephemeral WHERE expires_ms <= ?1",
                    params![ms(now)],
                )
            })
            .await?;
        Ok(n as u64)
    }
}

fn immediate(c: &mut Connection) -> StoreResult<rusqlite::Transaction<'_>> {
    c.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)
}

fn exists(c: &Connection, space: Space<'_>, key: &str) -> StoreResult<bool> {
    Ok(query_opt(
        c,
        "SELECT 1 FROM ephemeral WHERE space = ?1 AND key = ?2",
        params![space.name, key],
        |_| Ok(()),
    )?
    .is_some())
}

/// Sweeps a batch of expired entries (of any space).
fn sweep_some(c: &Connection, now: OffsetDateTime) -> StoreResult<()> {
    exec(
        c,
        "DELETE FROM ephemeral WHERE rowid IN
            (SELECT rowid FROM ephemeral WHERE expires_ms <= ?1 LIMIT ?2)",
        params![ms(now), SWEEP_BATCH],
    )?;
    Ok(())
}

/// After a new key: sweeps a batch of expired entries, then the space's
/// expired ones, then its least recently used beyond the cap.
fn evict(c: &Connection, space: Space<'_>, now: OffsetDateTime) -> StoreResult<()> {
    sweep_some(c, now)?;
    exec(
        c,
        "DELETE FROM ephemeral WHERE space = ?1 AND (expires_ms <= ?2 OR key IN
            (SELECT key FROM ephemeral WHERE space = ?1 AND expires_ms > ?2
             ORDER BY used DESC LIMIT -1 OFFSET ?3))",
        params![space.name, ms(now), cap(space)],
    )?;
    Ok(())
}

/// A time as stored: Unix milliseconds.
fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(v: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(StoreError::from_cause)
}

/// A length as stored: milliseconds.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX)
}

fn cap(space: Space<'_>) -> i64 {
    i64::try_from(space.cap.max(1)).unwrap_or(i64::MAX)
}

fn clamp(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn tally(count: i64, at: i64) -> StoreResult<Tally> {
    Ok(Tally {
        count: clamp(count),
        last: from_ms(at)?,
    })
}
