//! The audit log: append-only (the schema's triggers refuse UPDATE and
//! DELETE, so not even a bug in this crate can rewrite history).

use crate::{col, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_core::ports::{AuditStore, StoreError, StoreResult};
use mamori_domain::{AuditEvent, AuditRecord};
use rusqlite::{params, Row};

fn audit_from_row(r: &Row<'_>) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: col(r, "seq")?,
        event: AuditEvent {
            at: from_ts(col(r, "at")?)?,
            actor: col(r, "actor")?,
            source: col(r, "source")?,
            action: col(r, "action")?,
            target: col(r, "target")?,
            outcome: col(r, "outcome")?,
            request_id: col(r, "request_id")?,
            detail: col(r, "detail")?,
        },
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<i64> {
        self.write(|c| {
            query_opt(
                c,
                "INSERT INTO audit_log (at, actor, source, action, target, outcome, request_id, detail)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 RETURNING seq",
                params![
                    ts(e.at),
                    e.actor,
                    e.source,
                    e.action,
                    e.target,
                    e.outcome,
                    e.request_id,
                    e.detail
                ],
                |r| col::<i64>(r, "seq"),
            )
        })
        .await?
        .ok_or_else(|| StoreError("audit insert returned no sequence number".into()))
    }

    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        // A page can be large: read it off the runtime threads.
        self.read_blocking(move |c| {
            query_all(
                c,
                "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                params![after, i64::from(limit)],
                audit_from_row,
            )
        })
        .await
    }
}
