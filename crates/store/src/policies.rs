//! Policies and their sealed secrets.

use crate::{col, exec, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{Policy, PolicyKind};
use mamori_ports::{PolicyStore, StoreError, StoreResult};
use rusqlite::{params, Row};

fn policy_from_row(r: &Row<'_>) -> StoreResult<Policy> {
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
impl PolicyStore for SqliteStore {
    async fn insert_policy(&self, p: &Policy, sealed: Option<&[u8]>) -> StoreResult<bool> {
        let (settings, pointers) = (json(&p.settings)?, json(&serde_json::json!(p.secrets))?);
        let platforms = json(&serde_json::json!(p.platforms))?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "INSERT INTO policies (id, name, kind, settings, secret_pointers, sealed_secrets,
                        version, profile_identifier, payload_uuid, profile_uuid, created_at, updated_at,
                        platforms)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT DO NOTHING",
                    params![
                        p.id,
                        p.name,
                        p.kind.as_str(),
                        settings,
                        pointers,
                        sealed,
                        p.version,
                        p.profile_identifier,
                        p.payload_uuid,
                        p.profile_uuid,
                        ts(p.created_at),
                        ts(p.updated_at),
                        platforms
                    ],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn policy(&self, id: &str) -> StoreResult<Option<(Policy, Option<Vec<u8>>)>> {
        self.read(|c| {
            query_opt(c, "SELECT * FROM policies WHERE id = ?", [id], |r| {
                Ok((policy_from_row(r)?, col(r, "sealed_secrets")?))
            })
        })
        .await
    }

    async fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM policies ORDER BY name",
                [],
                policy_from_row,
            )
        })
        .await
    }

    async fn update_policy(
        &self,
        p: &Policy,
        sealed: Option<&[u8]>,
        expected_version: i64,
    ) -> StoreResult<bool> {
        let (settings, pointers) = (json(&p.settings)?, json(&serde_json::json!(p.secrets))?);
        let platforms = json(&serde_json::json!(p.platforms))?;
        let n = self
            .write(|c| {
                // A taken name fails the UNIQUE constraint: reported as "not
                // updated" rather than an error.
                let taken = query_opt(
                    c,
                    "SELECT 1 AS one FROM policies WHERE name = ? AND id <> ?",
                    params![p.name, p.id],
                    |_| Ok(()),
                )?
                .is_some();
                if taken {
                    return Ok(0);
                }
                exec(
                    c,
                    "UPDATE policies SET name = ?, settings = ?, secret_pointers = ?,
                        sealed_secrets = ?, version = ?, profile_uuid = ?, updated_at = ?,
                        platforms = ?
                     WHERE id = ? AND version = ?",
                    params![
                        p.name,
                        settings,
                        pointers,
                        sealed,
                        p.version,
                        p.profile_uuid,
                        ts(p.updated_at),
                        platforms,
                        p.id,
                        expected_version
                    ],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn delete_policy(&self, id: &str) -> StoreResult<bool> {
        let n = self
            .write(|c| exec(c, "DELETE FROM policies WHERE id = ?", [id]))
            .await?;
        Ok(n == 1)
    }
}
