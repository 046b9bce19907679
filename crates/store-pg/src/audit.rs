//! The audit log: append-only (the schema's triggers refuse UPDATE and
//! DELETE, so not even a bug in this crate can rewrite history) and
//! hash-chained: an append takes the audit chain's advisory lock
//! ([`Area::Audit`]), reads the chain's end and links the records onto it
//! with the service layer's hash (`mamori_ports::ChainLinker`), so appends
//! from every server follow one another, none conflicts, and the chain can
//! neither fork nor skip a number.
//!
//! An append first tries the end this store last left the chain at, in one
//! round trip (`mamori_append_audit`, migration 8): under the same lock,
//! the function reads the end afresh and inserts only if it is that end,
//! else writes nothing and the append goes the usual way. A guess can thus
//! cost a round trip, never a fork.

use crate::{col, db, exec, from_ts, lock, query_all, query_opt, ts, Area, PgStore, Transaction};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_domain::breach::{Access, AccessFilter, ScopeBuilder};
use mamori_domain::chain::{ChainLink, ChainedRecord, Checkpoint, GENESIS};
use mamori_domain::{AuditEvent, AuditRecord};
use mamori_ports::{AuditStore, ChainLinker, NewestByAction, StoreResult};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;

/// The window of one action, `action = $1` and `at` in [$2, $3): an
/// equality on the first column of the indexes on (action, at, …) and both
/// bounds on the second, so a scan starts at the window and stops at its
/// end, and is more selective there than on the index on `at` alone, for
/// a custom plan or the generic one. (Spelled as row comparisons, the
/// bounds were only checked on each entry: every scan walked all of the
/// action's entries; `tests/audit_scan.rs`.)
macro_rules! action_window {
    () => {
        "action = $1 AND at >= $2 AND at < $3"
    };
}

/// `SELECT $cols FROM audit_log WHERE` the action window `$tail`, over
/// both halves of the log: short records (the covering index
/// `audit_log_access`) and long ones (`audit_log_access_long`, then the
/// table). Each half states its own `short` condition, which is what lets
/// the planner use each half's partial index.
macro_rules! both_halves {
    ($cols:literal, $tail:literal) => {
        concat!(
            "SELECT ",
            $cols,
            " FROM audit_log WHERE ",
            action_window!(),
            " AND short ",
            $tail,
            " UNION ALL SELECT ",
            $cols,
            " FROM audit_log WHERE ",
            action_window!(),
            " AND NOT short ",
            $tail
        )
    };
}

/// Rows fetched per round trip by the access scan: the scan walks
/// millions of records without holding them all.
const SCAN_BATCH: i32 = 10_000;

fn event_from_row(r: &Row) -> StoreResult<AuditEvent> {
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

/// Column `i` of a row.
fn pos<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> StoreResult<T> {
    r.try_get(i).map_err(db)
}

fn audit_from_row(r: &Row) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: col(r, "seq")?,
        event: event_from_row(r)?,
    })
}

/// The end of the stored chain: the last record's sequence number and hash
/// (`GENESIS` for a record written before chaining; `ChainLink::genesis`
/// for an empty log).
async fn stored_head(c: &impl GenericClient) -> StoreResult<ChainLink> {
    let last = query_opt(
        c,
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )
    .await?;
    Ok(match last {
        Some(r) => ChainLink {
            seq: col(&r, "seq")?,
            hash: col::<Option<Vec<u8>>>(&r, "hash")?.unwrap_or_else(|| GENESIS.to_vec()),
        },
        None => ChainLink::genesis(),
    })
}

/// Appends `events` inside the caller's transaction: takes the audit
/// chain's lock ([`Area::Audit`]), held to the caller's commit, reads the
/// log's last record and links the events onto it with `linker` (the
/// service layer's hash), so the end read is the end appended to, whichever
/// server appends at the same time. Returns the records' sequence numbers.
/// A transaction that also locks other areas takes them before calling
/// this, or with it: `Area::Audit` is last in the locking order.
pub(crate) async fn append_linked(
    tx: &Transaction<'_>,
    events: &[AuditEvent],
    linker: &dyn ChainLinker,
) -> StoreResult<Vec<i64>> {
    Ok(append_records(tx, events, linker)
        .await?
        .iter()
        .map(|r| r.seq)
        .collect())
}

