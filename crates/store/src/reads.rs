//! The bulk-read limit's windows: judged and counted in one write
//! transaction (SQLite has one writer), so concurrent requests cannot
//! together pass a threshold.

use crate::{col, db, exec, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_ports::{OverLimit, ReadLimitStore, ReadRequest, ReadVerdict, StoreResult};
use rusqlite::{params, Connection, TransactionBehavior};
use time::OffsetDateTime;

/// Removes what no window counts any more (reads at or before `cut`).
fn expire(c: &Connection, cut: i64) -> StoreResult<()> {
    exec(c, "DELETE FROM read_reservations WHERE at <= ?", [cut])?;
    exec(c, "DELETE FROM read_evidence WHERE at <= ?", [cut])?;
    exec(c, "DELETE FROM read_alerts WHERE alerted_at <= ?", [cut])?;
    Ok(())
}

/// The first window `r` would take over its threshold (marking it
/// alerted the first time in a burst).
fn over_limit(c: &Connection, r: &ReadRequest<'_>, now: i64) -> StoreResult<Option<OverLimit>> {
    for key in r.keys {
        let read: i64 = query_opt(
            c,
            "SELECT COALESCE(SUM(people), 0) AS n FROM read_reservations WHERE key = ?",
            [key],
            |row| col(row, "n"),
        )?
        .unwrap_or(0);
        let read = u64::try_from(read).unwrap_or(0);
        if read.saturating_add(r.people) <= r.threshold {
            continue;
        }
        // An alert within the window is this burst's: no second one.
        let alert = exec(
            c,
            "INSERT INTO read_alerts (key, alerted_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            params![key, now],
        )? == 1;
        let evidence = query_all(
            c,
            "SELECT e.seq FROM read_evidence e
             WHERE e.id IN (SELECT id FROM read_reservations WHERE key = ?)
             ORDER BY e.seq",
            [key],
            |row| col(row, "seq"),
        )?;
        return Ok(Some(OverLimit {
            key: key.clone(),
            read,
            evidence,
            alert,
        }));
    }
    Ok(None)
}

#[async_trait]
impl ReadLimitStore for SqliteStore {
    async fn reserve_reads(&self, r: &ReadRequest<'_>) -> StoreResult<ReadVerdict> {
        let now = ts(r.now);
        let cut = ts(r.now - r.window);
        let people = i64::try_from(r.people).unwrap_or(i64::MAX);
        self.write(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            expire(&tx, cut)?;
            let over = over_limit(&tx, r, now)?;
            let counted = over.is_none() || r.count_when_over;
            if counted {
                for key in r.keys {
                    exec(
                        &tx,
                        "INSERT INTO read_reservations (id, key, at, people) VALUES (?, ?, ?, ?)",
                        params![r.id, key, now, people],
                    )?;
                }
            }
            tx.commit().map_err(db)?;
            Ok(ReadVerdict { over, counted })
        })
        .await
    }

    async fn attach_read_evidence(
        &self,
        id: i64,
        seqs: &[i64],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let now = ts(now);
        self.write(|c| {
            let tx = c.transaction().map_err(db)?;
            for seq in seqs {
                exec(
                    &tx,
                    "INSERT INTO read_evidence (id, seq, at) VALUES (?, ?, ?)
                     ON CONFLICT (id, seq) DO NOTHING",
                    params![id, seq, now],
                )?;
            }
            tx.commit().map_err(db)
        })
        .await
    }
}
