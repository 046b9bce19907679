//! Incidents and the people they affect.

use crate::{col, db, exec, from_opt_ts, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{AffectedPerson, Incident, IncidentStatus};
use mamori_ports::{IncidentStore, StoreError, StoreResult};
use rusqlite::{params, Row};
use time::OffsetDateTime;

fn incident_from_row(r: &Row<'_>) -> StoreResult<Incident> {
    let status: String = col(r, "status")?;
    let facts: String = col(r, "facts")?;
    Ok(Incident {
        id: col(r, "id")?,
        title: col(r, "title")?,
        status: IncidentStatus::parse(&status)
            .ok_or_else(|| StoreError::new(format!("unknown incident status {status:?}")))?,
        opened_at: from_ts(col(r, "opened_at")?)?,
        opened_by: col(r, "opened_by")?,
        alert_seq: col(r, "alert_seq")?,
        discovered_at: from_ts(col(r, "discovered_at")?)?,
        window_from: from_ts(col(r, "window_from")?)?,
        window_to: from_ts(col(r, "window_to")?)?,
        actor: col(r, "actor")?,
        facts: serde_json::from_str(&facts).map_err(StoreError::from_cause)?,
        updated_at: from_ts(col(r, "updated_at")?)?,
    })
}

fn facts_json(i: &Incident) -> StoreResult<String> {
    serde_json::to_string(&i.facts).map_err(StoreError::from_cause)
}

#[async_trait]
impl IncidentStore for SqliteStore {
    async fn insert_incident(&self, i: &Incident) -> StoreResult<bool> {
        let facts = facts_json(i)?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "INSERT INTO incidents (id, title, status, opened_at, opened_by, alert_seq,
                        discovered_at, window_from, window_to, actor, facts, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT DO NOTHING",
                    params![
                        i.id,
                        i.title,
                        i.status.as_str(),
                        ts(i.opened_at),
                        i.opened_by,
                        i.alert_seq,
                        ts(i.discovered_at),
                        ts(i.window_from),
                        ts(i.window_to),
                        i.actor,
                        facts,
                        ts(i.updated_at)
                    ],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn incident(&self, id: &str) -> StoreResult<Option<Incident>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT * FROM incidents WHERE id = ?",
                [id],
                incident_from_row,
            )
        })
        .await
    }

    async fn list_incidents(&self) -> StoreResult<Vec<Incident>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM incidents ORDER BY opened_at DESC, id",
                [],
                incident_from_row,
            )
        })
        .await
    }

    async fn update_incident(&self, i: &Incident) -> StoreResult<bool> {
        let facts = facts_json(i)?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE incidents SET title = ?, status = ?, discovered_at = ?,
                        window_from = ?, window_to = ?, actor = ?, facts = ?, updated_at = ?
                     WHERE id = ?",
                    params![
                        i.title,
                        i.status.as_str(),
                        ts(i.discovered_at),
                        ts(i.window_from),
                        ts(i.window_to),
                        i.actor,
                        facts,
                        ts(i.updated_at),
                        i.id
                    ],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn set_incident_people(
        &self,
        id: &str,
        people: &[(String, Vec<String>)],
    ) -> StoreResult<()> {
        let rows: Vec<(String, String)> = people
            .iter()
            .map(|(p, f)| (p.clone(), f.join(",")))
            .collect();
        let id = id.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            exec(
                &tx,
                "CREATE TEMP TABLE IF NOT EXISTS scope_now (person_id TEXT PRIMARY KEY)",
                [],
            )?;
            exec(&tx, "DELETE FROM scope_now", [])?;
            {
                let mut ins = tx
                    .prepare_cached("INSERT OR IGNORE INTO scope_now (person_id) VALUES (?)")
                    .map_err(db)?;
                let mut up = tx
                    .prepare_cached(
                        "INSERT INTO incident_people (incident_id, person_id, fields)
                         VALUES (?, ?, ?)
                         ON CONFLICT (incident_id, person_id) DO UPDATE SET fields = excluded.fields",
                    )
                    .map_err(db)?;
                for (p, f) in &rows {
                    ins.execute(params![p]).map_err(db)?;
                    up.execute(params![id, p, f]).map_err(db)?;
                }
            }
            exec(
                &tx,
                "DELETE FROM incident_people WHERE incident_id = ? AND notified_at IS NULL
                   AND person_id NOT IN (SELECT person_id FROM scope_now)",
                params![id],
            )?;
            exec(&tx, "DELETE FROM scope_now", [])?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn incident_people(&self, id: &str) -> StoreResult<Vec<AffectedPerson>> {
        let id = id.to_owned();
        self.read_blocking(move |c| {
            query_all(
                c,
                "SELECT * FROM incident_people WHERE incident_id = ? ORDER BY person_id",
                params![id],
                |r| {
                    let fields: String = col(r, "fields")?;
                    Ok(AffectedPerson {
                        person: col(r, "person_id")?,
                        fields: fields
                            .split(',')
                            .filter(|f| !f.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        notified_at: from_opt_ts(col(r, "notified_at")?)?,
                    })
                },
            )
        })
        .await
    }

    async fn mark_notified(
        &self,
        id: &str,
        people: Option<&[String]>,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let id = id.to_owned();
        let people = people.map(<[String]>::to_vec);
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            let n = match &people {
                None => exec(
                    &tx,
                    "UPDATE incident_people SET notified_at = ?
                     WHERE incident_id = ? AND notified_at IS NULL",
                    params![ts(now), id],
                )?,
                Some(list) => {
                    let mut n = 0;
                    let mut st = tx
                        .prepare_cached(
                            "UPDATE incident_people SET notified_at = ?
                             WHERE incident_id = ? AND person_id = ? AND notified_at IS NULL",
                        )
                        .map_err(db)?;
                    for p in list {
                        n += st.execute(params![ts(now), id, p]).map_err(db)?;
                    }
                    n
                }
            };
            tx.commit().map_err(db)?;
            Ok(n as u64)
        })
        .await
    }
}
