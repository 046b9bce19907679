//! The people key ring as the servers on one database share it. Several
//! servers report and a rotation promotes at once, so each decision is one
//! statement, and time is the database's clock: the servers' own clocks
//! need not agree.

use crate::{col, exec, query_all, query_opt, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_ports::{KeyHolder, KeyRingStore, PeopleKeyChoice, StoreError, StoreResult};
use std::time::Duration;
use time::OffsetDateTime;

/// Now by the database's clock, in Unix milliseconds (when the statement
/// began).
const NOW_MS: &str = "(extract(epoch FROM now()) * 1000)::BIGINT";

/// How long after running out a report is swept.
const SWEEP_AFTER_MS: i64 = 24 * 3600 * 1000;

async fn choice(c: &impl GenericClient) -> StoreResult<PeopleKeyChoice> {
    let row = query_opt(
        c,
        "SELECT current_key, next_key FROM people_key_choice WHERE id = 1",
        &[],
    )
    .await?;
    row.map(|r| {
        Ok(PeopleKeyChoice {
            current: Some(col(&r, "current_key")?),
            next: col(&r, "next_key")?,
        })
    })
    .transpose()
    .map(Option::unwrap_or_default)
}

#[async_trait]
impl KeyRingStore for PgStore {
    async fn people_key_choice(&self) -> StoreResult<PeopleKeyChoice> {
        choice(&self.conn().await?).await
    }

    async fn adopt_people_key(&self, current: &str) -> StoreResult<PeopleKeyChoice> {
        let c = self.conn().await?;
        exec(
            &c,
            "INSERT INTO people_key_choice (id, current_key) VALUES (1, $1)
             ON CONFLICT (id) DO NOTHING",
            &[&current],
        )
        .await?;
        choice(&c).await
    }

    async fn prepare_people_key(&self, current: &str, next: &str) -> StoreResult<bool> {
        let n = exec(
            &self.conn().await?,
            "UPDATE people_key_choice SET next_key = $2
             WHERE id = 1 AND current_key = $1 AND $2 <> $1
               AND (next_key IS NULL OR next_key = $2)",
            &[&current, &next],
        )
        .await?;
        Ok(n == 1)
    }

    async fn promote_people_key(&self, next: &str) -> StoreResult<bool> {
        // One statement: the row is locked and its latest version checked,
        // so of rotations racing one promotes; a server's report committed
        // after the statement began is not seen, which is why a server
        // reports before it reads the choice at start (and refuses to
        // start without the prepared key).
        let sql = format!(
            "UPDATE people_key_choice SET current_key = next_key, next_key = NULL
             WHERE id = 1 AND next_key = $1
               AND NOT EXISTS (
                   SELECT 1 FROM people_key_holders
                   WHERE until_ms > {NOW_MS}
                     AND position(',' || $1 || ',' IN ',' || loaded || ',') = 0)"
        );
        let n = exec(&self.conn().await?, &sql, &[&next]).await?;
        Ok(n == 1)
    }

    async fn report_people_keys(
        &self,
        holder: &str,
        loaded: &[String],
        wraps_with: &str,
        ttl: Duration,
    ) -> StoreResult<()> {
        if loaded.iter().any(|k| k.is_empty() || k.contains(',')) {
            return Err(StoreError::new("a key ID is empty or holds a comma"));
        }
        let loaded = loaded.join(",");
        let ttl = i64::try_from(ttl.as_millis())
            .map_err(|_| StoreError::new("a report's length is out of range"))?;
        let c = self.conn().await?;
        exec(
            &c,
            &format!("DELETE FROM people_key_holders WHERE until_ms < {NOW_MS} - $1"),
            &[&SWEEP_AFTER_MS],
        )
        .await?;
        exec(
            &c,
            &format!(
                "INSERT INTO people_key_holders (holder, loaded, wraps_with, until_ms)
                 VALUES ($1, $2, $3, {NOW_MS} + $4)
                 ON CONFLICT (holder) DO UPDATE SET
                    loaded = excluded.loaded, wraps_with = excluded.wraps_with,
                    until_ms = excluded.until_ms"
            ),
            &[&holder, &loaded, &wraps_with, &ttl],
        )
        .await?;
        Ok(())
    }

    async fn withdraw_people_keys(&self, holder: &str) -> StoreResult<()> {
        exec(
            &self.conn().await?,
            "DELETE FROM people_key_holders WHERE holder = $1",
            &[&holder],
        )
        .await?;
        Ok(())
    }

    async fn people_key_holders(&self) -> StoreResult<Vec<KeyHolder>> {
        query_all(
            &self.conn().await?,
            &format!(
                "SELECT holder, loaded, wraps_with, until_ms FROM people_key_holders
                 WHERE until_ms > {NOW_MS} ORDER BY holder"
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(KeyHolder {
                holder: col(r, "holder")?,
                loaded: col::<String>(r, "loaded")?
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect(),
                wraps_with: col(r, "wraps_with")?,
                until: from_ms(col(r, "until_ms")?)?,
            })
        })
        .collect()
    }

    async fn people_keys_wrapping(&self) -> StoreResult<Vec<String>> {
        query_all(
            &self.conn().await?,
            "SELECT DISTINCT key_id FROM person_keys ORDER BY key_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| col(r, "key_id"))
        .collect()
    }
}

fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(StoreError::from_cause)
}
