//! Retention of the audit log: a signed mark first, then the records it
//! covers, oldest first. The schema's delete trigger refuses any record
//! above the highest mark.

use crate::{col, db, exec, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::chain::Truncation;
use mamori_ports::{AuditRetentionStore, StoreResult};
use rusqlite::params;

/// Records removed per transaction: the writer is released between
/// batches so audit appends (and the actions waiting on them) go on.
const BATCH: i64 = 10_000;

#[async_trait]
impl AuditRetentionStore for SqliteStore {
    async fn last_audit_before(
        &self,
        before: time::OffsetDateTime,
    ) -> StoreResult<Option<(i64, Vec<u8>)>> {
        self.read_blocking(move |c| {
            query_opt(
                c,
                "SELECT seq, hash FROM audit_log WHERE at < ? AND hash IS NOT NULL
                 ORDER BY seq DESC LIMIT 1",
                params![ts(before)],
                |r| Ok((col::<i64>(r, "seq")?, col::<Vec<u8>>(r, "hash")?)),
            )
        })
        .await
    }

    async fn audit_truncations(&self) -> StoreResult<Vec<Truncation>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM audit_truncations ORDER BY up_to_seq",
                [],
                |r| {
                    Ok(Truncation {
                        up_to_seq: col(r, "up_to_seq")?,
                        hash: col(r, "hash")?,
                        at: col(r, "at")?,
                        before_at: col(r, "before_at")?,
                        signature: col(r, "signature")?,
                    })
                },
            )
        })
        .await
    }

    async fn truncate_audit(&self, m: &Truncation) -> StoreResult<u64> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO audit_truncations (up_to_seq, hash, at, before_at, signature)
                 VALUES (?, ?, ?, ?, ?)",
                params![m.up_to_seq, m.hash, m.at, m.before_at, m.signature],
            )
        })
        .await?;
        let mut removed = 0u64;
        loop {
            let up_to = m.up_to_seq;
            let n = self
                .write(move |c| {
                    let tx = c.transaction().map_err(db)?;
                    let n = exec(
                        &tx,
                        "DELETE FROM audit_log WHERE seq IN
                            (SELECT seq FROM audit_log WHERE seq <= ? ORDER BY seq LIMIT ?)",
                        params![up_to, BATCH],
                    )?;
                    tx.commit().map_err(db)?;
                    Ok(n)
                })
                .await?;
            removed += n as u64;
            if (n as i64) < BATCH {
                return Ok(removed);
            }
        }
    }
}
