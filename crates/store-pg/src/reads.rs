//! The bulk-read limit's windows: judged and counted in one transaction
//! under the [`Area::Reads`] lock, so requests on every server at once
//! cannot together pass a threshold.

use crate::{col, db, exec, lock, query_all, query_opt, ts, Area, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_ports::{OverLimit, ReadLimitStore, ReadRequest, ReadVerdict, StoreResult};
use time::OffsetDateTime;

/// Removes what no window counts any more (reads at or before `cut`).
async fn expire(c: &impl GenericClient, cut: i64) -> StoreResult<()> {
    exec(c, "DELETE FROM read_reservations WHERE at <= $1", &[&cut]).await?;
    exec(c, "DELETE FROM read_evidence WHERE at <= $1", &[&cut]).await?;
    exec(c, "DELETE FROM read_alerts WHERE alerted_at <= $1", &[&cut]).await?;
    Ok(())
}

/// The first window `r` would take over its threshold (marking it
/// alerted the first time in a burst).
async fn over_limit(
    c: &impl GenericClient,
    r: &ReadRequest<'_>,
    now: i64,
) -> StoreResult<Option<OverLimit>> {
    for key in r.keys {
        let read: i64 = match query_opt(
            c,
            "SELECT COALESCE(SUM(people), 0)::BIGINT AS n FROM read_reservations WHERE key = $1",
            &[key],
        )
        .await?
        {
            Some(row) => col(&row, "n")?,
            None => 0,
        };
        let read = u64::try_from(read).unwrap_or(0);
        if read.saturating_add(r.people) <= r.threshold {
            continue;
        }
        // An alert within the window is this burst's: no second one.
        let alert = exec(
            c,
            "INSERT INTO read_alerts (key, alerted_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[key, &now],
        )
        .await?
            == 1;
        let evidence = query_all(
            c,
            "SELECT e.seq FROM read_evidence e
             WHERE e.id IN (SELECT id FROM read_reservations WHERE key = $1)
             ORDER BY e.seq",
            &[key],
        )
        .await?
        .iter()
        .map(|row| col(row, "seq"))
        .collect::<StoreResult<Vec<i64>>>()?;
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
impl ReadLimitStore for PgStore {
    async fn reserve_reads(&self, r: &ReadRequest<'_>) -> StoreResult<ReadVerdict> {
        let now = ts(r.now);
        let cut = ts(r.now - r.window);
        let people = i64::try_from(r.people).unwrap_or(i64::MAX);
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Reads]).await?;
        expire(&tx, cut).await?;
        let over = over_limit(&tx, r, now).await?;
        let counted = over.is_none() || r.count_when_over;
        if counted {
            exec(
                &tx,
                "INSERT INTO read_reservations (id, key, at, people)
                 SELECT $1, k, $3, $4 FROM UNNEST($2::TEXT[]) AS k",
                &[&r.id, &r.keys, &now, &people],
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(ReadVerdict { over, counted })
    }

    async fn attach_read_evidence(
        &self,
        id: i64,
        seqs: &[i64],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "INSERT INTO read_evidence (id, seq, at)
             SELECT $1, s, $3 FROM UNNEST($2::BIGINT[]) AS s
             ON CONFLICT (id, seq) DO NOTHING",
            &[&id, &seqs, &ts(now)],
        )
        .await?;
        Ok(())
    }
}
