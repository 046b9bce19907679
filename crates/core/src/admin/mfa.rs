//! Enrolling second factors: TOTP (with recovery codes) and WebAuthn
//! credentials. Enrollment needs a fresh login: a setup session (minutes
//! old, right after the password) or a full session that stepped up.

use super::login::{recovery_hash, totp_aad, LoginOutcome, SessionCookie};
use super::webauthn::Ceremony;
use crate::access::{Actor, AdminActor, ClientContext, Via};
use crate::{CoreError, CoreResult, PasskeyProblem, Services};
use mamori_domain::{AdminAccount, AdminSession, SessionStage, WebauthnCredential};
use mamori_domain::{AuditAction, Outcome};
use serde::Serialize;
use time::OffsetDateTime;
use webauthn_rs::prelude::{
    CredentialID, Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid,
};

/// Recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;

/// A TOTP secret offered for enrollment.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrollment {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// `otpauth://` URI (for a QR code).
    pub uri: String,
}

/// A WebAuthn challenge (the browser's `navigator.credentials` options).
#[derive(Debug, Clone, Serialize)]
pub struct WebauthnChallenge {
    /// The options, as webauthn-rs serialises them.
    #[serde(flatten)]
    pub options: serde_json::Value,
}

/// What enrolling a factor returns: recovery codes (when new ones were
/// made) and, when the enrollment completed a setup session, the new session.
#[derive(Debug, Clone, Default)]
pub struct Enrolled {
    /// New recovery codes, shown once.
    pub recovery_codes: Vec<String>,
    /// The full session that replaces the setup session.
    pub session: Option<(LoginOutcome, SessionCookie)>,
    /// A passkey registered in a recovery session: not usable until a
    /// second owner approves or the delay has passed.
    pub activation: Option<Activation>,
}

/// When a passkey registered in a recovery session becomes usable.
#[derive(Debug, Clone, Serialize)]
pub struct Activation {
    /// The request a second owner approves (`/api/v1/approvals`).
    pub approval: String,
    /// Usable from then without approval, unless cancelled before.
    #[serde(with = "time::serde::rfc3339")]
    pub usable_from: OffsetDateTime,
}

/// How long a passkey registered with a recovery code waits when no second
/// owner approves it. Meanwhile the alert has gone out and the account's
/// existing passkeys (or another owner) can delete it. As long as its
/// approval request lives, never longer: a key still waiting after its
/// request expired could no longer be rejected by anyone.
pub const RECOVERY_PASSKEY_DELAY: time::Duration = crate::admin::approvals::APPROVAL_TTL;

/// An account's factors, for its owner.
#[derive(Debug, Clone, Serialize)]
pub struct Factors {
    /// A TOTP app is enrolled.
    pub totp: bool,
    /// Registered passkeys and security keys.
    pub webauthn: Vec<WebauthnCredential>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// The role must log in with WebAuthn.
    pub webauthn_required: bool,
}

impl Services {
    /// The caller's factors.
    pub async fn own_factors(&self, actor: &AdminActor) -> CoreResult<Factors> {
        let admin = self.fresh_admin(actor).await?;
        Ok(Factors {
            totp: admin.totp_enrolled,
            webauthn: self.ports.admin.webauthn_credentials(&admin.id).await?,
            recovery_codes_left: self.ports.admin.recovery_codes_left(&admin.id).await?,
            webauthn_required: self.config.auth.requires_webauthn(admin.role),
        })
    }

