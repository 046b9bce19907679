//! Administrator API tokens: `mamori_<id>_<secret>`. The secret is 256 random
//! bits shown once; only its SHA-256 is stored (a slow hash adds nothing for
//! a secret with that much entropy), compared in constant time.

use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{ApiToken, TokenId};
use time::Duration;

/// Who is calling the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token identifier.
    pub token_id: TokenId,
    /// Token name.
    pub name: String,
    /// Role.
    pub role: String,
}

/// Roles a token may carry. Administrator accounts and finer permissions
/// build on these.
pub const ROLES: &[&str] = &[
    "viewer",
    "helpdesk",
    "device_admin",
    "security_officer",
    "owner",
];

impl Services {
    /// Creates a token; returns its record and the secret text (shown once).
    pub async fn create_token(
        &self,
        name: &str,
        role: &str,
        ttl_days: Option<u32>,
    ) -> CoreResult<(ApiToken, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(CoreError::BadRequest(
                "token name must be 1-100 printable characters".into(),
            ));
        }
        if !ROLES.contains(&role) {
            return Err(CoreError::BadRequest(format!("unknown role {role}")));
        }
        let days = ttl_days.unwrap_or(self.config.token_ttl_days);
        if days == 0 || days > 3650 {
            return Err(CoreError::BadRequest("ttl must be 1-3650 days".into()));
        }
        let id = TokenId::parse(&hex::encode(mamori_crypto::random_bytes(8)))
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(mamori_crypto::random_bytes(32));
        let now = self.clock.now();
        let token = ApiToken {
            id: id.clone(),
            name: name.to_owned(),
            role: role.to_owned(),
            created_at: now,
            expires_at: now + Duration::days(i64::from(days)),
            last_used_at: None,
            revoked_at: None,
        };
        self.store
            .insert_token(&token, &mamori_crypto::sha256_hex(secret.as_bytes()))
            .await?;
        tracing::info!(token = %id, role, "API token created");
        Ok((token, format!("mamori_{id}_{secret}")))
    }

    /// Checks a bearer token. Every failure looks the same to the caller.
    pub async fn authenticate_token(&self, bearer: &str) -> CoreResult<Principal> {
        let Some((id, secret)) = bearer
            .strip_prefix("mamori_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Err(CoreError::Unauthorized);
        };
        let Ok(id) = TokenId::parse(id) else {
            return Err(CoreError::Unauthorized);
        };
        let presented = mamori_crypto::sha256_hex(secret.as_bytes());
        let Some((token, stored)) = self.store.token(&id).await? else {
            tracing::warn!(token = %id, "unknown API token");
            return Err(CoreError::Unauthorized);
        };
        if !mamori_crypto::constant_time_eq(presented.as_bytes(), stored.as_bytes()) {
            tracing::warn!(token = %id, "API token secret mismatch");
            return Err(CoreError::Unauthorized);
        }
        let now = self.clock.now();
        if token.revoked_at.is_some() || token.expires_at <= now {
            tracing::warn!(token = %id, "revoked or expired API token used");
            return Err(CoreError::Unauthorized);
        }
        let stale = token
            .last_used_at
            .is_none_or(|t| now - t > Duration::minutes(1));
        if stale {
            self.store.touch_token(&id, now).await?;
        }
        Ok(Principal {
            token_id: id,
            name: token.name,
            role: token.role,
        })
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, id: &str) -> CoreResult<()> {
        let id = TokenId::parse(id).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        if self.store.revoke_token(&id, self.clock.now()).await? {
            tracing::info!(token = %id, "API token revoked");
            Ok(())
        } else {
            Err(CoreError::NotFound("no such active token".into()))
        }
    }
}
