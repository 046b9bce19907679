//! AES-256-GCM sealing of secrets at rest.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::{try_random_bytes, CryptoError, Result};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// AES-256-GCM authenticated encryption with a random 96-bit nonce prefixed
/// to the ciphertext (`nonce || ciphertext || tag`).
#[derive(Clone)]
pub struct SecretBox {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Creates a box from a 32-byte key.
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    /// Creates a box from a key slice, which must be exactly 32 bytes.
    pub fn from_slice(key: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = key
            .try_into()
            .map_err(|_| CryptoError::InvalidKey("SecretBox key must be 32 bytes".into()))?;
        Ok(Self::new(Zeroizing::new(arr)))
    }

    /// Generates a random 32-byte key.
    pub fn generate_key() -> Result<Zeroizing<[u8; 32]>> {
        let bytes = Zeroizing::new(try_random_bytes(32)?);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(key)
    }

    fn cipher(&self) -> Result<Aes256Gcm> {
        Aes256Gcm::new_from_slice(self.key.as_slice())
            .map_err(|_| CryptoError::InvalidKey("AES-256 key".into()))
    }

    /// Encrypts `plaintext`, authenticating the optional associated data.
    pub fn seal(&self, plaintext: &[u8], aad: Option<&[u8]>) -> Result<Vec<u8>> {
        let nonce = try_random_bytes(NONCE_LEN)?;
        let payload = Payload {
            msg: plaintext,
            aad: aad.unwrap_or_default(),
        };
        let ct = self
            .cipher()?
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| CryptoError::Encryption)?;
        let mut out = nonce;
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts and authenticates a value produced by [`SecretBox::seal`]; the
    /// associated data must match. Any failure is [`CryptoError::Decryption`].
    pub fn open(&self, sealed: &[u8], aad: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Decryption);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ct,
            aad: aad.unwrap_or_default(),
        };
        self.cipher()?
            .decrypt(Nonce::from_slice(nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decryption)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let sb = SecretBox::new(SecretBox::generate_key().unwrap());
        let sealed = sb.seal(b"apns key", Some(b"row-1")).unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 8 + TAG_LEN);
        assert_eq!(
            sb.open(&sealed, Some(b"row-1")).unwrap().as_slice(),
            b"apns key"
        );
        // Wrong associated data.
        assert!(sb.open(&sealed, Some(b"row-2")).is_err());
        assert!(sb.open(&sealed, None).is_err());
        // Every flipped byte is detected.
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(sb.open(&t, Some(b"row-1")).is_err(), "byte {i}");
        }
        // Truncation and other keys.
        assert!(sb.open(&sealed[..10], Some(b"row-1")).is_err());
        let other = SecretBox::new(SecretBox::generate_key().unwrap());
        assert!(other.open(&sealed, Some(b"row-1")).is_err());
        // Fresh nonce each time.
        assert_ne!(sb.seal(b"x", None).unwrap(), sb.seal(b"x", None).unwrap());
        assert_eq!(format!("{sb:?}"), "SecretBox(..)");
        assert!(SecretBox::from_slice(&[0u8; 31]).is_err());
        assert!(SecretBox::from_slice(&[0u8; 32]).is_ok());
    }
}
