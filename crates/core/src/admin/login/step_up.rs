//! Step-up: a fresh second factor before a dangerous action.

use super::*;
use crate::access::{AdminActor, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome, SessionId};

impl Services {
    /// Re-authentication with password and TOTP code (roles that require
    /// WebAuthn must use [`Self::step_up_webauthn_finish`]).
    pub async fn step_up_totp(
        &self,
        actor: &AdminActor,
        password: &str,
        code: &str,
        ctx: &ClientContext,
    ) -> CoreResult<()> {
        let session = full_session(actor)?;
        let admin = self.fresh_admin(actor).await?;
        self.second_factor_gate(&admin)?;
        if self.config.auth.requires_webauthn(admin.role) {
            return Err(CoreError::Forbidden(
                "this role re-authenticates with a passkey or security key".into(),
            ));
        }
        let creds = self.credentials_of(&admin).await?;
        let ok = verify_password(password, Some(creds.password_hash)).await?
            && self.check_totp(&admin, code).await?;
        if !ok {
            self.factor_failure(
                &admin,
                ctx,
                AuditAction::AuthStepUp,
                "wrong password or code",
            )
            .await?;
            return Err(CoreError::InvalidCredentials);
        }
        self.stepped_up(actor, ctx, &session.id, &admin, "totp")
            .await
    }

    /// Re-authentication with WebAuthn, part one.
    pub async fn step_up_webauthn_start(
        &self,
        actor: &AdminActor,
    ) -> CoreResult<serde_json::Value> {
        let session = full_session(actor)?;
        self.webauthn_challenge(actor, &session.id).await
    }

    /// Re-authentication with WebAuthn, part two.
    pub async fn step_up_webauthn_finish(
        &self,
        actor: &AdminActor,
        credential: &serde_json::Value,
        ctx: &ClientContext,
    ) -> CoreResult<()> {
        let session = full_session(actor)?;
        let admin = self.fresh_admin(actor).await?;
        self.second_factor_gate(&admin)?;
        if let Err(problem) = self
            .webauthn_verify(&admin, &session.id, credential)
            .await?
        {
            self.factor_failure(&admin, ctx, AuditAction::AuthStepUp, problem.code())
                .await?;
            return Err(CoreError::Passkey(problem));
        }
        self.stepped_up(actor, ctx, &session.id, &admin, "webauthn")
            .await
    }

    /// Marks the session stepped up now, and records by which factor.
    async fn stepped_up(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        session: &SessionId,
        admin: &AdminAccount,
        method: &str,
    ) -> CoreResult<()> {
        self.ports
            .admin
            .set_session_step_up(session, self.now())
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthStepUp,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(method),
        )
        .await?;
        Ok(())
    }
}
