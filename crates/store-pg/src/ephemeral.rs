//! Short-lived shared state (`mamori_ports::EphemeralStore`): one-time
//! values, counters, gates and claims in the `ephemeral` table. Several
//! servers race for them, so each decision is one statement: a take is a
//! `DELETE … RETURNING` (one taker gets the row), a claim an `INSERT … ON
//! CONFLICT … WHERE` checked against the row's latest version, a counter
//! an upsert. The caps are checked inside the statement that inserts, so
//! servers inserting at the same moment may each pass it once: a space
//! holds at most its cap plus the inserts in flight.

use crate::{col, exec, query_opt, PgStore};
use async_trait::async_trait;
use mamori_ports::{EphemeralStore, Space, StoreError, StoreResult, Tally};
use time::{Duration, OffsetDateTime};

/// A batch of expired entries swept with each new entry: of other spaces
/// (`$1` is the entry's space, `$2` now), and rows another server is
/// sweeping are skipped, not waited for.
const SWEEP_OTHERS: &str = "swept AS (
    DELETE FROM ephemeral WHERE (space, key) IN (
        SELECT space, key FROM ephemeral WHERE expires_ms <= $2 AND space <> $1
        LIMIT 100 FOR UPDATE SKIP LOCKED))";

/// [`SWEEP_OTHERS`] for a one-time value: of every space but the value's
/// own key (`$3`), which the same statement replaces.
const SWEEP_BUT_KEY: &str = "swept AS (
    DELETE FROM ephemeral WHERE (space, key) IN (
        SELECT space, key FROM ephemeral
        WHERE expires_ms <= $2 AND NOT (space = $1 AND key = $3)
        LIMIT 100 FOR UPDATE SKIP LOCKED))";

#[async_trait]
impl EphemeralStore for PgStore {
    async fn put_once(
        &self,
        space: Space<'_>,
        key: &str,
        value: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        // Expired entries are not counted against the cap; a conflicting
        // row is replaced whatever it held.
        let stored = query_opt(
            &self.conn().await?,
            &format!(
                "WITH {SWEEP_BUT_KEY}
                 INSERT INTO ephemeral AS e (space, key, value, count, carried, at_ms, used, expires_ms)
                 SELECT $1::text, $3::text, $4::bytea, 0, 0, NULL::bigint,
                        nextval('ephemeral_tick'), $5::bigint
                 WHERE (SELECT count(*) FROM ephemeral
                        WHERE space = $1 AND key <> $3 AND expires_ms > $2) < $6
                 ON CONFLICT (space, key) DO UPDATE SET
                    value = EXCLUDED.value, count = 0, carried = 0, at_ms = NULL,
                    used = EXCLUDED.used, expires_ms = EXCLUDED.expires_ms
                 RETURNING 1 AS stored"
            ),
            &[
                &space.name,
                &ms(now),
                &key,
                &value,
                &ms(expires),
                &cap(space),
            ],
        )
        .await?;
        Ok(stored.is_some())
    }

