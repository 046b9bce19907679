//! WebAuthn (passkeys and security keys) through `webauthn-rs`: the relying
//! party built from the admin URL, and the short-lived ceremony state kept in
//! memory between a challenge and its answer, keyed by session.

use crate::{CoreError, CoreResult};
use mamori_domain::SessionId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// How long a challenge may be answered.
pub(crate) const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Ceremonies kept at most.
const MAX_CEREMONIES: usize = 10_000;

/// What a session is in the middle of.
pub(crate) enum Ceremony {
    /// Registering a new credential.
    Register(Box<PasskeyRegistration>),
    /// Proving possession of a registered one (login or step-up).
    Authenticate(Box<PasskeyAuthentication>),
}

/// The relying party and the pending ceremonies.
pub struct Ceremonies {
    rp: Option<Webauthn>,
    pending: Mutex<HashMap<SessionId, (Instant, Ceremony)>>,
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
            pending: Mutex::default(),
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

    pub(crate) fn put(&self, session: &SessionId, c: Ceremony) {
        let mut map = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_CEREMONIES {
            map.retain(|_, (t, _)| t.elapsed() < CEREMONY_TTL);
        }
        if map.len() < MAX_CEREMONIES {
            map.insert(session.clone(), (Instant::now(), c));
        }
    }

    /// Takes the session's pending ceremony (each challenge is answered once).
    pub(crate) fn take(&self, session: &SessionId) -> Option<Ceremony> {
        let mut map = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(session)
            .filter(|(t, _)| t.elapsed() < CEREMONY_TTL)
            .map(|(_, c)| c)
    }
}
