//! WebAuthn (passkeys and security keys) through `webauthn-rs`: the relying
//! party built from the admin URL, and the short-lived ceremony state kept
//! between a challenge and its answer, keyed by session.
//!
//! The pending ceremonies live in the shared store (the `ceremony` space of
//! the `EphemeralStore`), so a challenge asked of one server may be
//! answered on another, and taken once: a second answer, on any server,
//! finds nothing. The state `webauthn-rs` keeps (the challenge, and for a
//! login the account's credentials with their public keys) is sealed with
//! the master key before it is stored, bound to the session that started
//! the ceremony and to its expiry: someone who reads the database learns
//! nothing of it, and someone who writes it can neither make up a state,
//! move one to another session, nor revive an old one. Answering still
//! takes that session's cookie, which the database holds only hashed.

use crate::{CoreError, CoreResult, Services};
use mamori_domain::SessionId;
use mamori_ports::{EphemeralStore, Space};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};
use zeroize::Zeroizing;

/// How long a challenge may be answered.
pub(crate) const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Ceremonies kept at most (a new one beyond it is not kept, and its
/// answer is refused as expired).
pub const MAX_CEREMONIES: u64 = 10_000;
/// The store's space of the pending ceremonies.
const SPACE: &str = "ceremony";

/// What a session is in the middle of.
#[derive(Serialize, Deserialize)]
pub(crate) enum Ceremony {
    /// Registering a new credential.
    Register(Box<PasskeyRegistration>),
    /// Proving possession of a registered one (login or step-up).
    Authenticate(Box<PasskeyAuthentication>),
}

/// A pending ceremony as sealed: the state and when it stops being
/// answerable (Unix seconds).
#[derive(Serialize, Deserialize)]
struct Pending {
    ceremony: Ceremony,
    expires: i64,
}

/// The relying party, and how many ceremonies may be pending at once.
pub struct Ceremonies {
    rp: Option<Webauthn>,
    capacity: u64,
}

impl std::fmt::Debug for Ceremonies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremonies")
            .field("enabled", &self.rp.is_some())
            .finish_non_exhaustive()
    }
}

impl Ceremonies {
    /// A relying party for `admin_url` (its host is the RP ID). An URL that
    /// WebAuthn cannot use (an IP address, say) disables WebAuthn with a
    /// warning; roles that require it then cannot log in, which the start-up
    /// check reports.
    pub fn new(admin_url: &str, name: &str) -> Self {
        let rp = Url::parse(admin_url)
            .map_err(|e| e.to_string())
            .and_then(|url| {
                let host = url.host_str().unwrap_or_default().to_owned();
                WebauthnBuilder::new(&host, &url)
                    .map_err(|e| e.to_string())?
                    .rp_name(name)
                    .timeout(CEREMONY_TTL)
                    .build()
                    .map_err(|e| e.to_string())
            });
        let rp = match rp {
            Ok(rp) => Some(rp),
            Err(e) => {
                tracing::warn!(admin_url, error = %e, "WebAuthn disabled: the admin URL cannot be a relying party");
                None
            }
        };
        Self {
            rp,
            capacity: MAX_CEREMONIES,
        }
    }

    /// The relying party.
    pub(crate) fn rp(&self) -> CoreResult<&Webauthn> {
        self.rp.as_ref().ok_or_else(|| {
            CoreError::Conflict(
                "WebAuthn is not available: set admin_url to the https URL administrators use"
                    .into(),
            )
        })
    }

    /// Whether WebAuthn is usable.
    pub fn enabled(&self) -> bool {
        self.rp.is_some()
    }

    fn space(&self) -> Space<'static> {
        Space {
            name: SPACE,
            cap: self.capacity,
        }
    }
}

/// What a pending ceremony is sealed to: its session.
fn aad(session: &SessionId) -> Vec<u8> {
    format!("mamori/webauthn-ceremony/{session}").into_bytes()
}

impl Services {
    /// Keeps `c` as the session's pending ceremony (replacing any other),
    /// for every server.
    pub(crate) async fn put_ceremony(&self, session: &SessionId, c: Ceremony) -> CoreResult<()> {
        let now = self.now();
        let expires = now + CEREMONY_TTL;
        let plain = Zeroizing::new(
            serde_json::to_vec(&Pending {
                ceremony: c,
                expires: expires.unix_timestamp(),
            })
            .map_err(|e| CoreError::internal("webauthn state", e))?,
        );
        let sealed = self
            .pki
            .secret_box
            .seal(&plain, Some(&aad(session)))
            .map_err(|e| CoreError::Internal(e.into()))?;
        let space = self.auth.ceremonies.space();
        if !self
            .ports
            .admin
            .put_once(space, session.as_str(), &sealed, expires, now)
            .await?
        {
            tracing::warn!(
                pending = space.cap,
                "WebAuthn ceremony not kept: too many are pending"
            );
        }
        Ok(())
    }

    /// Takes the session's pending ceremony (each challenge is answered
    /// once, on whichever server). `None` when there is none, it expired,
    /// or what is stored is not this session's.
    pub(crate) async fn take_ceremony(&self, session: &SessionId) -> CoreResult<Option<Ceremony>> {
        let now = self.now();
        let store: &dyn EphemeralStore = &*self.ports.admin;
        let Some(sealed) = store
            .take_once(self.auth.ceremonies.space(), session.as_str(), now)
            .await?
        else {
            return Ok(None);
        };
        let Ok(plain) = self.pki.secret_box.open(&sealed, Some(&aad(session))) else {
            tracing::warn!(session = %session, "a stored WebAuthn ceremony did not open: altered, or another session's");
            return Ok(None);
        };
        let Ok(pending) = serde_json::from_slice::<Pending>(&plain) else {
            tracing::warn!(session = %session, "a stored WebAuthn ceremony is unreadable");
            return Ok(None);
        };
        Ok((pending.expires > now.unix_timestamp()).then_some(pending.ceremony))
    }
}
