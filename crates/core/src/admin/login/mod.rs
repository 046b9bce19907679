//! The login: password first, then a second factor (TOTP, WebAuthn or a
//! recovery code); sessions, their checks on every request, step-up,
//! logout and password changes.
//!
//! Uniformity: an unknown name, a wrong password, a disabled or locked
//! account all answer "invalid credentials" after the same argon2 work;
//! backoff answers 429 for known and unknown names alike.

mod factors;
mod password;
mod sessions;
mod step_up;

pub(crate) use factors::{recovery_hash, totp_aad};
use sessions::{full_session, second_factor_session};

use super::accounts::{hash_password, verify_password};
use super::throttle::backoff;
use crate::access::{AdminActor, ClientContext};
use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{AdminAccount, AdminSession, SessionStage};
use mamori_domain::{AuditAction, Outcome};
use mamori_ports::EphemeralStore;
use serde::Serialize;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

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
        let name = name.trim().to_ascii_lowercase();
        let target = super::accounts::check_name(&name)
            .is_ok()
            .then_some(name.as_str());
        // The source's backoff, and one password check per name at a time
        // (on any server), held until its failure (and backoff) is
        // written: both asked of the shared store at once.
        let (source, checked_name) = (source_key(ctx), self.auth.name_key(&name));
        let (wait, turn) = tokio::join!(
            self.auth.throttle.wait(
                &*self.ports.admin,
                &source,
                now,
                self.config.auth.source_free_failures,
                self.config.auth.max_backoff,
            ),
            self.auth.checking.enter(
                Arc::clone(&self.ports.admin) as Arc<dyn EphemeralStore>,
                &checked_name,
                now,
            ),
        );
        let turn = turn?;
        if let Some(wait) = wait? {
            if let Some(turn) = turn {
                turn.release().await;
            }
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Denied)
                    .detail("source throttled"),
            )
            .await?;
            return Err(CoreError::TooManyRequests(wait));
        }
        let Some(turn) = turn else {
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Denied)
                    .target_opt(target)
                    .detail("another sign-in for this name is being checked"),
            )
            .await?;
            return Err(CoreError::TooManyRequests(1));
        };
        let checked = self.login_checked(&name, target, password, ctx, now).await;
        turn.release().await;
        checked
    }

    /// [`login`](Self::login) during the name's turn.
    async fn login_checked(
        &self,
        name: &str,
        target: Option<&str>,
        password: &str,
        ctx: &ClientContext,
        now: OffsetDateTime,
    ) -> CoreResult<(LoginOutcome, SessionCookie)> {
        let Some(admin) = self.ports.admin.admin_by_name(name).await? else {
            return Err(self.unknown_name(name, target, password, ctx, now).await?);
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
        if let Some(refusal) = self
            .password_refusal(&admin, password, ctx, target, now)
            .await?
        {
            return Err(refusal);
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
        if let Err(problem) = self
            .webauthn_verify(&admin, &session.id, credential)
            .await?
        {
            self.factor_failure(&admin, ctx, AuditAction::AuthWebauthn, problem.code())
                .await?;
            return Err(CoreError::Passkey(problem));
        }
        self.finish_login(&admin, session, ctx, "webauthn").await
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
        let (n, source) = tokio::join!(
            self.ports.admin.add_login_failure(&admin.id),
            self.source_failure(ctx, now)
        );
        // The account's backoff and records are written even if the
        // source's count failed; that error is returned at the end.
        let n = n?;
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
        source
    }

    async fn source_failure(&self, ctx: &ClientContext, now: OffsetDateTime) -> CoreResult<()> {
        let max = self.config.auth.max_backoff;
        Ok(self
            .auth
            .throttle
            .failure(&*self.ports.admin, &source_key(ctx), now, max)
            .await?)
    }
}

/// Throttled per source network: an IPv6 client by its /64.
fn source_key(ctx: &ClientContext) -> String {
    format!("source:{}", super::throttle::source_network(&ctx.source))
}

impl Services {
    /// The refusal for a name no account has: the same argon2 work and
    /// backoff as a wrong password, recorded.
    async fn unknown_name(
        &self,
        name: &str,
        target: Option<&str>,
        password: &str,
        ctx: &ClientContext,
        now: OffsetDateTime,
    ) -> CoreResult<CoreError> {
        let policy = &self.config.auth;
        let store = &*self.ports.admin;
        let key = self.name_throttle_key(name);
        let throttle = &self.auth.throttle;
        let (free, max) = (policy.backoff_after, policy.max_backoff);
        if let Some(wait) = throttle.wait(store, &key, now, free, max).await? {
            return Ok(CoreError::TooManyRequests(wait));
        }
        verify_password(password, None).await?;
        let (named, source) = tokio::join!(
            throttle.failure(store, &key, now, max),
            self.source_failure(ctx, now)
        );
        self.audit(
            self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Failure)
                .target_opt(target)
                .detail("unknown name"),
        )
        .await?;
        named?;
        source?;
        Ok(CoreError::InvalidCredentials)
    }

    /// Checks the password of an existing account (and that the account
    /// may log in): the refusal, if any; a stored hash with outdated
    /// parameters is upgraded on success.
    async fn password_refusal(
        &self,
        admin: &AdminAccount,
        password: &str,
        ctx: &ClientContext,
        target: Option<&str>,
        now: OffsetDateTime,
    ) -> CoreResult<Option<CoreError>> {
        let creds = self.credentials_of(admin).await?;
        let ok = verify_password(password, Some(creds.password_hash.clone())).await?;
        if !Self::account_usable(admin) {
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
                admin,
                ctx,
                AuditAction::AuthLogin,
                &format!("account {why}"),
            )
            .await?;
            return Ok(Some(CoreError::InvalidCredentials));
        }
        if !ok {
            self.factor_failure(admin, ctx, AuditAction::AuthLogin, "wrong password")
                .await?;
            return Ok(Some(CoreError::InvalidCredentials));
        }
        if admin.must_change_password && now - admin.password_set_at > ONE_TIME_PASSWORD_TTL {
            self.audit(
                self.audit_record("anonymous", ctx, AuditAction::AuthLogin, Outcome::Failure)
                    .target_opt(target)
                    .detail("one-time password expired"),
            )
            .await?;
            return Ok(Some(CoreError::InvalidCredentials));
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
        Ok(None)
    }
}
