//! The second factors as the login checks them: TOTP codes, WebAuthn
//! challenges and answers, the passkeys and credentials an account holds.

use super::super::webauthn::Ceremony;
use crate::access::AdminActor;
use crate::{CoreError, CoreResult, PasskeyProblem, Services};
use mamori_domain::{AdminAccount, SessionId, WebauthnCredential};
use webauthn_rs::prelude::{Passkey, PublicKeyCredential};

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

impl Services {
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
    pub(super) async fn webauthn_challenge(
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
        self.put_ceremony(session, Ceremony::Authenticate(Box::new(state)))
            .await?;
        serde_json::to_value(challenge).map_err(|e| CoreError::Internal(e.into()))
    }

    /// Verifies a WebAuthn assertion against the session's pending challenge
    /// and records the credential's new counter. False when refused.
    /// Checks a WebAuthn assertion against the session's pending challenge
    /// and the account's usable keys; `Err(problem)` when it does not verify.
    pub(super) async fn webauthn_verify(
        &self,
        admin: &AdminAccount,
        session: &SessionId,
        credential: &serde_json::Value,
    ) -> CoreResult<Result<(), PasskeyProblem>> {
        let rp = self.auth.ceremonies.rp()?;
        let Some(Ceremony::Authenticate(state)) = self.take_ceremony(session).await? else {
            return Ok(Err(PasskeyProblem::Expired));
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
                return Ok(Err(PasskeyProblem::from_webauthn(&e)));
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
                return Ok(Ok(()));
            }
        }
        // The assertion verified against a credential the account no longer has.
        Ok(Err(PasskeyProblem::Refused))
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

    /// The account's passkeys (public part).
    pub async fn passkeys_of(&self, admin: &AdminAccount) -> CoreResult<Vec<Passkey>> {
        self.passkeys(admin).await
    }
}
