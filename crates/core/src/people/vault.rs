//! Envelope encryption of personal data.
//!
//! Each person has a random 256-bit data key; their personal fields are
//! sealed with it (AES-256-GCM, RustCrypto, random 96-bit nonce, the
//! person's ID as associated data). The data key is wrapped by a master key
//! that never enters the database, through the [`KeyProvider`] trait (a
//! local key file or environment variable now; a KMS can implement the same
//! trait). Destroying a person's wrapped data key makes every copy of their
//! ciphertext — database, WAL, backups, replicas — unreadable.
//!
//! Exact-match lookups (e-mail, user ID) go through keyed blind indexes:
//! HMAC-SHA256 under an index key that is itself stored only wrapped by the
//! master key.

use crate::{CoreError, CoreResult};
use mamori_crypto::SecretBox;
use zeroize::Zeroizing;

/// Wraps and unwraps data keys with master keys it alone holds.
pub trait KeyProvider: Send + Sync {
    /// ID of the master key new data keys are wrapped with.
    fn current_id(&self) -> String;
    /// Wraps `key` (bound to `aad`) with the current master key; returns
    /// the master key's ID and the wrapped key.
    fn wrap(&self, key: &[u8], aad: &[u8]) -> CoreResult<(String, Vec<u8>)>;
    /// Unwraps a key wrapped by master key `id`. An unknown ID, a wrong key
    /// or tampered bytes are an error.
    fn unwrap(&self, id: &str, wrapped: &[u8], aad: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>>;
    /// Whether master key `id` is loaded.
    fn has(&self, id: &str) -> bool;
}

/// Master keys held in memory (from a key file or the environment). One is
/// current (the first loaded, until [`LocalKeyring::set_current`] names
/// another: the servers on one database wrap with the key the database
/// names); the others only unwrap (during a rotation). The set can be
/// replaced while the server runs (a rotation reloads the file).
pub struct LocalKeyring {
    keys: std::sync::RwLock<Vec<(String, SecretBox)>>,
}

impl std::fmt::Debug for LocalKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyring")
            .field("ids", &self.ids())
            .finish()
    }
}

/// Derives the key-wrapping key from a master secret (domain separation:
/// the same master secret also seals other secrets).
fn derive(master: &[u8], label: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(mamori_crypto::hmac_sha256(master, label.as_bytes()))
}

impl LocalKeyring {
    /// A keyring from master secrets (32 bytes each), current first. Empty
    /// is refused.
    pub fn new(masters: &[Zeroizing<Vec<u8>>]) -> CoreResult<Self> {
        Ok(Self {
            keys: std::sync::RwLock::new(Self::boxes(masters)?),
        })
    }

    fn boxes(masters: &[Zeroizing<Vec<u8>>]) -> CoreResult<Vec<(String, SecretBox)>> {
        if masters.is_empty() {
            return Err(CoreError::Internal("no master key".into()));
        }
        let mut keys = Vec::new();
        for m in masters {
            if m.len() != 32 {
                return Err(CoreError::Internal("a master key must be 32 bytes".into()));
            }
            keys.push((
                Self::key_id(m),
                SecretBox::new(derive(m, "mamori/wrap-data-keys/v1")),
            ));
        }
        Ok(keys)
    }

    /// Replaces the keys, e.g. after a rotation rewrote the key file. The
    /// current key stays current if the new set holds it; otherwise the
    /// first of the new set is. Wraps in flight finish with the old set.
    pub fn replace(&self, masters: &[Zeroizing<Vec<u8>>]) -> CoreResult<()> {
        let mut boxes = Self::boxes(masters)?;
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(current) = keys.first().map(|(id, _)| id.clone()) {
            if let Some(at) = boxes.iter().position(|(id, _)| *id == current) {
                boxes[..=at].rotate_right(1);
            }
        }
        *keys = boxes;
        Ok(())
    }

    /// Makes the loaded key `id` the one new data keys are wrapped with; an
    /// error (and no change) when it is not loaded.
    pub fn set_current(&self, id: &str) -> CoreResult<()> {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = keys
            .iter()
            .position(|(k, _)| k == id)
            .ok_or_else(|| CoreError::Internal(format!("master key {id} is not loaded").into()))?;
        keys[..=at].rotate_right(1);
        Ok(())
    }

    /// The IDs of the loaded keys, current first.
    pub fn ids(&self) -> Vec<String> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter().map(|(id, _)| id.clone()).collect()
    }

    /// The public ID of a master secret: 16 hex digits of an HMAC under
    /// it (identifies the key, reveals nothing about it).
    pub fn key_id(master: &[u8]) -> String {
        hex::encode(&mamori_crypto::hmac_sha256(master, b"mamori/key-id/v1")[..8])
    }
}

impl KeyProvider for LocalKeyring {
    fn current_id(&self) -> String {
        self.ids().into_iter().next().unwrap_or_default()
    }

    fn wrap(&self, key: &[u8], aad: &[u8]) -> CoreResult<(String, Vec<u8>)> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (id, b) = keys
            .first()
            .ok_or_else(|| CoreError::Internal("no master key".into()))?;
        let wrapped = b
            .seal(key, Some(aad))
            .map_err(|e| CoreError::internal("wrap", e))?;
        Ok((id.clone(), wrapped))
    }

    fn unwrap(&self, id: &str, wrapped: &[u8], aad: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (_, b) = keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| CoreError::Internal(format!("master key {id} is not loaded").into()))?;
        b.open(wrapped, Some(aad)).map_err(|_| {
            CoreError::Internal(format!("data key does not open under master key {id}").into())
        })
    }

    fn has(&self, id: &str) -> bool {
        self.ids().iter().any(|k| k == id)
    }
}

