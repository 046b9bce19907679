//! What a server keeps of administrator authentication: the relying party,
//! the bounds of the shared throttles and ceremonies (their state lives in
//! the shared store), and the key CSRF tokens are made with.
//!
//! The CSRF key is one for every server on the database: created once,
//! kept sealed with the master key in the secret store, and loaded at
//! start ([`Services::load_auth_keys`]), so a console form one server
//! rendered is accepted by another. Servers starting at once on a database
//! without one agree on who creates it through a claim in the shared
//! store; the others wait and read what it wrote.

use super::{Ceremonies, DeadCredentials, InFlight, SourceThrottle};
use crate::{CoreError, CoreResult, Services};
use mamori_ports::{EphemeralStore, SecretStore, Space};
use std::sync::{PoisonError, RwLock};
use zeroize::Zeroizing;

/// Name of the sealed CSRF key in the secret store.
pub const CSRF_KEY: &str = "admin-csrf-key";
/// The claim servers take to create the CSRF key.
const CREATING: Space<'static> = Space {
    name: "start-up",
    cap: 100,
};
/// How long a server may take to create the key before another may.
const CREATE_TTL: time::Duration = time::Duration::seconds(10);
/// How long a server waits for another to create the key.
const WAIT_AT_MOST: std::time::Duration = std::time::Duration::from_secs(30);

/// Administrator authentication state: the bounds of the shared throttles
/// and ceremonies, the relying party, the CSRF key.
#[derive(Debug)]
pub struct AuthState {
    /// Failure counters per source address and per unknown login name.
    pub throttle: SourceThrottle,
    /// Limits the records of dead credentials in use (per credential).
    pub dead: DeadCredentials,
    /// The login names whose password is being checked right now.
    pub checking: InFlight,
    /// WebAuthn relying party and pending ceremonies.
    pub ceremonies: Ceremonies,
    keys: RwLock<Keys>,
}

/// The CSRF key, and the key login names are hashed with in the shared
/// store (derived from it).
struct Keys {
    csrf: Zeroizing<Vec<u8>>,
    names: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    fn from_csrf(csrf: Zeroizing<Vec<u8>>) -> Self {
        let names = Zeroizing::new(mamori_crypto::hmac_sha256(&csrf, b"mamori/sign-in-names"));
        Self { csrf, names }
    }
}

impl AuthState {
    /// State for a server reached at `admin_url`, with a key of its own
    /// until [`Services::load_auth_keys`] loads the shared one.
    pub fn new(admin_url: &str, organization: &str) -> Self {
        Self {
            throttle: SourceThrottle::default(),
            dead: DeadCredentials::default(),
            checking: InFlight::default(),
            ceremonies: Ceremonies::new(admin_url, organization),
            keys: RwLock::new(Keys::from_csrf(Zeroizing::new(
                mamori_crypto::random_bytes(32),
            ))),
        }
    }

    /// The CSRF token of a session: an HMAC of the session secret under
    /// the key every server shares, so it needs no storage and cannot be
    /// computed without the cookie.
    pub fn csrf_token(&self, session_secret: &str) -> String {
        use base64::Engine;
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mamori_crypto::hmac_sha256(
            &keys.csrf,
            session_secret.as_bytes(),
        ))
    }

    /// The key a login name is known by in the shared store: a keyed hash,
    /// so what someone typed as a name (a password, by mistake) is not
    /// stored.
    pub(crate) fn name_key(&self, name: &str) -> String {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        hex::encode(&mamori_crypto::hmac_sha256(&*keys.names, name.as_bytes())[..16])
    }

    fn set_csrf_key(&self, csrf: Zeroizing<Vec<u8>>) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        *keys = Keys::from_csrf(csrf);
    }
}

impl Services {
    /// Loads the CSRF key every server shares, creating it on the first
    /// start (one server creates it; others starting at once wait for it).
    /// Called at start.
    pub async fn load_auth_keys(&self) -> CoreResult<()> {
        let key = self.shared_csrf_key().await?;
        self.auth.set_csrf_key(key);
        Ok(())
    }

    async fn shared_csrf_key(&self) -> CoreResult<Zeroizing<Vec<u8>>> {
        let started = std::time::Instant::now();
        let holder =
            mamori_crypto::try_random_bytes(16).map_err(|e| CoreError::Internal(e.into()))?;
        loop {
            if let Some(key) = self.csrf_key_at_rest().await? {
                return Ok(key);
            }
            let now = self.now();
            let store: &dyn EphemeralStore = &*self.ports.admin;
            if store
                .claim(CREATING, CSRF_KEY, &holder, now + CREATE_TTL, now)
                .await?
            {
                let created = self.create_csrf_key().await;
                if let Err(e) = store.release(CREATING, CSRF_KEY, &holder).await {
                    tracing::warn!(error = %e, "the claim to create the CSRF key was not released; it runs out by itself");
                }
                return created;
            }
            if started.elapsed() > WAIT_AT_MOST {
                return Err(CoreError::Internal(
                    "another server claimed to create the CSRF key but did not".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The stored key (checked again under the claim: another server may
    /// have written it between the look and the claim), else a new one.
    async fn create_csrf_key(&self) -> CoreResult<Zeroizing<Vec<u8>>> {
        if let Some(key) = self.csrf_key_at_rest().await? {
            return Ok(key);
        }
        let key = Zeroizing::new(
            mamori_crypto::try_random_bytes(32).map_err(|e| CoreError::Internal(e.into()))?,
        );
        let sealed = self
            .pki
            .secret_box
            .seal(&key, Some(CSRF_KEY.as_bytes()))
            .map_err(|e| CoreError::Internal(e.into()))?;
        let store: &dyn SecretStore = &*self.ports.admin;
        if !store
            .put_secret_if_absent(CSRF_KEY, &sealed, self.now())
            .await?
        {
            // Another server wrote one after all (its claim ran out while
            // it stalled): everyone uses the stored key, never two.
            return self
                .csrf_key_at_rest()
                .await?
                .ok_or_else(|| CoreError::Internal("the CSRF key vanished".into()));
        }
        tracing::info!("CSRF key created");
        Ok(key)
    }

    async fn csrf_key_at_rest(&self) -> CoreResult<Option<Zeroizing<Vec<u8>>>> {
        let store: &dyn SecretStore = &*self.ports.admin;
        let Some(sealed) = store.secret(CSRF_KEY).await? else {
            return Ok(None);
        };
        let key = self
            .pki
            .secret_box
            .open(&sealed, Some(CSRF_KEY.as_bytes()))
            .map_err(|_| {
                CoreError::Internal(
                    "the master key does not open the stored CSRF key; start with the key the \
                     data was written with"
                        .into(),
                )
            })?;
        if key.len() != 32 {
            return Err(CoreError::Internal(
                "the stored CSRF key is malformed".into(),
            ));
        }
        Ok(Some(key))
    }
}