/// [`append_linked`], returning the records as linked.
async fn append_records(
    tx: &Transaction<'_>,
    events: &[AuditEvent],
    linker: &dyn ChainLinker,
) -> StoreResult<Vec<ChainedRecord>> {
    lock(tx, &[Area::Audit]).await?;
    let records = linker.link_onto(&stored_head(tx).await?, events);
    if !records.is_empty() {
        Columns::of(&records).insert(tx).await?;
    }
    Ok(records)
}

/// The end `records` leave the chain at.
fn end_of(records: &[ChainedRecord]) -> Option<ChainLink> {
    let last = records.last()?;
    Some(ChainLink {
        seq: last.seq,
        hash: last.hash.clone()?,
    })
}

/// The records of an append, column by column: one INSERT for the batch.
#[derive(Default)]
struct Columns<'a> {
    seq: Vec<i64>,
    at: Vec<i64>,
    actor: Vec<&'a str>,
    source: Vec<Option<&'a str>>,
    action: Vec<&'a str>,
    target: Vec<Option<&'a str>>,
    outcome: Vec<&'a str>,
    request_id: Vec<Option<&'a str>>,
    detail: Vec<Option<&'a str>>,
    prev_hash: Vec<Option<&'a [u8]>>,
    hash: Vec<Option<&'a [u8]>>,
}

impl<'a> Columns<'a> {
    fn of(records: &'a [ChainedRecord]) -> Self {
        let mut cols = Self::default();
        for rec in records {
            cols.push(rec);
        }
        cols
    }

    fn push(&mut self, rec: &'a ChainedRecord) {
        let e = &rec.event;
        self.seq.push(rec.seq);
        self.at.push(ts(e.at));
        self.actor.push(&e.actor);
        self.source.push(e.source.as_deref());
        self.action.push(&e.action);
        self.target.push(e.target.as_deref());
        self.outcome.push(&e.outcome);
        self.request_id.push(e.request_id.as_deref());
        self.detail.push(e.detail.as_deref());
        self.prev_hash.push(rec.prev_hash.as_deref());
        self.hash.push(rec.hash.as_deref());
    }

    /// Appends the records in one statement if the chain still ends at
    /// `end` (`mamori_append_audit`, under the chain's lock); whether it
    /// did (all of them, or none).
    async fn append_onto(&self, c: &impl GenericClient, end: &ChainLink) -> StoreResult<bool> {
        let lock_key = crate::LOCK_SPACE | Area::Audit as i64;
        let row = query_opt(
            c,
            "SELECT mamori_append_audit($1::BIGINT, $2::BIGINT, $3::BYTEA, $4::BIGINT[], $5::BIGINT[], $6::TEXT[],
                 $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[],
                 $13::BYTEA[], $14::BYTEA[]) AS done",
            &[
                &[&lock_key as &(dyn ToSql + Sync), &end.seq, &end.hash][..],
                &self.values(),
            ]
            .concat(),
        )
        .await?;
        match row {
            Some(r) => col(&r, "done"),
            None => Ok(false),
        }
    }

    async fn insert(&self, tx: &Transaction<'_>) -> StoreResult<()> {
        exec(
            tx,
            "INSERT INTO audit_log
                (seq, at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                 $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BYTEA[], $11::BYTEA[])",
            &self.values(),
        )
        .await?;
        Ok(())
    }

    /// The columns, in the order of `audit_log`'s (and of
    /// `mamori_append_audit`'s arrays).
    fn values(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.seq,
            &self.at,
            &self.actor,
            &self.source,
            &self.action,
            &self.target,
            &self.outcome,
            &self.request_id,
            &self.detail,
            &self.prev_hash,
            &self.hash,
        ]
    }
}

/// Folds a batch of the access scan's rows into `into`.
fn add_accesses(into: &mut ScopeBuilder, rows: &[Row]) -> StoreResult<()> {
    for r in rows {
        into.add(Access {
            seq: pos(r, 0)?,
            at: from_ts(pos(r, 1)?)?,
            actor: pos::<Option<&str>>(r, 2)?.unwrap_or_default(),
            target: pos(r, 3)?,
            detail: pos(r, 4)?,
            source: pos(r, 5)?,
        });
    }
    Ok(())
}