/// A person's data key, in memory only.
pub struct DataKey(SecretBox);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random data key and its raw bytes (to be wrapped).
    pub fn generate() -> CoreResult<(Self, Zeroizing<Vec<u8>>)> {
        let raw = Zeroizing::new(
            mamori_crypto::try_random_bytes(32).map_err(|e| CoreError::Internal(e.into()))?,
        );
        Ok((Self::from_raw(&raw)?, raw))
    }

    /// A data key from its raw bytes.
    pub fn from_raw(raw: &[u8]) -> CoreResult<Self> {
        SecretBox::from_slice(raw)
            .map(Self)
            .map_err(|e| CoreError::Internal(e.into()))
    }

    /// Seals `plaintext` bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> CoreResult<Vec<u8>> {
        self.0
            .seal(plaintext, Some(aad))
            .map_err(|e| CoreError::internal("seal", e))
    }

    /// Opens what [`Self::seal`] made with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>> {
        self.0.open(sealed, Some(aad)).map_err(|_| {
            CoreError::Internal("personal data does not open under its data key".into())
        })
    }
}

/// The keyed blind index of a normalised value.
pub fn blind_index(index_key: &[u8], kind: &str, value: &str) -> String {
    let mut msg = Vec::with_capacity(kind.len() + 1 + value.len());
    msg.extend_from_slice(kind.as_bytes());
    msg.push(0);
    msg.extend_from_slice(value.as_bytes());
    hex::encode(mamori_crypto::hmac_sha256(index_key, &msg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn master(b: u8) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(vec![b; 32])
    }

    #[test]
    fn wraps_with_the_current_key_and_unwraps_with_any_loaded_one() {
        let old = LocalKeyring::new(&[master(1)]).unwrap();
        let (id1, w1) = old.wrap(b"data-key-bytes", b"person:1").unwrap();
        let both = LocalKeyring::new(&[master(2), master(1)]).unwrap();
        assert_ne!(both.current_id(), id1);
        assert_eq!(
            &*both.unwrap(&id1, &w1, b"person:1").unwrap(),
            b"data-key-bytes"
        );
        // Wrong associated data, unknown key, other key: all refused.
        assert!(both.unwrap(&id1, &w1, b"person:2").is_err());
        assert!(both.unwrap("0000000000000000", &w1, b"person:1").is_err());
        let other = LocalKeyring::new(&[master(3)]).unwrap();
        assert!(other.unwrap(&id1, &w1, b"person:1").is_err());
        assert!(LocalKeyring::new(&[]).is_err());
        // Replacing the set: the old key stops unwrapping.
        both.replace(&[master(2)]).unwrap();
        assert!(both.unwrap(&id1, &w1, b"person:1").is_err());
        assert_eq!(both.ids().len(), 1);
        assert!(LocalKeyring::new(&[Zeroizing::new(vec![0; 31])]).is_err());
    }

    #[test]
    fn the_current_key_is_named_and_survives_a_reload() {
        let ring = LocalKeyring::new(&[master(1), master(2), master(3)]).unwrap();
        let [k1, k2, k3] = [1, 2, 3].map(|b| LocalKeyring::key_id(&master(b)));
        assert_eq!(ring.current_id(), k1);
        ring.set_current(&k3).unwrap();
        assert_eq!(ring.current_id(), k3);
        let (id, wrapped) = ring.wrap(b"data-key", b"p").unwrap();
        assert_eq!(id, k3);
        // Every key still unwraps; an unknown one cannot be named.
        assert!(ring.has(&k1) && ring.has(&k2));
        assert!(ring.set_current("0000000000000000").is_err());
        assert_eq!(ring.current_id(), k3);
        // A reloaded file that still holds the current key keeps it current,
        // whatever its order; one without it makes its first key current.
        ring.replace(&[master(2), master(1), master(3)]).unwrap();
        assert_eq!(ring.current_id(), k3);
        assert_eq!(ring.ids().len(), 3);
        assert_eq!(&*ring.unwrap(&id, &wrapped, b"p").unwrap(), b"data-key");
        ring.replace(&[master(2), master(1)]).unwrap();
        assert_eq!(ring.current_id(), k2);
        assert!(ring.unwrap(&id, &wrapped, b"p").is_err());
    }

    #[test]
    fn data_keys_seal_and_blind_indexes_are_keyed() {
        let (k, raw) = DataKey::generate().unwrap();
        let sealed = k.seal(b"Taro Yamada", b"p1").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"Taro "));
        let again = DataKey::from_raw(&raw).unwrap();
        assert_eq!(&*again.open(&sealed, b"p1").unwrap(), b"Taro Yamada");
        assert!(again.open(&sealed, b"p2").is_err());
        let a = blind_index(&[1; 32], "email", "taro@example.com");
        assert_eq!(a, blind_index(&[1; 32], "email", "taro@example.com"));
        assert_ne!(a, blind_index(&[2; 32], "email", "taro@example.com"));
        assert_ne!(a, blind_index(&[1; 32], "user_id", "taro@example.com"));
        assert_eq!(a.len(), 64);
    }
}
