//! Administrator API tokens: `mamori_<id>_<secret>`. The secret is 256 random
//! bits shown once; only its SHA-256 is stored (a slow hash adds nothing for
//! a secret with that much entropy), compared in constant time.
//!
//! Every token belongs to an administrator account: it carries a role no
//! stronger than the account's, optionally narrowed to a scope of
//! permissions, an expiry and a last-used time. It dies with the account.

use crate::auth::{Actor, ClientContext, Via};
use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{AdminAccount, ApiToken, Permission, Role, TokenId};
use time::Duration;

/// What a new token should be.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Human name (what uses it).
    pub name: String,
    /// Role; the account's own when absent.
    pub role: Option<String>,
    /// Narrower scope: permission names.
    pub scope: Option<Vec<String>>,
    /// Lifetime in days.
    pub ttl_days: Option<u32>,
}

impl Services {
    /// Creates a token for `owner`; `actor` is the audit label of who asks.
    /// Returns its record and the secret text (shown once).
    pub async fn create_token_for(
        &self,
        actor: &str,
        ctx: &ClientContext,
        owner: &AdminAccount,
        req: &TokenRequest,
    ) -> CoreResult<(ApiToken, String)> {
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(CoreError::BadRequest(
                "token name must be 1-100 printable characters".into(),
            ));
        }
        if owner.disabled_at.is_some() {
            return Err(CoreError::Conflict("the account is disabled".into()));
        }
        let role = match req.role.as_deref() {
            None => owner.role,
            Some(r) => crate::auth::parse_role(r)?,
        };
        if !role.permissions().iter().all(|p| owner.role.allows(*p)) {
            return Err(CoreError::Forbidden(format!(
                "a {} may not create a token with role {role}",
                owner.role
            )));
        }
        let scope = match &req.scope {
            None => None,
            Some(names) => {
                let mut perms = Vec::new();
                for n in names {
                    let p = Permission::parse(n).ok_or_else(|| {
                        CoreError::BadRequest(format!("unknown permission {n:?}"))
                    })?;
                    if !role.allows(p) {
                        return Err(CoreError::BadRequest(format!(
                            "permission {p} is not part of role {role}"
                        )));
                    }
                    if !perms.contains(&p) {
                        perms.push(p);
                    }
                }
                if perms.is_empty() {
                    return Err(CoreError::BadRequest(
                        "a scope names at least one permission".into(),
                    ));
                }
                Some(perms)
            }
        };
        let days = req.ttl_days.unwrap_or(self.config.token_ttl_days);
        if days == 0 || days > 3650 {
            return Err(CoreError::BadRequest("ttl must be 1-3650 days".into()));
        }
        let id = TokenId::parse(&hex::encode(
            mamori_crypto::try_random_bytes(8).map_err(|e| CoreError::Internal(e.to_string()))?,
        ))
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            mamori_crypto::try_random_bytes(32).map_err(|e| CoreError::Internal(e.to_string()))?,
        );
        let now = self.clock.now();
        let token = ApiToken {
            id: id.clone(),
            name: name.to_owned(),
            admin_id: owner.id.clone(),
            role,
            scope,
            created_at: now,
            expires_at: now + Duration::days(i64::from(days)),
            last_used_at: None,
            revoked_at: None,
        };
        self.store
            .insert_token(&token, &mamori_crypto::sha256_hex(secret.as_bytes()))
            .await?;
        self.audit(self.audit_event(
            actor,
            ctx,
            "token.create",
            Some(id.as_str()),
            "success",
            Some(format!("owner={} role={role} days={days}", owner.name)),
        ))
        .await?;
        tracing::info!(token = %id, %role, owner = %owner.name, "API token created");
        Ok((token, format!("mamori_{id}_{secret}")))
    }

    /// Creates a token for the caller's own account: an interactive session
    /// with a recent step-up (a token cannot mint tokens).
    pub async fn create_token(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        req: &TokenRequest,
    ) -> CoreResult<(ApiToken, String)> {
        self.require_step_up(actor)?;
        let owner = self.fresh_admin(actor).await?;
        self.create_token_for(&actor.label(), ctx, &owner, req)
            .await
    }

    /// Checks a bearer token. Every failure looks the same to the caller.
    pub async fn authenticate_token(&self, bearer: &str, ctx: &ClientContext) -> CoreResult<Actor> {
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
            tracing::warn!(token = %id, source = %ctx.source, "unknown API token");
            return Err(CoreError::Unauthorized);
        };
        if !mamori_crypto::constant_time_eq(presented.as_bytes(), stored.as_bytes()) {
            tracing::warn!(token = %id, source = %ctx.source, "API token secret mismatch");
            return Err(CoreError::Unauthorized);
        }
        let now = self.clock.now();
        let admin = self.store.admin(&token.admin_id).await?;
        let dead = token.revoked_at.is_some() || token.expires_at <= now;
        if let Some(owner) = admin.as_ref().filter(|a| a.disabled_at.is_some()) {
            // Detection: someone still holds the token of a closed account
            // (an offboarded insider, or whoever took it).
            tracing::warn!(token = %id, source = %ctx.source, "ALERT: token of a disabled account used");
            self.audit(self.audit_event(
                "system",
                ctx,
                "alert.token_after_offboarding",
                Some(&format!("token:{id}")),
                "alert",
                Some(format!(
                    "severity=high owner={} disabled ({})",
                    owner.name,
                    owner.disabled_reason.as_deref().unwrap_or("no reason given")
                )),
            ))
            .await?;
        }
        let Some(admin) = admin.filter(|a| a.disabled_at.is_none() && !dead) else {
            tracing::warn!(token = %id, source = %ctx.source, "revoked, expired or orphaned API token used");
            self.audit(
                self.audit_event(
                    &format!("token:{id}"),
                    ctx,
                    "auth.token",
                    Some(id.as_str()),
                    "denied",
                    Some(
                        if dead {
                            "revoked or expired token"
                        } else {
                            "owner disabled"
                        }
                        .into(),
                    ),
                ),
            )
            .await?;
            return Err(CoreError::Unauthorized);
        };
        let stale = token
            .last_used_at
            .is_none_or(|t| now - t > Duration::minutes(1));
        if stale {
            self.store.touch_token(&id, now).await?;
        }
        Ok(Actor {
            admin,
            via: Via::Token(token),
        })
    }

    /// Tokens the caller may see: their own; every token with `all` when
    /// they manage accounts.
    pub async fn list_tokens(&self, actor: &Actor, all: bool) -> CoreResult<Vec<ApiToken>> {
        if all {
            if !actor.allows(Permission::AccountsManage) {
                return Err(CoreError::Forbidden(
                    "listing every token needs accounts_manage".into(),
                ));
            }
            return Ok(self.store.list_tokens(None).await?);
        }
        Ok(self.store.list_tokens(Some(&actor.admin.id)).await?)
    }

    /// Revokes a token: one's own, or any with the accounts permission.
    pub async fn revoke_token(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<()> {
        let id = TokenId::parse(id).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let Some((token, _)) = self.store.token(&id).await? else {
            return Err(CoreError::NotFound("no such active token".into()));
        };
        if token.admin_id != actor.admin.id && !actor.allows(Permission::AccountsManage) {
            return Err(CoreError::NotFound("no such active token".into()));
        }
        self.revoke_token_as(&actor.label(), ctx, &id).await
    }

    /// Revokes a token by ID (CLI and the service itself).
    pub async fn revoke_token_as(
        &self,
        actor: &str,
        ctx: &ClientContext,
        id: &TokenId,
    ) -> CoreResult<()> {
        if self.store.revoke_token(id, self.clock.now()).await? {
            self.audit(self.audit_event(
                actor,
                ctx,
                "token.revoke",
                Some(id.as_str()),
                "success",
                None,
            ))
            .await?;
            tracing::info!(token = %id, "API token revoked");
            Ok(())
        } else {
            Err(CoreError::NotFound("no such active token".into()))
        }
    }
}

/// Roles, for help texts.
pub fn role_names() -> Vec<&'static str> {
    Role::ALL.iter().map(|r| r.as_str()).collect()
}
