//! The login: password first, then a second factor (TOTP, WebAuthn or a
//! recovery code); sessions, their checks on every request, step-up,
//! logout and password changes.
//!
//! Uniformity: an unknown name, a wrong password, a disabled or locked
//! account all answer "invalid credentials" after the same argon2 work;
//! backoff answers 429 for known and unknown names alike.

use super::accounts::{hash_password, verify_password};
use super::throttle::backoff;
use super::webauthn::Ceremony;
use crate::access::{AdminActor, ClientContext, Via};
use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{AdminAccount, AdminSession, SessionId, SessionStage, WebauthnCredential};
use mamori_domain::{AuditAction, Outcome};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use webauthn_rs::prelude::{Passkey, PublicKeyCredential};

/// A session that is not yet fully authenticated lasts at most this long.
const PARTIAL_SESSION: Duration = Duration::minutes(10);
/// A one-time password (set by someone else) stops working after this long.
pub const ONE_TIME_PASSWORD_TTL: Duration = Duration::hours(72);
/// Session activity is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(15);
/// The login method of a recovery code (audited; gives no step-up).
const RECOVERY_METHOD: &str = "recovery_code";

/// A new session secret for the cookie, and the CSRF token that goes with it.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    /// The cookie value.
    pub secret: String,
    /// The CSRF token state-changing requests must send.
    pub csrf_token: String,
    /// Absolute end of the session.
    pub expires_at: OffsetDateTime,
}

/// Where a login stands, for the client.
#[derive(Debug, Clone, Serialize)]
pub struct LoginOutcome {
    /// The session's stage.
    pub stage: SessionStage,
    /// Second factors the account may use now (stage `second_factor`).
    pub methods: Vec<&'static str>,
    /// What must be done before the session is full (stage `setup`):
    /// `change_password`, `enroll_webauthn`, `enroll_second_factor`.
    pub required: Vec<&'static str>,
    /// The CSRF token for state-changing requests.
    pub csrf_token: String,
}

