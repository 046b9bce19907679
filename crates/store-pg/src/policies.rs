//! Policies and their sealed secrets.

use crate::{col, exec, from_ts, is_unique_violation, query_all, query_opt, ts, PgStore};
use async_trait::async_trait;
use mamori_domain::{Policy, PolicyKind};
use mamori_ports::{PolicyStore, StoreError, StoreResult};
use tokio_postgres::Row;

fn policy_from_row(r: &Row) -> StoreResult<Policy> {
    let kind: String = col(r, "kind")?;
    let settings: String = col(r, "settings")?;
    let pointers: String = col(r, "secret_pointers")?;
    Ok(Policy {
        id: col(r, "id")?,
        name: col(r, "name")?,
        kind: PolicyKind::parse(&kind)
            .ok_or_else(|| StoreError::new(format!("unknown policy kind {kind:?}")))?,
        settings: serde_json::from_str(&settings).map_err(StoreError::from_cause)?,
        secrets: serde_json::from_str(&pointers).map_err(StoreError::from_cause)?,
        platforms: serde_json::from_str(&col::<String>(r, "platforms")?)
            .map_err(StoreError::from_cause)?,
        version: col(r, "version")?,
        profile_identifier: col(r, "profile_identifier")?,
        payload_uuid: col(r, "payload_uuid")?,
        profile_uuid: col(r, "profile_uuid")?,
        created_at: from_ts(col(r, "created_at")?)?,
        updated_at: from_ts(col(r, "updated_at")?)?,
    })
}

fn json(v: &serde_json::Value) -> StoreResult<String> {
    serde_json::to_string(v).map_err(StoreError::from_cause)
}

#[async_trait]
impl PolicyStore for PgStore {
    async fn insert_policy(&self, p: &Policy, sealed: Option<&[u8]>) -> StoreResult<bool> {
        let (settings, pointers) = (json(&p.settings)?, json(&serde_json::json!(p.secrets))?);
        let platforms = json(&serde_json::json!(p.platforms))?;
        let c = self.conn().await?;
        // Atomic: a taken ID or name inserts nothing (false), whichever
        // server got there first.
        let n = exec(
            &c,
            "INSERT INTO policies (id, name, kind, settings, secret_pointers, sealed_secrets,
                version, profile_identifier, payload_uuid, profile_uuid, created_at, updated_at,
                platforms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT DO NOTHING",
            &[
                &p.id,
                &p.name,
                &p.kind.as_str(),
                &settings,
                &pointers,
                &sealed,
                &p.version,
                &p.profile_identifier,
                &p.payload_uuid,
                &p.profile_uuid,
                &ts(p.created_at),
                &ts(p.updated_at),
                &platforms,
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn policy(&self, id: &str) -> StoreResult<Option<(Policy, Option<Vec<u8>>)>> {
        let c = self.conn().await?;
        query_opt(&c, "SELECT * FROM policies WHERE id = $1", &[&id])
            .await?
            .map(|r| Ok((policy_from_row(&r)?, col(&r, "sealed_secrets")?)))
            .transpose()
    }

    async fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        let c = self.conn().await?;
        query_all(&c, "SELECT * FROM policies ORDER BY name", &[])
            .await?
            .iter()
            .map(policy_from_row)
            .collect()
    }

    async fn update_policy(
        &self,
        p: &Policy,
        sealed: Option<&[u8]>,
        expected_version: i64,
    ) -> StoreResult<bool> {
        let (settings, pointers) = (json(&p.settings)?, json(&serde_json::json!(p.secrets))?);
        let platforms = json(&serde_json::json!(p.platforms))?;
        let c = self.conn().await?;
        // One statement, no separate check: the version guard makes it
        // atomic, and a name another policy holds (or takes meanwhile,
        // on another server) fails the UNIQUE constraint, reported as "not
        // updated" rather than an error. The statement only fails so when
        // it would have changed the row, exactly when SQLite's check
        // returned "taken" before an update that would have changed it.
        let updated = exec(
            &c,
            "UPDATE policies SET name = $1, settings = $2, secret_pointers = $3,
                sealed_secrets = $4, version = $5, profile_uuid = $6, updated_at = $7,
                platforms = $8
             WHERE id = $9 AND version = $10",
            &[
                &p.name,
                &settings,
                &pointers,
                &sealed,
                &p.version,
                &p.profile_uuid,
                &ts(p.updated_at),
                &platforms,
                &p.id,
                &expected_version,
            ],
        )
        .await;
        match updated {
            Ok(n) => Ok(n == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete_policy(&self, id: &str) -> StoreResult<bool> {
        let c = self.conn().await?;
        let n = exec(&c, "DELETE FROM policies WHERE id = $1", &[&id]).await?;
        Ok(n == 1)
    }
}
