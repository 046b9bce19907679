//! ECDSA P-256 keys, used for the TLS server certificate: a P-256 handshake
//! costs the server a fraction of an RSA-2048 one, and devices open a TLS
//! connection for every session.

use crate::{CryptoError, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use zeroize::Zeroizing;

/// An ECDSA P-256 private key (PKCS#8).
pub struct EcPrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    spki: Vec<u8>,
}

impl std::fmt::Debug for EcPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EcPrivateKey(..)")
    }
}

impl EcPrivateKey {
    /// Generates a fresh P-256 key.
    pub fn generate_p256() -> Result<Self> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| CryptoError::KeyGeneration)?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Loads a PKCS#8 DER P-256 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|_| CryptoError::InvalidKey("not a P-256 PKCS#8 key".into()))?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::InvalidKey("P-256 public key".into()))?
            .as_ref()
            .to_vec();
        Ok(Self {
            pkcs8: Zeroizing::new(der.to_vec()),
            spki,
        })
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8) P-256 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let (label, der) =
            der::pem::decode_vec(pem.as_bytes()).map_err(|e| CryptoError::Pem(e.to_string()))?;
        let der = Zeroizing::new(der);
        if label != "PRIVATE KEY" {
            return Err(CryptoError::Pem(format!("unexpected PEM label {label:?}")));
        }
        Self::from_pkcs8_der(&der)
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        // Encoding a bounded byte string as base64 cannot fail; fall back to empty.
        Zeroizing::new(
            der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &self.pkcs8)
                .unwrap_or_default(),
        )
    }

    /// SubjectPublicKeyInfo DER of the public key.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.spki.clone()
    }

    /// ECDSA P-256 with SHA-256 signature (ASN.1 DER) of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.pkcs8)
            .map_err(|_| CryptoError::InvalidKey("not a P-256 PKCS#8 key".into()))?;
        pair.sign(&SystemRandom::new(), msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CryptoError::Signing)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_through_pem() {
        let k = EcPrivateKey::generate_p256().unwrap();
        let again = EcPrivateKey::from_pkcs8_pem(&k.to_pkcs8_pem()).unwrap();
        assert_eq!(k.public_key_spki_der(), again.public_key_spki_der());
        assert_eq!(
            crate::public_key_kind(&k.public_key_spki_der()).unwrap(),
            crate::KeyKind::EcP256
        );
        assert!(format!("{k:?}").contains(".."));
        assert!(EcPrivateKey::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
    }
}
