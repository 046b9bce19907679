//! Delivery cursors of the audit sinks.

use crate::{col, exec, from_opt_ts, query_opt, ts, PgStore};
use async_trait::async_trait;
use mamori_ports::{SinkState, SinkStore, StoreResult};

#[async_trait]
impl SinkStore for PgStore {
    async fn sink_state(&self, name: &str) -> StoreResult<Option<SinkState>> {
        query_opt(
            &self.conn().await?,
            "SELECT * FROM audit_sinks WHERE name = $1",
            &[&name],
        )
        .await?
        .map(|r| {
            Ok(SinkState {
                name: col(&r, "name")?,
                delivered_seq: col(&r, "delivered_seq")?,
                delivered_at: from_opt_ts(col(&r, "delivered_at")?)?,
                failing_since: from_opt_ts(col(&r, "failing_since")?)?,
                last_error: col(&r, "last_error")?,
            })
        })
        .transpose()
    }

    async fn save_sink_state(&self, s: &SinkState) -> StoreResult<()> {
        // One statement: two servers saving the same sink at once leave the
        // larger cursor, never the later one.
        exec(
            &self.conn().await?,
            "INSERT INTO audit_sinks (name, delivered_seq, delivered_at, failing_since, last_error)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET
                delivered_seq = GREATEST(excluded.delivered_seq, audit_sinks.delivered_seq),
                delivered_at = excluded.delivered_at,
                failing_since = excluded.failing_since,
                last_error = excluded.last_error",
            &[
                &s.name,
                &s.delivered_seq,
                &s.delivered_at.map(ts),
                &s.failing_since.map(ts),
                &s.last_error,
            ],
        )
        .await?;
        Ok(())
    }
}
