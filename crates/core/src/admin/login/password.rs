//! Password changes, and finishing an account's setup (first password,
//! factors the role requires).

use super::super::accounts::{hash_password, verify_password};
use super::*;
use crate::access::{AdminActor, ClientContext, Via};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, AdminSession, SessionStage};
use mamori_domain::{AuditAction, Outcome};

impl Services {
    /// Changes the caller's password (current one required). Other sessions
    /// end. In a setup session this may complete the setup, which returns a
    /// new, full session.
    pub async fn change_password(
        &self,
        actor: &AdminActor,
        current: &str,
        new: &str,
        ctx: &ClientContext,
    ) -> CoreResult<Option<(LoginOutcome, SessionCookie)>> {
        let Via::Session(session) = &actor.via else {
            return Err(CoreError::Forbidden(
                "passwords are changed in a session".into(),
            ));
        };
        if session.stage == SessionStage::SecondFactor {
            return Err(CoreError::Forbidden("finish the login first".into()));
        }
        if session.stage == SessionStage::Recovery {
            return Err(CoreError::Forbidden(
                "a recovery session cannot change the password".into(),
            ));
        }
        if session.stage == SessionStage::Full {
            // Whoever holds a session logged in with a recovery code has no
            // step-up: the password stays the owner's.
            self.require_step_up(actor)?;
        }
        let admin = self.fresh_admin(actor).await?;
        self.second_factor_gate(&admin)?;
        let creds = self.credentials_of(&admin).await?;
        if !verify_password(current, Some(creds.password_hash)).await? {
            self.factor_failure(
                &admin,
                ctx,
                AuditAction::AuthPasswordChange,
                "wrong current password",
            )
            .await?;
            return Err(CoreError::InvalidCredentials);
        }
        if current == new {
            return Err(CoreError::BadRequest(
                "the new password must differ from the current one".into(),
            ));
        }
        mamori_crypto::password::check_password_policy(new, &[&admin.name])
            .map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let hash = hash_password(new).await?;
        self.ports
            .admin
            .set_password(&admin.id, &hash, false, self.now())
            .await?;
        let ended = self
            .ports
            .admin
            .revoke_admin_sessions(&admin.id, Some(&session.id), self.now())
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthPasswordChange,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!("other sessions ended={ended}")),
        )
        .await?;
        let admin = self.fresh_admin(actor).await?;
        self.maybe_finish_setup(&admin, session, ctx, false).await
    }

    /// Completes a setup or recovery session once its requirements are met.
    /// A recovery session ends only with a WebAuthn key registered in it
    /// (`registered_webauthn`); if the password must still be changed, it
    /// becomes a setup session.
    pub(crate) async fn maybe_finish_setup(
        &self,
        admin: &AdminAccount,
        session: &AdminSession,
        ctx: &ClientContext,
        registered_webauthn: bool,
    ) -> CoreResult<Option<(LoginOutcome, SessionCookie)>> {
        match session.stage {
            SessionStage::Setup => {}
            SessionStage::Recovery if registered_webauthn => {
                if admin.must_change_password {
                    let (new, cookie) = self
                        .rotate(admin, session, SessionStage::Setup, ctx)
                        .await?;
                    let outcome = self.outcome(admin, &new, &cookie.csrf_token).await?;
                    return Ok(Some((outcome, cookie)));
                }
            }
            _ => return Ok(None),
        }
        if !self.requirements(admin, Some(session)).await?.is_empty()
            && session.stage == SessionStage::Setup
        {
            return Ok(None);
        }
        self.finish_login(admin, session, ctx, "setup")
            .await
            .map(Some)
    }

    /// What a session of `admin` still needs before it is full. A recovery
    /// session always needs a new WebAuthn key.
    pub(super) async fn requirements(
        &self,
        admin: &AdminAccount,
        session: Option<&AdminSession>,
    ) -> CoreResult<Vec<&'static str>> {
        let recovery = session.is_some_and(|s| s.stage == SessionStage::Recovery);
        let has_webauthn = !recovery && !self.usable_credentials(admin).await?.is_empty();
        let mut required = Vec::new();
        if admin.must_change_password {
            required.push("change_password");
        }
        if self.config.auth.requires_webauthn(admin.role) {
            if !has_webauthn {
                required.push("enroll_webauthn");
            }
        } else if !has_webauthn && !admin.totp_enrolled {
            required.push("enroll_second_factor");
        }
        Ok(required)
    }
}
