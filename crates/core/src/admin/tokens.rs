//! Administrator API tokens: `mamori_<id>_<secret>`. The secret is 256 random
//! bits shown once; only its SHA-256 is stored (a slow hash adds nothing for
//! a secret with that much entropy), compared in constant time.
//!
//! Every token belongs to an administrator account: it carries a role no
//! stronger than the account's, optionally narrowed to a scope of
//! permissions, an expiry and a last-used time. It dies with the account,
//! and it is issued only to an account that finished its first-login setup
//! (no token for an account nobody has logged in to, whoever asks: not even
//! `mamori token create` on the host).

use crate::access::permit::TokensOwn;
use crate::access::Authorized;
use crate::access::{Actor, AdminActor, ClientContext, Via};
use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{AdminAccount, ApiToken, Permission, Role, TokenId};
use mamori_domain::{AuditAction, Outcome};
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
    /// Creates a token for `owner`; returns its record and the secret text
    /// (shown once). An administrator creates tokens for their own account
    /// only, from an interactive session with a recent step-up (a token
    /// cannot mint tokens); the host's command line for any account.
    pub async fn create_token(
        &self,
        proof: &Authorized<TokensOwn>,
        ctx: &ClientContext,
        owner: &AdminAccount,
        req: &TokenRequest,
    ) -> CoreResult<(ApiToken, String)> {
        let actor = proof.actor();
        let fresh;
        let owner = match actor.admin() {
            Some(by) => {
                self.require_step_up(by)?;
                if by.admin.id != owner.id {
                    return Err(CoreError::Forbidden(
                        "an administrator creates tokens for their own account only".into(),
                    ));
                }
                fresh = self.fresh_admin(by).await?;
                &fresh
            }
            None => {
                actor.host_only()?;
                owner
            }
        };
        let name = token_name(&req.name)?;
        self.may_hold_a_token(actor, ctx, owner).await?;
        let (role, scope) = token_role_and_scope(owner, req)?;
        let days = req.ttl_days.unwrap_or(self.config.token_ttl_days);
        if days == 0 || days > 3650 {
            return Err(CoreError::BadRequest("ttl must be 1-3650 days".into()));
        }
        let (id, secret) = new_token_secret()?;
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
        self.ports
            .admin
            .insert_token(&token, &mamori_crypto::sha256_hex(secret.as_bytes()))
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::TokenCreate,
                Outcome::Success,
            )
            .target(id.as_str())
            .detail(format!("owner={} role={role} days={days}", owner.name)),
        )
        .await?;
        tracing::info!(token = %id, %role, owner = %owner.name, "API token created");
        Ok((token, format!("mamori_{id}_{secret}")))
    }

    /// Whether `admin` finished the first-login setup: the one-time password
    /// replaced and a second factor enrolled that its role accepts (a usable
    /// WebAuthn credential, or TOTP where the role does not require
    /// WebAuthn). The same rule as the setup requirements of a login
    /// (`requirements` in `auth/login.rs`), for an account outside a session.
    pub(crate) async fn setup_complete(&self, admin: &AdminAccount) -> CoreResult<bool> {
        if admin.must_change_password {
            return Ok(false);
        }
        let has_webauthn = !self.usable_credentials(admin).await?.is_empty();
        Ok(
            has_webauthn
                || (admin.totp_enrolled && !self.config.auth.requires_webauthn(admin.role)),
        )
    }

    /// Checks a bearer token. Every failure looks the same to the caller.
    pub async fn authenticate_token(
        &self,
        bearer: &str,
        ctx: &ClientContext,
    ) -> CoreResult<AdminActor> {
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
        let Some((token, stored)) = self.ports.admin.token(&id).await? else {
            tracing::warn!(token = %id, source = %ctx.source, "unknown API token");
            return Err(CoreError::Unauthorized);
        };
        if !mamori_crypto::constant_time_eq(presented.as_bytes(), stored.as_bytes()) {
            tracing::warn!(token = %id, source = %ctx.source, "API token secret mismatch");
            return Err(CoreError::Unauthorized);
        }
        let now = self.clock.now();
        let admin = self.ports.admin.admin(&token.admin_id).await?;
        let dead = token.revoked_at.is_some() || token.expires_at <= now;
        if let Some(owner) = admin.as_ref().filter(|a| a.disabled_at.is_some()) {
            // Detection: someone still holds the token of a closed account
            // (an offboarded insider, or whoever took it). Recorded at once,
            // then once a minute (auth/dead.rs).
            self.alert_after_offboarding(
                ctx,
                AuditAction::AlertTokenAfterOffboarding,
                &format!("token:{id}"),
                owner,
            )
            .await?;
        }
        let Some(admin) = admin.filter(|a| Self::account_open(a) && !dead) else {
            tracing::warn!(token = %id, source = %ctx.source, "revoked, expired or orphaned API token used");
            self.audit_dead_use(
                self.audit_record(
                    &format!("token:{id}"),
                    ctx,
                    AuditAction::AuthToken,
                    Outcome::Denied,
                )
                .target(id.as_str())
                .detail(if dead {
                    "revoked or expired token"
                } else {
                    "owner disabled or suspended"
                })
                .event(),
            )
            .await?;
            return Err(CoreError::Unauthorized);
        };
        let stale = token
            .last_used_at
            .is_none_or(|t| now - t > Duration::minutes(1));
        if stale {
            self.ports.admin.touch_token(&id, now).await?;
        }
        Ok(AdminActor {
            admin,
            via: Via::Token(token),
        })
    }

    /// Tokens the caller may see: their own; every token with `all` when
    /// they manage accounts.
    pub async fn list_tokens(
        &self,
        by: &Authorized<TokensOwn>,
        all: bool,
    ) -> CoreResult<Vec<ApiToken>> {
        // The host's command line sees every token.
        let Some(actor) = by.admin() else {
            by.actor().host_only()?;
            return Ok(self.ports.admin.list_tokens(None).await?);
        };
        if all {
            if !actor.allows(Permission::AccountsManage) {
                return Err(CoreError::Forbidden(
                    "listing every token needs accounts_manage".into(),
                ));
            }
            return Ok(self.ports.admin.list_tokens(None).await?);
        }
        Ok(self.ports.admin.list_tokens(Some(&actor.admin.id)).await?)
    }

    /// Revokes a token: an administrator their own, or any with the
    /// accounts permission; the host's command line any.
    pub async fn revoke_token(
        &self,
        proof: &Authorized<TokensOwn>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<()> {
        let actor = proof.actor();
        let id = TokenId::parse(id).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        if let Some(by) = actor.admin() {
            let Some((token, _)) = self.ports.admin.token(&id).await? else {
                return Err(CoreError::NotFound("no such active token".into()));
            };
            if token.admin_id != by.admin.id && !by.allows(Permission::AccountsManage) {
                return Err(CoreError::NotFound("no such active token".into()));
            }
        } else {
            actor.host_only()?;
        }
        if self.ports.admin.revoke_token(&id, self.clock.now()).await? {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::TokenRevoke,
                    Outcome::Success,
                )
                .target(id.as_str()),
            )
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

impl Services {
    /// Whether `owner` may hold a new token: enabled, not suspended, and
    /// set up (a refusal for an unfinished account is recorded).
    async fn may_hold_a_token(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        owner: &AdminAccount,
    ) -> CoreResult<()> {
        if owner.disabled_at.is_some() {
            return Err(CoreError::Conflict("the account is disabled".into()));
        }
        if owner.suspended.is_some() {
            return Err(CoreError::Conflict(
                "the account is suspended until another administrator reinstates it".into(),
            ));
        }
        if !self.setup_complete(owner).await? {
            // Minting a working credential for an account nobody has logged
            // in to is how an unused account becomes a backdoor: refused,
            // and the attempt recorded.
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::TokenCreate,
                    Outcome::Denied,
                )
                .detail(format!("owner={} has not finished setup", owner.name)),
            )
            .await?;
            return Err(CoreError::Conflict(format!(
                "{} has not finished setting up the account (first login: new password and a second factor); a token is issued only after that",
                owner.name
            )));
        }
        Ok(())
    }
}

/// A token's name: trimmed, 1-100 printable characters.
fn token_name(name: &str) -> CoreResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CoreError::BadRequest(
            "token name must be 1-100 printable characters".into(),
        ));
    }
    Ok(name)
}

/// The role and scope a new token asks for: never more than its owner's
/// role allows; a scope names at least one permission of the role.
fn token_role_and_scope(
    owner: &AdminAccount,
    req: &TokenRequest,
) -> CoreResult<(Role, Option<Vec<Permission>>)> {
    let role = match req.role.as_deref() {
        None => owner.role,
        Some(r) => crate::admin::parse_role(r)?,
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
                let p = Permission::parse(n)
                    .ok_or_else(|| CoreError::BadRequest(format!("unknown permission {n:?}")))?;
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
    Ok((role, scope))
}

/// A fresh token ID and secret.
fn new_token_secret() -> CoreResult<(TokenId, String)> {
    let id = TokenId::parse(&hex::encode(
        mamori_crypto::try_random_bytes(8).map_err(|e| CoreError::Internal(e.into()))?,
    ))
    .map_err(|e| CoreError::Internal(e.into()))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mamori_crypto::try_random_bytes(32).map_err(|e| CoreError::Internal(e.into()))?);
    Ok((id, secret))
}
