//! Delivery cursors of the audit sinks.

use crate::{col, exec, from_opt_ts, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_ports::{SinkState, SinkStore, StoreResult};
use rusqlite::params;

#[async_trait]
impl SinkStore for SqliteStore {
    async fn sink_state(&self, name: &str) -> StoreResult<Option<SinkState>> {
        let name = name.to_owned();
        self.read(move |c| {
            query_opt(
                c,
                "SELECT * FROM audit_sinks WHERE name = ?",
                params![name],
                |r| {
                    Ok(SinkState {
                        name: col(r, "name")?,
                        delivered_seq: col(r, "delivered_seq")?,
                        delivered_at: from_opt_ts(col(r, "delivered_at")?)?,
                        failing_since: from_opt_ts(col(r, "failing_since")?)?,
                        last_error: col(r, "last_error")?,
                    })
                },
            )
        })
        .await
    }

    async fn save_sink_state(&self, s: &SinkState) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO audit_sinks (name, delivered_seq, delivered_at, failing_since, last_error)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET
                    delivered_seq = CASE WHEN excluded.delivered_seq > audit_sinks.delivered_seq
                        THEN excluded.delivered_seq ELSE audit_sinks.delivered_seq END,
                    delivered_at = excluded.delivered_at,
                    failing_since = excluded.failing_since,
                    last_error = excluded.last_error",
                params![
                    s.name,
                    s.delivered_seq,
                    s.delivered_at.map(ts),
                    s.failing_since.map(ts),
                    s.last_error
                ],
            )
        })
        .await?;
        Ok(())
    }
}
