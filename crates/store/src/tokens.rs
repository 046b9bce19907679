//! API tokens and sealed secrets.

use crate::{db, from_opt_ts, from_ts, ts, SqliteStore};
use async_trait::async_trait;
use mamori_core::ports::{SecretStore, StoreError, StoreResult, TokenStore};
use mamori_domain::{ApiToken, TokenId};
use sqlx::Row;
use time::OffsetDateTime;

fn token_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<ApiToken> {
    let id: String = r.try_get("id").map_err(db)?;
    Ok(ApiToken {
        id: TokenId::parse(&id).map_err(|e| StoreError(e.to_string()))?,
        name: r.try_get("name").map_err(db)?,
        role: r.try_get("role").map_err(db)?,
        created_at: from_ts(r.try_get("created_at").map_err(db)?)?,
        expires_at: from_ts(r.try_get("expires_at").map_err(db)?)?,
        last_used_at: from_opt_ts(r.try_get("last_used_at").map_err(db)?)?,
        revoked_at: from_opt_ts(r.try_get("revoked_at").map_err(db)?)?,
    })
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, t: &ApiToken, secret_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, secret_hash, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(t.id.as_str())
        .bind(&t.name)
        .bind(&t.role)
        .bind(secret_hash)
        .bind(ts(t.created_at))
        .bind(ts(t.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn token(&self, id: &TokenId) -> StoreResult<Option<(ApiToken, String)>> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some((
            token_from_row(&r)?,
            r.try_get("secret_hash").map_err(db)?,
        )))
    }

    async fn touch_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(ts(now))
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn revoke_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<bool> {
        let res =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(ts(now))
                .bind(id.as_str())
                .execute(&self.pool)
                .await
                .map_err(db)?;
        Ok(res.rows_affected() == 1)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(token_from_row).collect()
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn put_secret(&self, name: &str, sealed: &[u8], now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO secrets (name, sealed, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(sealed)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT sealed FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| r.try_get::<Vec<u8>, _>("sealed").map_err(db))
            .transpose()
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<bool> {
        let res = sqlx::query("DELETE FROM secrets WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(res.rows_affected() == 1)
    }
}