impl PgStore {
    /// Keeps the end `records` left the chain at, for the next append.
    fn remember_end(&self, records: &[ChainedRecord]) {
        if let (Some(end), Ok(mut known)) = (end_of(records), self.chain_end.lock()) {
            *known = Some(end);
        }
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(
        &self,
        events: &[AuditEvent],
        linker: &dyn ChainLinker,
    ) -> StoreResult<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        // Onto the end this store last appended to, in one round trip, if
        // it is still the end (on one server, nearly always).
        let known = self.chain_end.lock().ok().and_then(|end| end.clone());
        if let Some(end) = known {
            let records = linker.link_onto(&end, events);
            if Columns::of(&records).append_onto(&c, &end).await? {
                self.remember_end(&records);
                return Ok(records.iter().map(|r| r.seq).collect());
            }
        }
        let tx = c.transaction().await.map_err(db)?;
        let records = append_records(&tx, events, linker).await?;
        tx.commit().await.map_err(db)?;
        self.remember_end(&records);
        Ok(records.iter().map(|r| r.seq).collect())
    }

    async fn audit_head(&self) -> StoreResult<ChainLink> {
        stored_head(&self.conn().await?).await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        query_all(
            &self.conn().await?,
            "SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    async fn audit_chain(&self, after: i64, limit: u32) -> StoreResult<Vec<ChainedRecord>> {
        // `audit verify` reads the whole log through here: columns by
        // position.
        query_all(
            &self.conn().await?,
            "SELECT seq, at, actor, source, action, target, outcome, request_id, detail,
                    prev_hash, hash
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(ChainedRecord {
                seq: pos(r, 0)?,
                event: AuditEvent {
                    at: from_ts(pos(r, 1)?)?,
                    actor: pos(r, 2)?,
                    source: pos(r, 3)?,
                    action: pos(r, 4)?,
                    target: pos(r, 5)?,
                    outcome: pos(r, 6)?,
                    request_id: pos(r, 7)?,
                    detail: pos(r, 8)?,
                },
                prev_hash: pos(r, 9)?,
                hash: pos(r, 10)?,
            })
        })
        .collect()
    }

