//! Retention of the audit log: a signed mark first, then the records it
//! covers, oldest first. The schema's delete trigger refuses any record
//! above the highest mark.

use crate::{col, exec, query_all, query_opt, ts, PgStore};
use async_trait::async_trait;
use mamori_domain::chain::Truncation;
use mamori_ports::{AuditRetentionStore, StoreError, StoreResult};

/// Records removed per transaction: each batch commits on its own, so
/// audit appends (and the actions waiting on them) go on meanwhile.
const BATCH: i64 = 10_000;

#[async_trait]
impl AuditRetentionStore for PgStore {
    async fn last_audit_before(
        &self,
        before: time::OffsetDateTime,
    ) -> StoreResult<Option<(i64, Vec<u8>)>> {
        query_opt(
            &self.conn().await?,
            "SELECT seq, hash FROM audit_log WHERE at < $1 AND hash IS NOT NULL
             ORDER BY seq DESC LIMIT 1",
            &[&ts(before)],
        )
        .await?
        .map(|r| Ok((col(&r, "seq")?, col(&r, "hash")?)))
        .transpose()
    }

    async fn audit_truncations(&self) -> StoreResult<Vec<Truncation>> {
        query_all(
            &self.conn().await?,
            "SELECT * FROM audit_truncations ORDER BY up_to_seq",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Truncation {
                up_to_seq: col(r, "up_to_seq")?,
                hash: col(r, "hash")?,
                at: col(r, "at")?,
                before_at: col(r, "before_at")?,
                signature: col(r, "signature")?,
            })
        })
        .collect()
    }

    async fn truncate_audit(&self, m: &Truncation) -> StoreResult<u64> {
        let c = self.conn().await?;
        // Committed on its own before any record goes: the delete trigger
        // reads it.
        exec(
            &c,
            "INSERT INTO audit_truncations (up_to_seq, hash, at, before_at, signature)
             VALUES ($1, $2, $3, $4, $5)",
            &[&m.up_to_seq, &m.hash, &m.at, &m.before_at, &m.signature],
        )
        .await?;
        let mut removed = 0u64;
        loop {
            // One statement per batch (its own transaction). `found` is
            // what the batch saw, `gone` what it removed: fewer removed
            // than found means another server's truncation took some rows
            // first, and is no sign the end was reached; fewer found than
            // a batch is.
            let r = query_opt(
                &c,
                "WITH doomed AS MATERIALIZED
                     (SELECT seq FROM audit_log WHERE seq <= $1 ORDER BY seq LIMIT $2),
                 gone AS (DELETE FROM audit_log WHERE seq IN (SELECT seq FROM doomed)
                          RETURNING seq)
                 SELECT (SELECT COUNT(*) FROM doomed) AS found,
                        (SELECT COUNT(*) FROM gone) AS gone",
                &[&m.up_to_seq, &BATCH],
            )
            .await?
            .ok_or_else(|| StoreError::new("the audit truncation returned no row"))?;
            let (found, gone): (i64, i64) = (col(&r, "found")?, col(&r, "gone")?);
            removed += u64::try_from(gone).map_err(StoreError::from_cause)?;
            if found < BATCH {
                return Ok(removed);
            }
        }
    }
}
