//! The audit log: append-only (the schema's triggers refuse UPDATE and
//! DELETE, so not even a bug in this crate can rewrite history) and
//! hash-chained: each append links to the last record in the same
//! writer-held statement sequence (see `mamori_core::audit`).

use crate::{col, db, exec, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_core::audit::{record_hash, ChainedRecord, Checkpoint, GENESIS};
use mamori_core::ports::{AuditStore, StoreResult};
use mamori_domain::{AuditEvent, AuditRecord};
use rusqlite::{params, Row};

fn event_from_row(r: &Row<'_>) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        at: from_ts(col(r, "at")?)?,
        actor: col(r, "actor")?,
        source: col(r, "source")?,
        action: col(r, "action")?,
        target: col(r, "target")?,
        outcome: col(r, "outcome")?,
        request_id: col(r, "request_id")?,
        detail: col(r, "detail")?,
    })
}

fn audit_from_row(r: &Row<'_>) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: col(r, "seq")?,
        event: event_from_row(r)?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<i64> {
        self.write(|c| {
            // The writer connection is held: nothing can append between
            // reading the last link and inserting the new record.
            let tx = c.transaction().map_err(db)?;
            let last = query_opt(
                &tx,
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((col::<i64>(r, "seq")?, col::<Option<Vec<u8>>>(r, "hash")?)),
            )?;
            let (seq, prev) = match last {
                Some((s, Some(h))) => (s + 1, h),
                Some((s, None)) => (s + 1, GENESIS.to_vec()),
                None => (1, GENESIS.to_vec()),
            };
            let hash = record_hash(&prev, seq, e);
            exec(
                &tx,
                "INSERT INTO audit_log
                    (seq, at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    seq,
                    ts(e.at),
                    e.actor,
                    e.source,
                    e.action,
                    e.target,
                    e.outcome,
                    e.request_id,
                    e.detail,
                    prev,
                    hash.as_slice()
                ],
            )?;
            tx.commit().map_err(db)?;
            Ok(seq)
        })
        .await
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

    async fn audit_chain(&self, after: i64, limit: u32) -> StoreResult<Vec<ChainedRecord>> {
        self.read_blocking(move |c| {
            query_all(
                c,
                "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                params![after, i64::from(limit)],
                |r| {
                    Ok(ChainedRecord {
                        seq: col(r, "seq")?,
                        event: event_from_row(r)?,
                        prev_hash: col(r, "prev_hash")?,
                        hash: col(r, "hash")?,
                    })
                },
            )
        })
        .await
    }

    async fn last_audit_hash(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT seq, hash FROM audit_log WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((col::<i64>(r, "seq")?, col::<Vec<u8>>(r, "hash")?)),
            )
        })
        .await
    }

    async fn insert_audit_checkpoint(&self, p: &Checkpoint) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES (?, ?, ?, ?)
                 ON CONFLICT (seq) DO NOTHING",
                params![p.seq, p.hash, p.at, p.signature],
            )
        })
        .await?;
        Ok(())
    }

    async fn audit_checkpoints(&self) -> StoreResult<Vec<Checkpoint>> {
        self.read(|c| {
            query_all(c, "SELECT * FROM audit_checkpoints ORDER BY seq", [], |r| {
                Ok(Checkpoint {
                    seq: col(r, "seq")?,
                    hash: col(r, "hash")?,
                    at: col(r, "at")?,
                    signature: col(r, "signature")?,
                })
            })
        })
        .await
    }

    async fn audit_by_action(
        &self,
        actions: &[&str],
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        actor: Option<&str>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
        let actor = actor.map(str::to_owned);
        self.read_blocking(move |c| {
            let mut out = Vec::new();
            for action in &actions {
                let mut recs = match &actor {
                    Some(a) => query_all(
                        c,
                        "SELECT * FROM audit_log WHERE action = ? AND at >= ? AND at < ? AND actor = ?
                         ORDER BY seq",
                        params![action, ts(from), ts(to), a],
                        audit_from_row,
                    )?,
                    None => query_all(
                        c,
                        "SELECT * FROM audit_log WHERE action = ? AND at >= ? AND at < ? ORDER BY seq",
                        params![action, ts(from), ts(to)],
                        audit_from_row,
                    )?,
                };
                out.append(&mut recs);
            }
            out.sort_by_key(|r| r.seq);
            Ok(out)
        })
        .await
    }
}
