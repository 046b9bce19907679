//! Sessions: checked on every request, rotated, listed and revoked by
//! their owner, ended by logout.

use super::*;
use crate::access::{AdminActor, ClientContext, Via};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, AdminSession, SessionId, SessionStage};
use mamori_domain::{AuditAction, Outcome};
use time::OffsetDateTime;

pub(super) fn second_factor_session(actor: &AdminActor) -> CoreResult<&AdminSession> {
    match &actor.via {
        Via::Session(s) if s.stage == SessionStage::SecondFactor => Ok(s),
        _ => Err(CoreError::Conflict(
            "no login is waiting for a second factor".into(),
        )),
    }
}

pub(super) fn full_session(actor: &AdminActor) -> CoreResult<&AdminSession> {
    match &actor.via {
        Via::Session(s) if s.stage == SessionStage::Full => Ok(s),
        _ => Err(CoreError::Forbidden(
            "re-authentication happens in a logged-in session".into(),
        )),
    }
}

impl Services {
    /// Checks a session cookie on a request: known, unrevoked, within its
    /// idle and absolute limits, from the same client, account enabled.
    pub async fn authenticate_session(
        &self,
        secret: &str,
        ctx: &ClientContext,
    ) -> CoreResult<AdminActor> {
        let now = self.now();
        let hash = mamori_crypto::sha256_hex(secret.as_bytes());
        let Some(session) = self.ports.admin.session_by_secret(&hash).await? else {
            tracing::warn!(source = %ctx.source, "unknown session cookie");
            return Err(CoreError::Unauthorized);
        };
        if session.revoked_at.is_some() {
            tracing::warn!(session = %session.id, source = %ctx.source, "revoked session used");
            // A disabled account's sessions were revoked with it: someone
            // still holds one (an offboarded insider, or whoever took it).
            // Recorded at once, then once a minute (auth/dead.rs).
            let owner = self.ports.admin.admin(&session.admin_id).await?;
            if let Some(owner) = owner.filter(|a| a.disabled_at.is_some()) {
                self.alert_after_offboarding(
                    ctx,
                    AuditAction::AlertSessionAfterOffboarding,
                    &format!("session:{}", session.id),
                    &owner,
                )
                .await?;
            }
            self.audit_dead_use(
                self.audit_record("anonymous", ctx, AuditAction::AuthSession, Outcome::Denied)
                    .target(session.id.as_str())
                    .detail("revoked session")
                    .event(),
            )
            .await?;
            return Err(CoreError::Unauthorized);
        }
        if now >= session.expires_at || now - session.last_seen_at > self.config.auth.session_idle {
            tracing::info!(session = %session.id, "session expired");
            return Err(CoreError::Unauthorized);
        }
        let moved = self.config.auth.bind_session_to_source && session.source != ctx.source;
        if moved || session.client_hash != ctx.client_hash() {
            // A session cookie showing up elsewhere is treated as stolen.
            self.ports
                .admin
                .revoke_session(&session.admin_id, &session.id, now)
                .await?;
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthSession, Outcome::Denied)
                    .target(session.id.as_str())
                    .detail(if moved {
                        "session used from another address; revoked"
                    } else {
                        "session used by another client; revoked"
                    }),
            )
            .await?;
            return Err(CoreError::Unauthorized);
        }
        let Some(admin) = self.ports.admin.admin(&session.admin_id).await? else {
            return Err(CoreError::Unauthorized);
        };
        if !Self::account_open(&admin) {
            return Err(CoreError::Unauthorized);
        }
        if now - session.last_seen_at > TOUCH_EVERY {
            self.ports.admin.touch_session(&session.id, now).await?;
        }
        Ok(AdminActor {
            admin,
            via: Via::Session(session),
        })
    }

    /// Ends the caller's session.
    pub async fn logout(&self, actor: &AdminActor, ctx: &ClientContext) -> CoreResult<()> {
        let Via::Session(s) = &actor.via else {
            return Err(CoreError::BadRequest(
                "logout ends a session; revoke tokens instead".into(),
            ));
        };
        self.ports
            .admin
            .revoke_session(&actor.admin.id, &s.id, self.now())
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthLogout,
                Outcome::Success,
            )
            .target(s.id.as_str()),
        )
        .await?;
        Ok(())
    }

    /// The caller's live sessions.
    pub async fn own_sessions(&self, actor: &AdminActor) -> CoreResult<Vec<AdminSession>> {
        Ok(self
            .ports
            .admin
            .list_sessions(&actor.admin.id, self.now())
            .await?)
    }

    /// Revokes one of the caller's sessions.
    pub async fn revoke_own_session(
        &self,
        actor: &AdminActor,
        id: &str,
        ctx: &ClientContext,
    ) -> CoreResult<()> {
        let id = SessionId::parse(id).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        if !self
            .ports
            .admin
            .revoke_session(&actor.admin.id, &id, self.now())
            .await?
        {
            return Err(CoreError::NotFound("no such live session".into()));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthSessionRevoke,
                Outcome::Success,
            )
            .target(id.as_str()),
        )
        .await?;
        Ok(())
    }

    /// Revokes all of the caller's sessions (including the current one).
    pub async fn revoke_own_sessions(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
    ) -> CoreResult<u64> {
        let n = self
            .ports
            .admin
            .revoke_admin_sessions(&actor.admin.id, None, self.now())
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthSessionRevokeAll,
                Outcome::Success,
            )
            .target(&actor.admin.name)
            .detail(format!("revoked={n}")),
        )
        .await?;
        Ok(n)
    }

    /// Replaces `old` with a new session at `stage`.
    pub(super) async fn rotate(
        &self,
        admin: &AdminAccount,
        old: &AdminSession,
        stage: SessionStage,
        ctx: &ClientContext,
    ) -> CoreResult<(AdminSession, SessionCookie)> {
        self.ports
            .admin
            .revoke_session(&admin.id, &old.id, self.now())
            .await?;
        let step_up = (stage == SessionStage::Full).then(|| self.now());
        self.open_session(admin, stage, ctx, step_up).await
    }

    /// Stores a new session and makes its cookie.
    pub(super) async fn open_session(
        &self,
        admin: &AdminAccount,
        stage: SessionStage,
        ctx: &ClientContext,
        step_up_at: Option<OffsetDateTime>,
    ) -> CoreResult<(AdminSession, SessionCookie)> {
        let now = self.now();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            mamori_crypto::try_random_bytes(32).map_err(|e| CoreError::Internal(e.into()))?,
        );
        let lifetime = if stage == SessionStage::Full {
            self.config.auth.session_absolute
        } else {
            PARTIAL_SESSION
        };
        let session = AdminSession {
            id: SessionId::parse(&hex::encode(
                mamori_crypto::try_random_bytes(16).map_err(|e| CoreError::Internal(e.into()))?,
            ))
            .map_err(|e| CoreError::Internal(e.into()))?,
            admin_id: admin.id.clone(),
            stage,
            created_at: now,
            last_seen_at: now,
            expires_at: now + lifetime,
            source: ctx.source.clone(),
            client_hash: ctx.client_hash(),
            step_up_at,
            revoked_at: None,
        };
        self.ports
            .admin
            .insert_session(&session, &mamori_crypto::sha256_hex(secret.as_bytes()))
            .await?;
        let cookie = SessionCookie {
            csrf_token: self.auth.csrf_token(&secret),
            secret,
            expires_at: session.expires_at,
        };
        Ok((session, cookie))
    }

    /// The account as stored now (a request's copy may be seconds old).
    pub(crate) async fn fresh_admin(&self, actor: &AdminActor) -> CoreResult<AdminAccount> {
        let admin = self
            .ports
            .admin
            .admin(&actor.admin.id)
            .await?
            .ok_or(CoreError::Unauthorized)?;
        if !Self::account_usable(&admin) {
            return Err(CoreError::InvalidCredentials);
        }
        Ok(admin)
    }
}