    async fn last_audit_hash(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        query_opt(
            &self.conn().await?,
            "SELECT seq, hash FROM audit_log WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| Ok((col(&r, "seq")?, col(&r, "hash")?)))
        .transpose()
    }

    async fn insert_audit_checkpoint(&self, p: &Checkpoint) -> StoreResult<()> {
        // One statement: a checkpoint made twice (two servers) is kept once.
        exec(
            &self.conn().await?,
            "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ($1, $2, $3, $4)
             ON CONFLICT (seq) DO NOTHING",
            &[&p.seq, &p.hash, &p.at, &p.signature],
        )
        .await?;
        Ok(())
    }

    async fn audit_checkpoints(&self) -> StoreResult<Vec<Checkpoint>> {
        query_all(
            &self.conn().await?,
            "SELECT * FROM audit_checkpoints ORDER BY seq",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Checkpoint {
                seq: col(r, "seq")?,
                hash: col(r, "hash")?,
                at: col(r, "at")?,
                signature: col(r, "signature")?,
            })
        })
        .collect()
    }

    async fn audit_by_action(
        &self,
        actions: &[&str],
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        actor: Option<&str>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let c = self.conn().await?;
        let (from, to) = (ts(from), ts(to));
        let mut out = Vec::new();
        for action in actions {
            let rows = match actor {
                Some(a) => {
                    query_all(
                        &c,
                        concat!(
                            "SELECT * FROM (",
                            both_halves!("*", "AND actor = $4"),
                            ") w ORDER BY seq"
                        ),
                        &[action, &from, &to, &a],
                    )
                    .await?
                }
                None => {
                    query_all(
                        &c,
                        concat!("SELECT * FROM (", both_halves!("*", ""), ") w ORDER BY seq"),
                        &[action, &from, &to],
                    )
                    .await?
                }
            };
            for r in &rows {
                out.push(audit_from_row(r)?);
            }
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    async fn newest_audit_by_action(
        &self,
        actions: &[&str],
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        detail_prefix: &str,
        limit: u32,
    ) -> StoreResult<NewestByAction> {
        let c = self.conn().await?;
        let (from, to, n) = (ts(from), ts(to), i64::from(limit));
        let keep = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut out = NewestByAction::default();
        for action in actions {
            // Counted in the covering index (action, at, …, detail): an
            // index-only scan of the window's short records, and the long
            // ones (rare) from the table.
            let counts = query_opt(
                &c,
                concat!(
                    "SELECT COUNT(*) AS total,
                        COUNT(*) FILTER (WHERE starts_with(detail, $4)) AS with_prefix
                     FROM (",
                    both_halves!("detail", ""),
                    ") w"
                ),
                &[action, &from, &to, &detail_prefix],
            )
            .await?;
            if let Some(r) = counts {
                out.total += u64::try_from(col::<i64>(&r, "total")?).unwrap_or(0);
                out.with_prefix += u64::try_from(col::<i64>(&r, "with_prefix")?).unwrap_or(0);
            }
            // The same index walked backwards from the window's end, in
            // its own order (no `action = $1`, which would let the index
            // on `at` order the walk): the newest `limit` and the ties of
            // the last one's second, no more; newest first by sequence
            // number among those.
            // Each half's newest, merged and trimmed below.
            let rows = query_all(
                &c,
                "(SELECT * FROM audit_log
                  WHERE (action, at) >= ($1, $2) AND (action, at) < ($1, $3) AND short
                  ORDER BY action DESC, at DESC FETCH FIRST $4 ROWS WITH TIES)
                 UNION ALL
                 (SELECT * FROM audit_log
                  WHERE (action, at) >= ($1, $2) AND (action, at) < ($1, $3) AND NOT short
                  ORDER BY action DESC, at DESC FETCH FIRST $4 ROWS WITH TIES)",
                &[action, &from, &to, &n],
            )
            .await?;
            let mut recs = rows
                .iter()
                .map(audit_from_row)
                .collect::<StoreResult<Vec<_>>>()?;
            recs.sort_by_key(|r| std::cmp::Reverse((r.event.at, r.seq)));
            recs.truncate(keep);
            out.newest.append(&mut recs);
        }
        out.newest.sort_by_key(|r| std::cmp::Reverse(r.seq));
        out.newest.truncate(keep);
        Ok(out)
    }

    async fn scan_audit_access(
        &self,
        actions: &[&str],
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        filter: &AccessFilter,
        mut into: ScopeBuilder,
    ) -> StoreResult<ScopeBuilder> {
        // The walk follows `audit_log_access` (action, at, actor, target,
        // detail, and seq in it): an index-only scan of the short records;
        // the long ones (rare) through `audit_log_access_long` and the
        // table, as is the source when wanted (a network filter). Rows go
        // to `into` as they are read, a batch at a time through a portal,
        // never the whole result at once.
        let mut cols = String::from("seq, at, actor, target, detail");
        cols.push_str(if filter.with_source {
            ", source"
        } else {
            ", NULL::TEXT AS source"
        });
        let mut extra: Vec<&str> = Vec::new();
        let mut conditions = String::new();
        if let Some(a) = &filter.actor {
            extra.push(a);
            conditions.push_str(&format!(" AND actor = ${}", 3 + extra.len()));
        }
        if let Some((start, end)) = &filter.actor_range {
            extra.push(start);
            extra.push(end);
            conditions.push_str(&format!(
                " AND actor >= ${} AND actor < ${}",
                2 + extra.len(),
                3 + extra.len()
            ));
        }
        let half = |short: &str| {
            format!(
                "SELECT {cols} FROM audit_log WHERE {} AND {short}{conditions}",
                action_window!()
            )
        };
        let sql = format!("{} UNION ALL {}", half("short"), half("NOT short"));
        let (from, to) = (ts(from), ts(to));
        let mut c = self.conn().await?;
        // Portals live in a transaction (read-only here).
        let tx = c.transaction().await.map_err(db)?;
        let stmt = tx.prepare_cached(&sql).await.map_err(db)?;
        for action in actions {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![action, &from, &to];
            params.extend(extra.iter().map(|e| e as &(dyn ToSql + Sync)));
            let portal = tx.bind(&stmt, &params).await.map_err(db)?;
            let mut rows = tx.query_portal(&portal, SCAN_BATCH).await.map_err(db)?;
            loop {
                if rows.len() < SCAN_BATCH as usize {
                    add_accesses(&mut into, &rows)?;
                    break;
                }
                // The next batch is asked for first (the request goes out
                // when `join!` polls it), so PostgreSQL reads it while this
                // one is folded in: at most two batches held.
                let (next, added) = futures::join!(tx.query_portal(&portal, SCAN_BATCH), async {
                    add_accesses(&mut into, &rows)
                });
                added?;
                rows = next.map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(into)
    }
}