    async fn take_once(
        &self,
        space: Space<'_>,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Vec<u8>>> {
        let row = query_opt(
            &self.conn().await?,
            "DELETE FROM ephemeral WHERE space = $1 AND key = $2 RETURNING value, expires_ms",
            &[&space.name, &key],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let value: Option<Vec<u8>> = col(&row, "value")?;
        let expires: i64 = col(&row, "expires_ms")?;
        Ok(value.filter(|_| expires > ms(now)))
    }

    async fn count_event(
        &self,
        space: Space<'_>,
        key: &str,
        idle: Duration,
        keep: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Tally> {
        let c = self.conn().await?;
        let row = query_opt(
            &c,
            "INSERT INTO ephemeral AS e (space, key, count, at_ms, used, expires_ms)
             VALUES ($1, $2, 1, $3, nextval('ephemeral_tick'), $4)
             ON CONFLICT (space, key) DO UPDATE SET
                count = CASE WHEN e.expires_ms <= $3 OR e.at_ms IS NULL OR $3 - e.at_ms >= $5
                             THEN 1 ELSE e.count + 1 END,
                at_ms = $3, used = EXCLUDED.used, expires_ms = $4
             RETURNING count, at_ms, (xmax = 0) AS inserted",
            &[&space.name, &key, &ms(now), &ms(now + keep), &millis(idle)],
        )
        .await?
        .ok_or_else(|| StoreError::new("counting an event stored nothing"))?;
        if col::<bool>(&row, "inserted")? {
            evict(&c, space, now).await?;
        }
        tally(col(&row, "count")?, col(&row, "at_ms")?)
    }

    async fn tally(
        &self,
        space: Space<'_>,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Tally>> {
        let row = query_opt(
            &self.conn().await?,
            "UPDATE ephemeral SET used = nextval('ephemeral_tick')
             WHERE space = $1 AND key = $2 AND expires_ms > $3 AND at_ms IS NOT NULL
             RETURNING count, at_ms",
            &[&space.name, &key, &ms(now)],
        )
        .await?;
        row.map(|r| tally(col(&r, "count")?, col(&r, "at_ms")?))
            .transpose()
    }

    async fn pass_gate(
        &self,
        space: Space<'_>,
        key: &str,
        every: Duration,
        keep: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Option<u32>> {
        let c = self.conn().await?;
        // `within`: the gate passed less than `every` ago (or the clock
        // stepped back); every SET expression reads the row as it was.
        let within = "(e.at_ms IS NOT NULL AND e.expires_ms > $3 AND $3 - e.at_ms < $5)";
        let row = query_opt(
            &c,
            &format!(
                "INSERT INTO ephemeral AS e (space, key, count, carried, at_ms, used, expires_ms)
                 VALUES ($1, $2, 0, 0, $3, nextval('ephemeral_tick'), $4)
                 ON CONFLICT (space, key) DO UPDATE SET
                    carried = CASE WHEN {within} THEN e.carried
                                   WHEN e.expires_ms <= $3 THEN 0 ELSE e.count END,
                    count = CASE WHEN {within} THEN e.count + 1 ELSE 0 END,
                    at_ms = CASE WHEN {within} THEN e.at_ms ELSE $3 END,
                    used = EXCLUDED.used, expires_ms = $4
                 RETURNING count, carried, (xmax = 0) AS inserted"
            ),
            &[&space.name, &key, &ms(now), &ms(now + keep), &millis(every)],
        )
        .await?
        .ok_or_else(|| StoreError::new("passing a gate stored nothing"))?;
        if col::<bool>(&row, "inserted")? {
            evict(&c, space, now).await?;
        }
        let count: i64 = col(&row, "count")?;
        Ok((count == 0)
            .then(|| col::<i64>(&row, "carried").map(clamp))
            .transpose()?)
    }

    async fn reopen_gate(&self, space: Space<'_>, key: &str, carried: u32) -> StoreResult<()> {
        exec(
            &self.conn().await?,
            "UPDATE ephemeral SET at_ms = NULL, count = count + $3 WHERE space = $1 AND key = $2",
            &[&space.name, &key, &i64::from(carried)],
        )
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
        // A conflicting row is locked and the WHERE checked against its
        // latest version: of servers racing for one key exactly one
        // claims it. A space at its cap refuses every claim, even one that
        // would take over an expired claim of its own key.
        let claimed = query_opt(
            &self.conn().await?,
            "INSERT INTO ephemeral AS e (space, key, value, count, carried, at_ms, used, expires_ms)
             SELECT $1::text, $2::text, $3::bytea, 0, 0, NULL::bigint,
                    nextval('ephemeral_tick'), $4::bigint
             WHERE (SELECT count(*) FROM ephemeral WHERE space = $1 AND expires_ms > $5) < $6
             ON CONFLICT (space, key) DO UPDATE SET
                value = EXCLUDED.value, used = EXCLUDED.used, expires_ms = EXCLUDED.expires_ms
             WHERE e.expires_ms <= $5
             RETURNING 1 AS claimed",
            &[
                &space.name,
                &key,
                &holder,
                &ms(expires),
                &ms(now),
                &cap(space),
            ],
        )
        .await?;
        Ok(claimed.is_some())
    }

    async fn release(&self, space: Space<'_>, key: &str, holder: &[u8]) -> StoreResult<bool> {
        let n = exec(
            &self.conn().await?,
            "DELETE FROM ephemeral WHERE space = $1 AND key = $2 AND value = $3",
            &[&space.name, &key, &holder],
        )
        .await?;
        Ok(n > 0)
    }

    async fn forget(&self, space: Space<'_>, key: &str) -> StoreResult<()> {
        exec(
            &self.conn().await?,
            "DELETE FROM ephemeral WHERE space = $1 AND key = $2",
            &[&space.name, &key],
        )
        .await?;
        Ok(())
    }

    async fn sweep_ephemeral(&self, now: OffsetDateTime) -> StoreResult<u64> {
        exec(
            &self.conn().await?,
            "DELETE FROM ephemeral WHERE expires_ms <= $1",
            &[&ms(now)],
        )
        .await
    }
}

/// After a new key: sweeps a batch of other spaces' expired entries, and
/// the space's expired ones and its least recently used beyond the cap.
async fn evict(
    c: &deadpool_postgres::Object,
    space: Space<'_>,
    now: OffsetDateTime,
) -> StoreResult<()> {
    exec(
        c,
        &format!(
            "WITH {SWEEP_OTHERS}
             DELETE FROM ephemeral WHERE space = $1 AND (expires_ms <= $2 OR key IN (
                SELECT key FROM ephemeral WHERE space = $1 AND expires_ms > $2
                ORDER BY used DESC OFFSET $3))"
        ),
        &[&space.name, &ms(now), &cap(space)],
    )
    .await?;
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