impl Services {
    /// Step one: name and password. Opens a session that can do nothing but
    /// finish the login.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        ctx: &ClientContext,
    ) -> CoreResult<(LoginOutcome, SessionCookie)> {
        let now = self.now();
        let policy = &self.config.auth;
        if let Some(wait) = self.auth.throttle.wait(&source_key(ctx), now) {
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Denied)
                    .detail("source throttled"),
            )
            .await?;
            return Err(CoreError::TooManyRequests(wait));
        }
        let name = name.trim().to_ascii_lowercase();
        let target = super::accounts::check_name(&name)
            .is_ok()
            .then_some(name.as_str());
        let Some(admin) = self.ports.admin.admin_by_name(&name).await? else {
            let key = format!("name:{name}");
            if let Some(wait) = self.auth.throttle.wait(&key, now) {
                return Err(CoreError::TooManyRequests(wait));
            }
            verify_password(password, None).await?;
            self.auth
                .throttle
                .failure(&key, now, policy.backoff_after, policy.max_backoff);
            self.source_failure(ctx, now);
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Failure)
                    .target_opt(target)
                    .detail("unknown name"),
            )
            .await?;
            return Err(CoreError::InvalidCredentials);
        };
        if let Some(until) = admin.throttled_until.filter(|t| *t > now) {
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Denied)
                    .target_opt(target)
                    .detail("account backoff"),
            )
            .await?;
            return Err(CoreError::TooManyRequests(
                u64::try_from((until - now).whole_seconds()).unwrap_or(0) + 1,
            ));
        }
        let creds = self.credentials_of(&admin).await?;
        let ok = verify_password(password, Some(creds.password_hash.clone())).await?;
        if !Self::account_usable(&admin) {
            let why = if admin.disabled_at.is_some() {
                "disabled"
            } else if admin.suspended.is_some() {
                "suspended"
            } else {
                "locked"
            };
            // Counted like any failure, so the backoff a disabled or locked
            // account shows is the same as an unknown or active one's.
            self.factor_failure(
                &admin,
                ctx,
                AuditAction::AuthLogin,
                &format!("account {why}"),
            )
            .await?;
            return Err(CoreError::InvalidCredentials);
        }
        if !ok {
            self.factor_failure(&admin, ctx, AuditAction::AuthLogin, "wrong password")
                .await?;
            return Err(CoreError::InvalidCredentials);
        }
        if admin.must_change_password && now - admin.password_set_at > ONE_TIME_PASSWORD_TTL {
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Failure)
                    .target_opt(target)
                    .detail("one-time password expired"),
            )
            .await?;
            return Err(CoreError::InvalidCredentials);
        }
        if mamori_crypto::password::needs_rehash(&creds.password_hash) {
            let h = hash_password(password).await?;
            self.ports
                .admin
                .set_password(
                    &admin.id,
                    &h,
                    admin.must_change_password,
                    admin.password_set_at,
                )
                .await?;
        }
        let has_webauthn = !self.usable_credentials(&admin).await?.is_empty();
        let stage = if admin.totp_enrolled || has_webauthn {
            SessionStage::SecondFactor
        } else {
            // First login: nothing to check a second factor against yet;
            // the session can only enroll one (and change the password).
            SessionStage::Setup
        };
        let (session, cookie) = self.open_session(&admin, stage, ctx, None).await?;
        self.audit(
            self.audit_record(
                &format!("admin:{}", admin.name),
                ctx,
                AuditAction::AuthPassword,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!("session={} stage={}", session.id, stage.as_str())),
        )
        .await?;
        let outcome = self.outcome(&admin, &session, &cookie.csrf_token).await?;
        Ok((outcome, cookie))
    }

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

    /// Step two with a TOTP code.
    pub async fn login_totp(
        &self,
        actor: &AdminActor,
        code: &str,
        ctx: &ClientContext,
    ) -> CoreResult<(LoginOutcome, SessionCookie)> {
        let session = second_factor_session(actor)?;
        let admin = self.fresh_admin(actor).await?;
        self.second_factor_gate(&admin)?;
        if self.config.auth.requires_webauthn(admin.role) {
            self.audit(
                self.audit_record(&actor.label(), ctx, AuditAction::AuthTotp, Outcome::Denied)
                    .target(&admin.name)
                    .detail("role requires WebAuthn"),
            )
            .await?;
            return Err(CoreError::Forbidden(
                "this role must log in with a passkey or security key".into(),
            ));
        }
        if !self.check_totp(&admin, code).await? {
            self.factor_failure(&admin, ctx, AuditAction::AuthTotp, "wrong or replayed code")
                .await?;
            return Err(CoreError::InvalidCredentials);
        }
        self.finish_login(&admin, session, ctx, "totp").await
    }

    /// Step two with a recovery code (each works once). Where the role
    /// requires WebAuthn the session may then only register a new one;
    /// otherwise it is a full session without a step-up.
    pub async fn login_recovery(
        &self,
        actor: &AdminActor,
        code: &str,
        ctx: &ClientContext,
    ) -> CoreResult<(LoginOutcome, SessionCookie)> {
        let session = second_factor_session(actor)?;
        let admin = self.fresh_admin(actor).await?;
        self.second_factor_gate(&admin)?;
        let hash = recovery_hash(code);
        if !self
            .ports
            .admin
            .use_recovery_code(&admin.id, &hash, self.now())
            .await?
        {
            self.factor_failure(
                &admin,
                ctx,
                AuditAction::AuthRecoveryCode,
                "wrong or used code",
            )
            .await?;
            return Err(CoreError::InvalidCredentials);
        }
        let left = self.ports.admin.recovery_codes_left(&admin.id).await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthRecoveryCode,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!("codes left={left}")),
        )
        .await?;
        // A recovery code stands in for a lost factor, or for a stolen
        // one: every use is an alert someone must look at.
        self.record_alert(&crate::audit::anomaly::Alert {
            rule: "recovery_code_used",
            severity: "high",
            actor: format!("admin:{}", admin.name),
            evidence: Vec::new(),
            detail: format!(
                "a recovery code of {} was used to log in (from {}; {left} left)",
                admin.name, ctx.source
            ),
        })
        .await?;
        if self.config.auth.requires_webauthn(admin.role) {
            // A recovery code is phishable: for a role that must use
            // WebAuthn it only opens a session that registers a new key.
            let (new, cookie) = self
                .rotate(&admin, session, SessionStage::Recovery, ctx)
                .await?;
            let outcome = self.outcome(&admin, &new, &cookie.csrf_token).await?;
            return Ok((outcome, cookie));
        }
        self.finish_login(&admin, session, ctx, RECOVERY_METHOD)
            .await
    }

    /// Step two with WebAuthn, part one: the challenge.
    pub async fn webauthn_login_start(&self, actor: &AdminActor) -> CoreResult<serde_json::Value> {
        let session = second_factor_session(actor)?;
        self.webauthn_challenge(actor, &session.id).await
    }

    /// Step two with WebAuthn, part two: the authenticator's answer.
    pub async fn webauthn_login_finish(
        &self,
        actor: &AdminActor,
        credential: &serde_json::Value,
        ctx: &ClientContext,
    ) -> CoreResult<(LoginOutcome, SessionCookie)> {
        let session = second_factor_session(actor)?;
        let admin = self.fresh_admin(actor).await?;
        self.second_factor_gate(&admin)?;
        if !self
            .webauthn_verify(&admin, &session.id, credential)
            .await?
        {
            self.factor_failure(&admin, ctx, AuditAction::AuthWebauthn, "assertion refused")
                .await?;
            return Err(CoreError::InvalidCredentials);
        }
        self.finish_login(&admin, session, ctx, "webauthn").await
    }

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
        self.ports
            .admin
            .set_session_step_up(&session.id, self.now())
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthStepUp,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail("totp"),
        )
        .await?;
        Ok(())
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
        if !self
            .webauthn_verify(&admin, &session.id, credential)
            .await?
        {
            self.factor_failure(&admin, ctx, AuditAction::AuthStepUp, "assertion refused")
                .await?;
            return Err(CoreError::InvalidCredentials);
        }
        self.ports
            .admin
            .set_session_step_up(&session.id, self.now())
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AuthStepUp,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail("webauthn"),
        )
        .await?;
        Ok(())
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
    async fn requirements(
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

    /// Describes a session to its client.
    pub async fn login_outcome(
        &self,
        admin: &AdminAccount,
        session: &AdminSession,
        csrf_token: &str,
    ) -> CoreResult<LoginOutcome> {
        self.outcome(admin, session, csrf_token).await
    }

    /// The account's passkeys (public part).
    pub async fn passkeys_of(&self, admin: &AdminAccount) -> CoreResult<Vec<Passkey>> {
        self.passkeys(admin).await
    }

    pub(crate) async fn outcome(
        &self,
        admin: &AdminAccount,
        session: &AdminSession,
        csrf_token: &str,
    ) -> CoreResult<LoginOutcome> {
        let stage = session.stage;
        let mut methods = Vec::new();
        if stage == SessionStage::SecondFactor {
            if !self.usable_credentials(admin).await?.is_empty() {
                methods.push("webauthn");
            }
            if admin.totp_enrolled && !self.config.auth.requires_webauthn(admin.role) {
                methods.push("totp");
            }
            if self.ports.admin.recovery_codes_left(&admin.id).await? > 0 {
                methods.push("recovery_code");
            }
        }
        let required = if matches!(stage, SessionStage::Setup | SessionStage::Recovery) {
            self.requirements(admin, Some(session)).await?
        } else {
            Vec::new()
        };
        Ok(LoginOutcome {
            stage,
            methods,
            required,
            csrf_token: csrf_token.to_owned(),
        })
    }

    /// The second factor passed: a new session (fresh secret: no fixation),
    /// full unless the password must still be changed.
    async fn finish_login(
        &self,
        admin: &AdminAccount,
        old: &AdminSession,
        ctx: &ClientContext,
        method: &str,
    ) -> CoreResult<(LoginOutcome, SessionCookie)> {
        // A recovery session reaches here only once its new key is registered.
        let required = if old.stage == SessionStage::Recovery {
            Vec::new()
        } else {
            self.requirements(admin, Some(old)).await?
        };
        let stage = if required.is_empty() {
            SessionStage::Full
        } else {
            SessionStage::Setup
        };
        // A recovery code completes a login but is no re-authentication:
        // whatever needs a step-up (password, factors, tokens, approvals)
        // then needs a real factor.
        self.ports
            .admin
            .revoke_session(&admin.id, &old.id, self.now())
            .await?;
        let step_up =
            (stage == SessionStage::Full && method != RECOVERY_METHOD).then(|| self.now());
        let (new, cookie) = self.open_session(admin, stage, ctx, step_up).await?;
        if stage == SessionStage::Full {
            self.ports
                .admin
                .record_login(&admin.id, self.now(), &ctx.source)
                .await?;
        }
        self.audit(
            self.audit_record(
                &format!("admin:{}", admin.name),
                ctx,
                AuditAction::AuthLogin,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!(
                "method={method} session={} stage={}",
                new.id,
                stage.as_str()
            )),
        )
        .await?;
        let outcome = self.outcome(admin, &new, &cookie.csrf_token).await?;
        Ok((outcome, cookie))
    }

    /// Replaces `old` with a new session at `stage`.
    async fn rotate(
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
    async fn open_session(
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

    /// Checks a TOTP code against the enrolled secret, with replay
    /// protection (the step is advanced atomically in the store).
    pub(crate) async fn check_totp(&self, admin: &AdminAccount, code: &str) -> CoreResult<bool> {
        let creds = self.credentials_of(admin).await?;
        let Some(sealed) = creds.totp_sealed else {
            return Ok(false);
        };
        let secret = self
            .pki
            .secret_box
            .open(&sealed, Some(totp_aad(admin).as_bytes()))
            .map_err(|e| CoreError::internal("TOTP secret", e))?;
        let now = u64::try_from(self.now().unix_timestamp()).unwrap_or(0);
        let Some(step) = mamori_crypto::totp::verify_totp(&secret, code, now, creds.totp_last_step)
        else {
            return Ok(false);
        };
        Ok(self.ports.admin.advance_totp_step(&admin.id, step).await?)
    }

    /// Starts a WebAuthn assertion for the account's credentials.
    async fn webauthn_challenge(
        &self,
        actor: &AdminActor,
        session: &SessionId,
    ) -> CoreResult<serde_json::Value> {
        let rp = self.auth.ceremonies.rp()?;
        let passkeys = self.passkeys(&actor.admin).await?;
        if passkeys.is_empty() {
            return Err(CoreError::Conflict(
                "no passkey or security key is registered".into(),
            ));
        }
        let (challenge, state) = rp
            .start_passkey_authentication(&passkeys)
            .map_err(|e| CoreError::internal("webauthn", e))?;
        self.auth
            .ceremonies
            .put(session, Ceremony::Authenticate(Box::new(state)));
        serde_json::to_value(challenge).map_err(|e| CoreError::Internal(e.into()))
    }

    /// Verifies a WebAuthn assertion against the session's pending challenge
    /// and records the credential's new counter. False when refused.
    async fn webauthn_verify(
        &self,
        admin: &AdminAccount,
        session: &SessionId,
        credential: &serde_json::Value,
    ) -> CoreResult<bool> {
        let rp = self.auth.ceremonies.rp()?;
        let Some(Ceremony::Authenticate(state)) = self.auth.ceremonies.take(session) else {
            return Err(CoreError::Conflict(
                "no WebAuthn challenge is pending; start again".into(),
            ));
        };
        let Ok(cred) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
            return Err(CoreError::BadRequest(
                "malformed WebAuthn credential".into(),
            ));
        };
        let result = match rp.finish_passkey_authentication(&cred, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(admin = %admin.name, error = %e, "WebAuthn assertion refused");
                return Ok(false);
            }
        };
        let stored = self.usable_credentials(admin).await?;
        for c in stored {
            let Ok(mut pk) = serde_json::from_str::<Passkey>(&c.data) else {
                continue;
            };
            if pk.update_credential(&result).is_some() {
                let data = serde_json::to_string(&pk).map_err(|e| CoreError::Internal(e.into()))?;
                self.ports
                    .admin
                    .update_webauthn(&c.id, &data, self.now())
                    .await?;
                return Ok(true);
            }
        }
        // The assertion verified against a credential the account no longer has.
        Ok(false)
    }

    /// The account's passkeys.
    /// The account's WebAuthn credentials that may log in now (not a key
    /// registered with a recovery code and still waiting).
    pub(crate) async fn usable_credentials(
        &self,
        admin: &AdminAccount,
    ) -> CoreResult<Vec<WebauthnCredential>> {
        let now = self.now();
        Ok(self
            .ports
            .admin
            .webauthn_credentials(&admin.id)
            .await?
            .into_iter()
            .filter(|c| c.usable_at(now))
            .collect())
    }

    /// A second-factor attempt waits out the backoff that earlier wrong
    /// factors (or passwords) of the account set, as a password does.
    fn second_factor_gate(&self, admin: &AdminAccount) -> CoreResult<()> {
        let now = self.now();
        if let Some(until) = admin.throttled_until.filter(|t| *t > now) {
            let wait = (until - now).whole_seconds().max(1);
            return Err(CoreError::TooManyRequests(u64::try_from(wait).unwrap_or(1)));
        }
        Ok(())
    }

    pub(crate) async fn passkeys(&self, admin: &AdminAccount) -> CoreResult<Vec<Passkey>> {
        let mut out = Vec::new();
        for c in self.usable_credentials(admin).await? {
            match serde_json::from_str::<Passkey>(&c.data) {
                Ok(pk) => out.push(pk),
                Err(e) => {
                    tracing::error!(credential = %c.id, error = %e, "stored WebAuthn credential unreadable");
                }
            }
        }
        Ok(out)
    }

    /// A failed factor: count it (backoff, then lock), slow the source, audit.
    async fn factor_failure(
        &self,
        admin: &AdminAccount,
        ctx: &ClientContext,
        action: AuditAction,
        reason: &str,
    ) -> CoreResult<()> {
        let now = self.now();
        let policy = &self.config.auth;
        let n = self.ports.admin.add_login_failure(&admin.id).await?;
        self.source_failure(ctx, now);
        let lock = n >= policy.lock_after;
        let until = backoff(n, policy.backoff_after, policy.max_backoff).map(|d| now + d);
        self.ports
            .admin
            .set_login_block(
                &admin.id,
                until,
                if lock {
                    Some(admin.locked_at.unwrap_or(now))
                } else {
                    None
                },
            )
            .await?;
        self.audit(
            self.audit_record("anonymous", ctx, action, Outcome::Failure)
                .target(&admin.name)
                .detail(format!("{reason}; consecutive failures={n}")),
        )
        .await?;
        if action != AuditAction::AuthLogin && n == policy.backoff_after {
            // The password was right but the second factor keeps failing:
            // the password is probably known to someone else.
            tracing::warn!(admin = %admin.name, failures = n, "ALERT: repeated second-factor failures");
            self.audit(
                self.audit_record("system", ctx, AuditAction::AlertMfaFailures, Outcome::Alert)
                    .target(&admin.name)
                    .detail(format!(
                        "severity=high consecutive failures={n} at {action}"
                    )),
            )
            .await?;
        }
        if lock && admin.locked_at.is_none() {
            tracing::warn!(admin = %admin.name, failures = n, "administrator account locked");
            self.audit(
                self.audit_record("system", ctx, AuditAction::AdminLock, Outcome::Success)
                    .target(&admin.name)
                    .detail(format!("after {n} consecutive failures")),
            )
            .await?;
        }
        Ok(())
    }

    fn source_failure(&self, ctx: &ClientContext, now: OffsetDateTime) {
        let p = &self.config.auth;
        self.auth
            .throttle
            .failure(&source_key(ctx), now, p.source_free_failures, p.max_backoff);
    }
}

/// Throttled per source network: an IPv6 client by its /64.
fn source_key(ctx: &ClientContext) -> String {
    format!("source:{}", super::throttle::source_network(&ctx.source))
}

fn second_factor_session(actor: &AdminActor) -> CoreResult<&AdminSession> {
    match &actor.via {
        Via::Session(s) if s.stage == SessionStage::SecondFactor => Ok(s),
        _ => Err(CoreError::Conflict(
            "no login is waiting for a second factor".into(),
        )),
    }
}

fn full_session(actor: &AdminActor) -> CoreResult<&AdminSession> {
    match &actor.via {
        Via::Session(s) if s.stage == SessionStage::Full => Ok(s),
        _ => Err(CoreError::Forbidden(
            "re-authentication happens in a logged-in session".into(),
        )),
    }
}

/// Additional data binding a sealed TOTP secret to its account.
pub(crate) fn totp_aad(admin: &AdminAccount) -> String {
    format!("totp:{}", admin.id)
}

/// Recovery codes are compared by SHA-256 of their normalised form (lower
/// case, no separators); at 80 random bits a slow hash adds nothing.
pub(crate) fn recovery_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    mamori_crypto::sha256_hex(norm.as_bytes())
}
