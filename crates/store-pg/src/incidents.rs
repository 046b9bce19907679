//! Incidents and the people they affect.

use crate::{col, db, exec, from_opt_ts, from_ts, lock, query_all, query_opt, ts, Area, PgStore};
use async_trait::async_trait;
use mamori_domain::{AffectedPerson, Incident, IncidentStatus};
use mamori_ports::{IncidentStore, StoreError, StoreResult};
use std::collections::HashMap;
use time::OffsetDateTime;
use tokio_postgres::Row;

fn incident_from_row(r: &Row) -> StoreResult<Incident> {
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
impl IncidentStore for PgStore {
    async fn insert_incident(&self, i: &Incident) -> StoreResult<bool> {
        let facts = facts_json(i)?;
        // One statement: of two servers opening an incident for the same
        // alert, one inserts and the other is told false.
        let n = exec(
            &self.conn().await?,
            "INSERT INTO incidents (id, title, status, opened_at, opened_by, alert_seq,
                discovered_at, window_from, window_to, actor, facts, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT DO NOTHING",
            &[
                &i.id,
                &i.title,
                &i.status.as_str(),
                &ts(i.opened_at),
                &i.opened_by,
                &i.alert_seq,
                &ts(i.discovered_at),
                &ts(i.window_from),
                &ts(i.window_to),
                &i.actor,
                &facts,
                &ts(i.updated_at),
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn incident(&self, id: &str) -> StoreResult<Option<Incident>> {
        query_opt(
            &self.conn().await?,
            "SELECT * FROM incidents WHERE id = $1",
            &[&id],
        )
        .await?
        .as_ref()
        .map(incident_from_row)
        .transpose()
    }

    async fn list_incidents(&self) -> StoreResult<Vec<Incident>> {
        query_all(
            &self.conn().await?,
            "SELECT * FROM incidents ORDER BY opened_at DESC, id",
            &[],
        )
        .await?
        .iter()
        .map(incident_from_row)
        .collect()
    }

    async fn update_incident(&self, i: &Incident) -> StoreResult<bool> {
        let facts = facts_json(i)?;
        let n = exec(
            &self.conn().await?,
            "UPDATE incidents SET title = $1, status = $2, discovered_at = $3,
                window_from = $4, window_to = $5, actor = $6, facts = $7, updated_at = $8
             WHERE id = $9",
            &[
                &i.title,
                &i.status.as_str(),
                &ts(i.discovered_at),
                &ts(i.window_from),
                &ts(i.window_to),
                &i.actor,
                &facts,
                &ts(i.updated_at),
                &i.id,
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn set_incident_people(
        &self,
        id: &str,
        people: &[(String, Vec<String>)],
    ) -> StoreResult<()> {
        // A person listed twice keeps the fields of the last mention (as
        // upserting the list in order would).
        let mut fields: HashMap<&str, String> = HashMap::new();
        for (p, f) in people {
            fields.insert(p, f.join(","));
        }
        let (persons, fields): (Vec<&str>, Vec<String>) = fields.into_iter().unzip();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Decides who leaves on what it reads: two servers rescoping the
        // same incident at once would otherwise each keep the other's
        // additions (READ COMMITTED), leaving a scope neither set.
        lock(&tx, &[Area::Incidents]).await?;
        exec(
            &tx,
            "INSERT INTO incident_people (incident_id, person_id, fields)
             SELECT $1, p, f FROM UNNEST($2::TEXT[], $3::TEXT[]) AS s (p, f)
             ON CONFLICT (incident_id, person_id) DO UPDATE SET fields = excluded.fields",
            &[&id, &persons, &fields],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM incident_people WHERE incident_id = $1 AND notified_at IS NULL
               AND NOT (person_id = ANY($2))",
            &[&id, &persons],
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn incident_people(&self, id: &str) -> StoreResult<Vec<AffectedPerson>> {
        query_all(
            &self.conn().await?,
            "SELECT * FROM incident_people WHERE incident_id = $1 ORDER BY person_id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
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
        })
        .collect()
    }

    async fn mark_notified(
        &self,
        id: &str,
        people: Option<&[String]>,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        // One statement either way (`notified_at IS NULL` decides, row by
        // row, who is marked now), under the incidents' lock so it never
        // deadlocks with a rescoping locking the same rows in another order.
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Incidents]).await?;
        let n = match people {
            None => {
                exec(
                    &tx,
                    "UPDATE incident_people SET notified_at = $1
                     WHERE incident_id = $2 AND notified_at IS NULL",
                    &[&ts(now), &id],
                )
                .await?
            }
            Some(list) => {
                exec(
                    &tx,
                    "UPDATE incident_people SET notified_at = $1
                     WHERE incident_id = $2 AND person_id = ANY($3) AND notified_at IS NULL",
                    &[&ts(now), &id, &list],
                )
                .await?
            }
        };
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}
