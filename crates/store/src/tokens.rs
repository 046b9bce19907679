//! API tokens and sealed secrets.

use crate::{col, exec, from_opt_ts, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{AdminId, ApiToken, Permission, Role, TokenId};
use mamori_ports::{SecretStore, StoreError, StoreResult, TokenStore};
use rusqlite::{params, Row};
use time::OffsetDateTime;

fn token_from_row(r: &Row<'_>) -> StoreResult<ApiToken> {
    let id: String = col(r, "id")?;
    let admin_id: String = col(r, "admin_id")?;
    let role: String = col(r, "role")?;
    Ok(ApiToken {
        id: TokenId::parse(&id).map_err(StoreError::from_cause)?,
        name: col(r, "name")?,
        admin_id: AdminId::parse(&admin_id).map_err(StoreError::from_cause)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::new(format!("unknown role {role:?}")))?,
        scope: scope_from_col(col(r, "scope")?)?,
        created_at: from_ts(col(r, "created_at")?)?,
        expires_at: from_ts(col(r, "expires_at")?)?,
        last_used_at: from_opt_ts(col(r, "last_used_at")?)?,
        revoked_at: from_opt_ts(col(r, "revoked_at")?)?,
    })
}

/// A scope as stored: a JSON array of permission names.
fn scope_to_col(scope: Option<&[Permission]>) -> StoreResult<Option<String>> {
    scope
        .map(|s| {
            let names: Vec<&str> = s.iter().map(|p| p.as_str()).collect();
            serde_json::to_string(&names).map_err(StoreError::from_cause)
        })
        .transpose()
}

/// Parses a stored scope; an unknown permission name is an error.
fn scope_from_col(v: Option<String>) -> StoreResult<Option<Vec<Permission>>> {
    v.map(|s| {
        let names: Vec<String> = serde_json::from_str(&s).map_err(StoreError::from_cause)?;
        names
            .iter()
            .map(|n| {
                Permission::parse(n)
                    .ok_or_else(|| StoreError::new(format!("unknown permission {n:?}")))
            })
            .collect()
    })
    .transpose()
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, t: &ApiToken, secret_hash: &str) -> StoreResult<()> {
        let scope = scope_to_col(t.scope.as_deref())?;
        self.write(|c| {
            exec(
                c,
                "INSERT INTO api_tokens
                 (id, name, admin_id, role, scope, secret_hash, created_at, expires_at, last_used_at, revoked_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    t.id.as_str(),
                    t.name,
                    t.admin_id.as_str(),
                    t.role.as_str(),
                    scope,
                    secret_hash,
                    ts(t.created_at),
                    ts(t.expires_at),
                    t.last_used_at.map(ts),
                    t.revoked_at.map(ts)
                ],
            )
        })
        .await?;
        Ok(())
    }

    async fn token(&self, id: &TokenId) -> StoreResult<Option<(ApiToken, String)>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT * FROM api_tokens WHERE id = ?",
                [id.as_str()],
                |r| Ok((token_from_row(r)?, col(r, "secret_hash")?)),
            )
        })
        .await
    }

    async fn touch_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                params![ts(now), id.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn revoke_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    params![ts(now), id.as_str()],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn list_tokens(&self, admin: Option<&AdminId>) -> StoreResult<Vec<ApiToken>> {
        self.read(|c| match admin {
            None => query_all(
                c,
                "SELECT * FROM api_tokens ORDER BY created_at, id",
                [],
                token_from_row,
            ),
            Some(a) => query_all(
                c,
                "SELECT * FROM api_tokens WHERE admin_id = ? ORDER BY created_at, id",
                [a.as_str()],
                token_from_row,
            ),
        })
        .await
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn put_secret(&self, name: &str, sealed: &[u8], now: OffsetDateTime) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO secrets (name, sealed, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                params![name, sealed, ts(now)],
            )
        })
        .await?;
        Ok(())
    }

    async fn put_secret_if_absent(
        &self,
        name: &str,
        sealed: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "INSERT INTO secrets (name, sealed, updated_at) VALUES (?, ?, ?)
                     ON CONFLICT (name) DO NOTHING",
                    params![name, sealed, ts(now)],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT sealed FROM secrets WHERE name = ?",
                [name],
                |r| col::<Vec<u8>>(r, "sealed"),
            )
        })
        .await
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<bool> {
        let n = self
            .write(|c| exec(c, "DELETE FROM secrets WHERE name = ?", [name]))
            .await?;
        Ok(n == 1)
    }
}