    /// Removes the caller's TOTP app (step-up), unless it is the last
    /// factor that lets the account log in.
    pub async fn remove_totp(&self, actor: &AdminActor, ctx: &ClientContext) -> CoreResult<()> {
        self.require_step_up(actor)?;
        let admin = self.fresh_admin(actor).await?;
        let keys = self.usable_credentials(&admin).await?.len();
        if keys == 0 {
            return Err(CoreError::Conflict(
                "this is the account's only second factor; enroll another one first".into(),
            ));
        }
        if !self.ports.admin.clear_totp(&admin.id).await? {
            return Err(CoreError::NotFound("no TOTP app is enrolled".into()));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::MfaTotpRemove,
                Outcome::Success,
            )
            .target(&admin.name),
        )
        .await?;
        Ok(())
    }

    /// Removes one of the caller's WebAuthn credentials (step-up), unless
    /// the account could then no longer log in.
    pub async fn remove_webauthn(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        credential_id: &str,
    ) -> CoreResult<()> {
        self.require_step_up(actor)?;
        let admin = self.fresh_admin(actor).await?;
        let keys = self.ports.admin.webauthn_credentials(&admin.id).await?;
        let Some(removed) = keys.iter().find(|k| k.id == credential_id) else {
            return Err(CoreError::NotFound("no such key".into()));
        };
        // A pending key (registered with a recovery code) can always be
        // removed: that is how the account's existing factors cancel it.
        let now = self.now();
        let others = keys
            .iter()
            .filter(|k| k.id != credential_id && k.usable_at(now))
            .count();
        let others = if removed.usable_at(now) {
            others
        } else {
            others.max(1)
        };
        let left_usable = if self.config.auth.requires_webauthn(admin.role) {
            others > 0
        } else {
            others > 0 || admin.totp_enrolled
        };
        if !left_usable {
            return Err(CoreError::Conflict(
                "this is the account's only usable second factor; register another one first"
                    .into(),
            ));
        }
        if !self
            .ports
            .admin
            .delete_webauthn(&admin.id, credential_id)
            .await?
        {
            return Err(CoreError::NotFound("no such key".into()));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::MfaWebauthnRemove,
                Outcome::Success,
            )
            .target(&admin.name),
        )
        .await?;
        Ok(())
    }

    /// The session, if it may enroll a factor now.
    fn enrolling_session<'a>(&self, actor: &'a AdminActor) -> CoreResult<&'a AdminSession> {
        match &actor.via {
            Via::Session(s) if matches!(s.stage, SessionStage::Setup | SessionStage::Recovery) => {
                Ok(s)
            }
            Via::Session(s) if s.stage == SessionStage::Full => {
                self.require_step_up(actor)?;
                Ok(s)
            }
            _ => Err(CoreError::Forbidden(
                "factors are enrolled in a logged-in session".into(),
            )),
        }
    }

    /// Refuses TOTP to a role that must use WebAuthn: a TOTP code is
    /// phishable, and enrolling it would also spend the account's one-time
    /// hand-out of recovery codes.
    fn totp_allowed(&self, actor: &AdminActor) -> CoreResult<()> {
        if self.config.auth.requires_webauthn(actor.admin.role) {
            return Err(CoreError::Forbidden(
                "this role must use a passkey or security key; TOTP cannot be enrolled".into(),
            ));
        }
        Ok(())
    }

    /// Offers a new TOTP secret (replacing any offer not yet confirmed).
    pub async fn totp_enroll_start(&self, actor: &AdminActor) -> CoreResult<TotpEnrollment> {
        // The stage first: a session that has not passed its second factor
        // learns nothing of the account's role here.
        self.enrolling_session(actor)?;
        self.totp_allowed(actor)?;
        let admin = self.fresh_admin(actor).await?;
        let secret = mamori_crypto::totp::generate_totp_secret()
            .map_err(|e| CoreError::Internal(e.into()))?;
        let sealed = self
            .pki
            .secret_box
            .seal(&secret, Some(totp_aad(&admin).as_bytes()))
            .map_err(|e| CoreError::Internal(e.into()))?;
        self.ports
            .admin
            .set_totp_pending(&admin.id, Some(&sealed))
            .await?;
        Ok(TotpEnrollment {
            secret: mamori_crypto::totp::totp_secret_base32(&secret),
            uri: mamori_crypto::totp::totp_uri(&secret, &self.config.organization, &admin.name),
        })
    }

    /// Confirms the offered TOTP secret with a code from the app.
    pub async fn totp_enroll_confirm(
        &self,
        actor: &AdminActor,
        code: &str,
        ctx: &ClientContext,
    ) -> CoreResult<Enrolled> {
        let session = self.enrolling_session(actor)?;
        self.totp_allowed(actor)?;
        let admin = self.fresh_admin(actor).await?;
        let creds = self.credentials_of(&admin).await?;
        let Some(sealed) = creds.totp_pending_sealed else {
            return Err(CoreError::Conflict(
                "start the TOTP enrollment first".into(),
            ));
        };
        let secret = self
            .pki
            .secret_box
            .open(&sealed, Some(totp_aad(&admin).as_bytes()))
            .map_err(|e| CoreError::internal("TOTP secret", e))?;
        let now = u64::try_from(self.now().unix_timestamp()).unwrap_or(0);
        let Some(step) = mamori_crypto::totp::verify_totp(&secret, code, now, None) else {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::MfaTotpEnroll,
                    Outcome::Failure,
                )
                .target(&admin.name)
                .detail("wrong code"),
            )
            .await?;
            return Err(CoreError::BadRequest(
                "the code does not match; check the app's clock and try again".into(),
            ));
        };
        if !self.ports.admin.activate_totp(&admin.id, step).await? {
            return Err(CoreError::Conflict(
                "start the TOTP enrollment first".into(),
            ));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::MfaTotpEnroll,
                Outcome::Success,
            )
            .target(&admin.name),
        )
        .await?;
        self.after_enrollment(actor, session, ctx, false).await
    }

    /// Replaces the caller's recovery codes (step-up).
    pub async fn regenerate_recovery_codes(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
    ) -> CoreResult<Vec<String>> {
        self.require_step_up(actor)?;
        let codes = self.new_recovery_codes(actor).await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::MfaRecoveryCodes,
                Outcome::Success,
            )
            .target(&actor.admin.name),
        )
        .await?;
        Ok(codes)
    }

    /// Starts registering a passkey or security key.
    pub async fn webauthn_register_start(
        &self,
        actor: &AdminActor,
    ) -> CoreResult<WebauthnChallenge> {
        let session = self.enrolling_session(actor)?;
        let admin = self.fresh_admin(actor).await?;
        let rp = self.auth.ceremonies.rp()?;
        let uuid =
            Uuid::parse_str(admin.id.as_str()).map_err(|e| CoreError::internal("account id", e))?;
        let exclude: Vec<CredentialID> = self
            .passkeys(&admin)
            .await?
            .iter()
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = rp
            .start_passkey_registration(uuid, &admin.name, &admin.name, Some(exclude))
            .map_err(|e| CoreError::internal("webauthn", e))?;
        self.put_ceremony(&session.id, Ceremony::Register(Box::new(state)))
            .await?;
        Ok(WebauthnChallenge {
            options: serde_json::to_value(options).map_err(|e| CoreError::Internal(e.into()))?,
        })
    }

    /// Finishes registering: verifies the attestation and stores the key.
    pub async fn webauthn_register_finish(
        &self,
        actor: &AdminActor,
        name: &str,
        credential: &serde_json::Value,
        ctx: &ClientContext,
    ) -> CoreResult<(WebauthnCredential, Enrolled)> {
        let session = self.enrolling_session(actor)?;
        let admin = self.fresh_admin(actor).await?;
        self.auth.ceremonies.rp()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(CoreError::BadRequest(
                "the key's name must be 1-64 printable characters".into(),
            ));
        }
        let Some(Ceremony::Register(state)) = self.take_ceremony(&session.id).await? else {
            return Err(CoreError::Passkey(PasskeyProblem::Expired));
        };
        let passkey = self
            .finish_registration(actor, &admin, &state, credential, ctx)
            .await?;
        let recovery = session.stage == SessionStage::Recovery;
        let cred = WebauthnCredential {
            id: {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(passkey.cred_id().as_slice())
            },
            admin_id: admin.id.clone(),
            name: name.to_owned(),
            data: serde_json::to_string(&passkey).map_err(|e| CoreError::Internal(e.into()))?,
            created_at: self.now(),
            last_used_at: None,
            usable_from: recovery.then(|| self.now() + RECOVERY_PASSKEY_DELAY),
        };
        if !self.ports.admin.insert_webauthn(&cred).await? {
            return Err(CoreError::Conflict(
                "this credential is already registered".into(),
            ));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::MfaWebauthnRegister,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!(
                "key={name}{}",
                if recovery {
                    " pending (recovery session)"
                } else {
                    ""
                }
            )),
        )
        .await?;
        if recovery {
            let activation = self.pending_passkey(actor, session, &cred, ctx).await?;
            return Ok((
                cred,
                Enrolled {
                    activation: Some(activation),
                    ..Enrolled::default()
                },
            ));
        }
        let enrolled = self.after_enrollment(actor, session, ctx, true).await?;
        Ok((cred, enrolled))
    }

    /// A passkey registered with a recovery code: whoever holds the
    /// password and one code must not become the owner on their own. The
    /// key waits for a second owner (or [`RECOVERY_PASSKEY_DELAY`]), and
    /// the recovery session ends here.
    async fn pending_passkey(
        &self,
        actor: &AdminActor,
        session: &AdminSession,
        cred: &WebauthnCredential,
        ctx: &ClientContext,
    ) -> CoreResult<Activation> {
        let approval = self
            .request_approval(
                &Actor::from(actor.clone()),
                ctx,
                crate::admin::approvals::Dangerous::ActivatePasskey {
                    admin: actor.admin.name.clone(),
                    credential: cred.id.clone(),
                },
                &format!(
                    "passkey {:?} registered with a recovery code by {}",
                    cred.name, actor.admin.name
                ),
            )
            .await?;
        self.ports
            .admin
            .revoke_session(&actor.admin.id, &session.id, self.now())
            .await?;
        Ok(Activation {
            approval: approval.id,
            usable_from: cred.usable_from.unwrap_or_else(|| self.now()),
        })
    }

    /// After a factor is enrolled: first factor → recovery codes; a setup
    /// session whose requirements are now met → a full session.
    async fn after_enrollment(
        &self,
        actor: &AdminActor,
        session: &AdminSession,
        ctx: &ClientContext,
        registered_webauthn: bool,
    ) -> CoreResult<Enrolled> {
        let mut out = Enrolled::default();
        if self
            .ports
            .admin
            .recovery_codes_left(&actor.admin.id)
            .await?
            == 0
        {
            out.recovery_codes = self.new_recovery_codes(actor).await?;
        }
        let admin = self.fresh_admin(actor).await?;
        out.session = self
            .maybe_finish_setup(&admin, session, ctx, registered_webauthn)
            .await?;
        Ok(out)
    }

    async fn new_recovery_codes(&self, actor: &AdminActor) -> CoreResult<Vec<String>> {
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut hashes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let raw =
                mamori_crypto::try_random_bytes(10).map_err(|e| CoreError::Internal(e.into()))?;
            let hexed = hex::encode(raw);
            let code = format!(
                "{}-{}-{}-{}",
                &hexed[0..5],
                &hexed[5..10],
                &hexed[10..15],
                &hexed[15..20]
            );
            hashes.push(recovery_hash(&code));
            codes.push(code);
        }
        self.ports
            .admin
            .replace_recovery_codes(&actor.admin.id, &hashes)
            .await?;
        Ok(codes)
    }
}

impl Services {
    /// Checks the authenticator's answer to a registration; a refused one
    /// is recorded with the library's reason (the client sees only that it
    /// was refused).
    async fn finish_registration(
        &self,
        actor: &AdminActor,
        admin: &AdminAccount,
        state: &PasskeyRegistration,
        credential: &serde_json::Value,
        ctx: &ClientContext,
    ) -> CoreResult<Passkey> {
        let rp = self.auth.ceremonies.rp()?;
        let Ok(reg) = serde_json::from_value::<RegisterPublicKeyCredential>(credential.clone())
        else {
            return Err(CoreError::BadRequest(
                "malformed WebAuthn credential".into(),
            ));
        };
        let passkey = match rp.finish_passkey_registration(&reg, state) {
            Ok(p) => p,
            Err(e) => {
                self.audit(
                    self.audit_record(
                        &actor.label(),
                        ctx,
                        AuditAction::MfaWebauthnRegister,
                        Outcome::Failure,
                    )
                    .target(&admin.name)
                    .detail(format!("{e}")),
                )
                .await?;
                return Err(CoreError::Passkey(PasskeyProblem::from_webauthn(&e)));
            }
        };
        Ok(passkey)
    }
}
