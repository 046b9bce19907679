//! The audit log: append-only (the schema's triggers refuse UPDATE and
//! DELETE, so not even a bug in this crate can rewrite history) and
//! hash-chained: an append reads the chain's end inside its `IMMEDIATE`
//! transaction (the file's write lock, whoever else writes to it) and
//! links the records onto it with the service layer's hash
//! (`mamori_ports::ChainLinker`), so appends never conflict and the chain
//! neither forks nor skips a number.

use crate::{col, db, exec, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::breach::{Access, AccessFilter, ScopeBuilder};
use mamori_domain::chain::{ChainLink, ChainedRecord, Checkpoint, GENESIS};
use mamori_domain::{AuditEvent, AuditRecord};
use mamori_ports::{AuditStore, ChainLinker, NewestByAction, StoreResult};
use rusqlite::types::FromSql;
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

/// Column `i` of a row.
fn pos<T: FromSql>(r: &Row<'_>, i: usize) -> StoreResult<T> {
    r.get(i).map_err(db)
}

fn audit_from_row(r: &Row<'_>) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: col(r, "seq")?,
        event: event_from_row(r)?,
    })
}

/// The end of the stored chain: the last record's sequence number and hash
/// (`GENESIS` for a record written before chaining; `ChainLink::genesis`
/// for an empty log).
fn stored_head(c: &rusqlite::Connection) -> StoreResult<ChainLink> {
    let last = query_opt(
        c,
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((col::<i64>(r, "seq")?, col::<Option<Vec<u8>>>(r, "hash")?)),
    )?;
    Ok(match last {
        Some((seq, hash)) => ChainLink {
            seq,
            hash: hash.unwrap_or_else(|| GENESIS.to_vec()),
        },
        None => ChainLink::genesis(),
    })
}

/// Appends `events` inside the caller's transaction on the writer
/// connection, which must hold the file's write lock (`BEGIN IMMEDIATE`):
/// reads the log's last record and links the events onto it with `linker`
/// (the service layer's hash), so the end read is the end appended to.
/// Returns the records' sequence numbers.
pub(crate) fn append_linked(
    tx: &rusqlite::Transaction<'_>,
    events: &[AuditEvent],
    linker: &dyn ChainLinker,
) -> StoreResult<Vec<i64>> {
    let records = linker.link_onto(&stored_head(tx)?, events);
    for rec in &records {
        let e = &rec.event;
        exec(
            tx,
            "INSERT INTO audit_log
                (seq, at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                rec.seq,
                ts(e.at),
                e.actor,
                e.source,
                e.action,
                e.target,
                e.outcome,
                e.request_id,
                e.detail,
                rec.prev_hash,
                rec.hash
            ],
        )?;
    }
    Ok(records.iter().map(|r| r.seq).collect())
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(
        &self,
        events: &[AuditEvent],
        linker: &dyn ChainLinker,
    ) -> StoreResult<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|c| {
            // Immediate: the end read below is still the end when the
            // records are inserted, whoever else writes to the file (a
            // `mamori` command); waiting for the lock is the busy timeout's.
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            let seqs = append_linked(&tx, events, linker)?;
            tx.commit().map_err(db)?;
            Ok(seqs)
        })
        .await
    }

    async fn audit_head(&self) -> StoreResult<ChainLink> {
        self.read(stored_head).await
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
        // `audit verify` reads the whole log through here: columns by
        // position (looking each up by name cost a fifth of the walk).
        self.read_blocking(move |c| {
            query_all(
                c,
                "SELECT seq, at, actor, source, action, target, outcome, request_id, detail,
                        prev_hash, hash
                 FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                params![after, i64::from(limit)],
                |r| {
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

    async fn newest_audit_by_action(
        &self,
        actions: &[&str],
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        detail_prefix: &str,
        limit: u32,
    ) -> StoreResult<NewestByAction> {
        let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
        let prefix = detail_prefix.to_owned();
        self.read_blocking(move |c| {
            let mut out = NewestByAction::default();
            let prefix_len = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
            for action in &actions {
                // Counted in the covering index (action, at, …, detail).
                let (total, with_prefix) = query_opt(
                    c,
                    "SELECT COUNT(*), COALESCE(SUM(substr(detail, 1, ?) = ?), 0) FROM audit_log
                     WHERE action = ? AND at >= ? AND at < ?",
                    params![prefix_len, prefix, action, ts(from), ts(to)],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0).map_err(db)?,
                            r.get::<_, i64>(1).map_err(db)?,
                        ))
                    },
                )?
                .unwrap_or((0, 0));
                out.total += u64::try_from(total).unwrap_or(0);
                out.with_prefix += u64::try_from(with_prefix).unwrap_or(0);
                let mut recs = query_all(
                    c,
                    "SELECT * FROM audit_log WHERE action = ? AND at >= ? AND at < ?
                     ORDER BY at DESC, seq DESC LIMIT ?",
                    params![action, ts(from), ts(to), limit],
                    audit_from_row,
                )?;
                out.newest.append(&mut recs);
            }
            out.newest.sort_by_key(|r| std::cmp::Reverse(r.seq));
            out.newest
                .truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(out)
        })
        .await
    }

    async fn scan_audit_access(
        &self,
        actions: &[&str],
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        filter: &AccessFilter,
        mut into: ScopeBuilder,
    ) -> StoreResult<ScopeBuilder> {
        let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
        let filter = filter.clone();
        // Every column read is in `audit_log_access` (0015): the walk never
        // touches the table — unless the source is wanted (a network
        // filter). Rows go to `into` as they are read.
        self.read_blocking(move |c| {
            let mut sql = String::from("SELECT seq, at, actor, target, detail");
            sql.push_str(if filter.with_source {
                ", source"
            } else {
                ", NULL AS source"
            });
            sql.push_str(" FROM audit_log WHERE action = ? AND at >= ? AND at < ?");
            let mut extra: Vec<String> = Vec::new();
            if let Some(a) = &filter.actor {
                sql.push_str(" AND actor = ?");
                extra.push(a.clone());
            }
            if let Some((start, end)) = &filter.actor_range {
                sql.push_str(" AND actor >= ? AND actor < ?");
                extra.push(start.clone());
                extra.push(end.clone());
            }
            for action in &actions {
                let mut stmt = c.prepare_cached(&sql).map_err(db)?;
                let mut values: Vec<rusqlite::types::Value> =
                    vec![action.clone().into(), ts(from).into(), ts(to).into()];
                values.extend(extra.iter().cloned().map(rusqlite::types::Value::from));
                let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(db)?;
                while let Some(r) = rows.next().map_err(db)? {
                    let text = |i| {
                        r.get_ref(i)
                            .and_then(|v| Ok(v.as_str_or_null()?))
                            .map_err(db)
                    };
                    into.add(Access {
                        seq: pos(r, 0)?,
                        at: from_ts(pos(r, 1)?)?,
                        actor: text(2)?.unwrap_or_default(),
                        target: text(3)?,
                        detail: text(4)?,
                        source: text(5)?,
                    });
                }
            }
            Ok(into)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::{Duration, OffsetDateTime};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn ev(
        action: &str,
        actor: &str,
        target: Option<&str>,
        at: OffsetDateTime,
        detail: &str,
    ) -> AuditEvent {
        AuditEvent {
            at,
            actor: actor.into(),
            source: Some("10.0.0.1".into()),
            action: action.into(),
            target: target.map(str::to_owned),
            outcome: "success".into(),
            request_id: Some("r".into()),
            detail: Some(detail.into()),
        }
    }

    async fn scope(
        s: &SqliteStore,
        from: OffsetDateTime,
        to: OffsetDateTime,
        actor: Option<&str>,
    ) -> serde_json::Value {
        let b = s
            .scan_audit_access(
                &["people.read", "people.export"],
                from,
                to,
                &AccessFilter {
                    actor: actor.map(str::to_owned),
                    ..AccessFilter::default()
                },
                ScopeBuilder::default(),
            )
            .await
            .unwrap();
        serde_json::to_value(b.finish(from, to, actor)).unwrap()
    }

    /// A stand-in for the service layer's hash: the previous hash with
    /// the sequence number written over its start.
    struct Numbered;

    impl ChainLinker for Numbered {
        fn link(&self, prev: &[u8], seq: i64, _: &AuditEvent) -> Vec<u8> {
            let mut hash = prev.to_vec();
            hash[..8].copy_from_slice(&seq.to_be_bytes());
            hash
        }
    }

    /// Appends `e` as the next record of the chain.
    async fn append_next(s: &SqliteStore, e: AuditEvent) {
        let seqs = s.append_audit(&[e], &Numbered).await.unwrap();
        assert_eq!(seqs.len(), 1);
    }

    #[tokio::test]
    async fn the_access_scan_reads_the_window_the_actions_and_the_actor() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let h = Duration::hours(1);
        for e in [
            ev(
                "people.read",
                "admin:a",
                Some("p1"),
                now(),
                "fields=name,email",
            ),
            ev("people.lookup", "admin:a", Some("p2"), now(), "fields=name"),
            ev(
                "people.read",
                "admin:b",
                Some("p2"),
                now() + h,
                "fields=phone",
            ),
            ev(
                "people.export",
                "admin:a",
                Some("p2"),
                now() + h * 2,
                "fields=email",
            ),
            ev("people.read", "admin:b", None, now() + h * 2, "fields=name"),
            ev(
                "people.read",
                "admin:a",
                Some("p3"),
                now() + h * 3,
                "fields=name",
            ),
        ] {
            append_next(&s, e).await;
        }
        let all = scope(&s, now(), now() + h * 3, None).await;
        assert_eq!(
            all["records"], 4,
            "the end is exclusive; lookups do not count"
        );
        assert_eq!(all["people_affected"], 2);
        assert_eq!(
            all["by_field"],
            serde_json::json!({"email": 2, "name": 1, "phone": 1})
        );
        assert_eq!(all["people"][1]["person"], "p2");
        assert_eq!(
            all["people"][1]["fields"],
            serde_json::json!(["phone", "email"])
        );
        assert_eq!(
            all["people"][1]["actors"],
            serde_json::json!(["admin:b", "admin:a"])
        );
        let a = scope(&s, now(), now() + h * 4, Some("admin:a")).await;
        assert_eq!(a["records"], 3);
        assert_eq!(a["people_affected"], 3);
        assert_eq!(a["by_actor"].as_array().unwrap().len(), 1);
        let none = scope(&s, now() - h, now(), None).await;
        assert_eq!(none["records"], 0);
        // The same records as `audit_by_action` returns.
        let by_action = s
            .audit_by_action(
                &["people.read", "people.export"],
                now(),
                now() + h * 3,
                None,
            )
            .await
            .unwrap();
        assert_eq!(by_action.len(), 4);
        s.close().await;
    }

    #[tokio::test]
    async fn the_access_scan_reads_only_the_covering_index() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let plans = s
            .read(|c| {
                let has_index = query_opt(
                    c,
                    "SELECT 1 AS one FROM sqlite_master WHERE type = 'index' AND name = 'audit_log_access'",
                    [],
                    |_| Ok(()),
                )?
                .is_some();
                let mut plans = Vec::new();
                for actor in ["", " AND actor = ?"] {
                    let sql = format!(
                        "EXPLAIN QUERY PLAN SELECT seq, at, actor, target, detail FROM audit_log
                         WHERE action = ? AND at >= ? AND at < ?{actor}"
                    );
                    let mut stmt = c.prepare(&sql).map_err(db)?;
                    let n = stmt.parameter_count();
                    let values: Vec<String> = vec!["x".into(); n];
                    let detail: Vec<String> = stmt
                        .query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(3))
                        .map_err(db)?
                        .collect::<Result<_, _>>()
                        .map_err(db)?;
                    plans.push(detail.join("; "));
                }
                Ok((has_index, plans))
            })
            .await
            .unwrap();
        assert!(plans.0, "migration 0015 creates audit_log_access");
        for p in plans.1 {
            assert!(p.contains("COVERING INDEX audit_log_access"), "{p}");
        }
        s.close().await;
    }
}
