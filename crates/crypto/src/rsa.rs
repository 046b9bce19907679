//! RSA private keys (aws-lc-rs) and PKCS#1 v1.5 public-key encryption.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use aws_lc_rs::signature::KeyPair as _;
use zeroize::Zeroizing;

use crate::{CryptoError, Result};

const PKCS8_LABEL: &str = "PRIVATE KEY";
const PKCS1_LABEL: &str = "RSA PRIVATE KEY";

/// Digest used for RSA PKCS#1 v1.5 signatures and CMS message digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-1: legacy SCEP / Mdm-Signature clients only.
    Sha1,
    /// SHA-256.
    Sha256,
}

struct Inner {
    signing: KeyPair,
    decrypting: Pkcs1PrivateDecryptingKey,
    pkcs8: Zeroizing<Vec<u8>>,
    spki_der: Vec<u8>,
    pkcs1_public: Vec<u8>,
}

/// An RSA private key held by aws-lc-rs. Cheap to clone (shared, immutable).
///
/// `Debug` never prints key material.
#[derive(Clone)]
pub struct RsaPrivateKey {
    inner: Arc<Inner>,
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaPrivateKey(..)")
    }
}

impl RsaPrivateKey {
    /// Generates a fresh 2048-bit RSA key.
    pub fn generate_2048() -> Result<Self> {
        let kp = KeyPair::generate(KeySize::Rsa2048).map_err(|_| CryptoError::KeyGeneration)?;
        let der = kp.as_der().map_err(|_| CryptoError::KeyGeneration)?;
        Self::from_pkcs8_der(der.as_ref())
    }

    /// Loads an unencrypted PKCS#8 (`PrivateKeyInfo`) DER RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let signing =
            KeyPair::from_pkcs8(der).map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
        let decrypting = Pkcs1PrivateDecryptingKey::new(decrypting)
            .map_err(|_| CryptoError::InvalidKey("not usable for decryption".into()))?;
        let spki_der = signing
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::InvalidKey("cannot encode public key".into()))?
            .as_ref()
            .to_vec();
        let pkcs1_public = signing.public_key().as_ref().to_vec();
        Ok(Self {
            inner: Arc::new(Inner {
                signing,
                decrypting,
                pkcs8: Zeroizing::new(der.to_vec()),
                spki_der,
                pkcs1_public,
            }),
        })
    }

    /// Loads a PEM key: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let (label, der) =
            der::pem::decode_vec(pem.as_bytes()).map_err(|e| CryptoError::Pem(e.to_string()))?;
        let der = Zeroizing::new(der);
        match label {
            PKCS8_LABEL => Self::from_pkcs8_der(&der),
            PKCS1_LABEL => {
                let kp =
                    KeyPair::from_der(&der).map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
                let pkcs8 = kp
                    .as_der()
                    .map_err(|_| CryptoError::InvalidKey("cannot re-encode key".into()))?;
                Self::from_pkcs8_der(pkcs8.as_ref())
            }
            other => Err(CryptoError::Pem(format!("unexpected PEM label {other:?}"))),
        }
    }

    /// The key as a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        // Encoding a bounded byte string as base64 cannot fail; fall back to empty.
        Zeroizing::new(
            der::pem::encode_string(PKCS8_LABEL, der::pem::LineEnding::LF, &self.inner.pkcs8)
                .unwrap_or_default(),
        )
    }

    /// The key as PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.inner.pkcs8.clone()
    }

    /// The public key as DER `SubjectPublicKeyInfo`.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.inner.spki_der.clone()
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (the SPKI bit-string contents).
    pub fn public_key_pkcs1_der(&self) -> &[u8] {
        &self.inner.pkcs1_public
    }

    /// Modulus length in bits.
    pub fn modulus_bits(&self) -> usize {
        self.inner.signing.public_modulus_len() * 8
    }

    /// RSA PKCS#1 v1.5 signature over `msg` (hashed with `alg`).
    ///
    /// aws-lc-rs exposes no PKCS#1 v1.5 SHA-1 *signing* (only verification), and
    /// private-key operations must not use any other implementation, so
    /// [`DigestAlg::Sha1`] returns [`CryptoError::UnsupportedAlgorithm`].
    pub fn sign_pkcs1(&self, alg: DigestAlg, msg: &[u8]) -> Result<Vec<u8>> {
        let encoding = match alg {
            DigestAlg::Sha256 => &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            DigestAlg::Sha1 => {
                return Err(CryptoError::UnsupportedAlgorithm(
                    "RSA PKCS#1 v1.5 signing with SHA-1 (not offered by aws-lc-rs)".into(),
                ))
            }
        };
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.inner.signing.public_modulus_len()];
        self.inner
            .signing
            .sign(encoding, &rng, msg, &mut sig)
            .map_err(|_| CryptoError::Signing)?;
        Ok(sig)
    }

    /// RSA PKCS#1 v1.5 decryption (constant-time in aws-lc).
    ///
    /// All failures map to the same [`CryptoError::Decryption`].
    pub fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let key = &self.inner.decrypting;
        if ciphertext.len() != key.key_size_bytes() {
            return Err(CryptoError::Decryption);
        }
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let len = key
            .decrypt(ciphertext, &mut out)
            .map_err(|_| CryptoError::Decryption)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

/// RSA PKCS#1 v1.5 encryption of `plaintext` to the RSA key in `spki_der`.
pub fn encrypt_pkcs1v15(spki_der: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let public = PublicEncryptingKey::from_der(spki_der)
        .map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
    let key = Pkcs1PublicEncryptingKey::new(public).map_err(|_| CryptoError::Encryption)?;
    if plaintext.len() > key.max_plaintext_size() {
        return Err(CryptoError::Encryption);
    }
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(plaintext, &mut out)
        .map_err(|_| CryptoError::Encryption)?
        .len();
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{verify_signature, SignatureAlg};
    use std::sync::OnceLock;

    /// One shared key: RSA generation is slow in debug builds.
    pub(crate) fn test_key() -> RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::generate_2048().unwrap())
            .clone()
    }

    #[test]
    fn pem_round_trip_and_debug() {
        let key = test_key();
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.public_key_spki_der(), key.public_key_spki_der());
        assert_eq!(format!("{back:?}"), "RsaPrivateKey(..)");
        assert_eq!(key.modulus_bits(), 2048);
    }

    #[test]
    fn bad_keys_rejected() {
        assert!(RsaPrivateKey::from_pkcs8_der(b"garbage").is_err());
        assert!(RsaPrivateKey::from_pkcs8_pem("not pem").is_err());
        let wrong_label =
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &key_der()).unwrap();
        assert!(matches!(
            RsaPrivateKey::from_pkcs8_pem(&wrong_label),
            Err(CryptoError::Pem(_))
        ));
    }

    fn key_der() -> Vec<u8> {
        test_key().to_pkcs8_der().to_vec()
    }

    #[test]
    fn sign_and_verify_sha256() {
        let key = test_key();
        let sig = key.sign_pkcs1(DigestAlg::Sha256, b"hello").unwrap();
        let spki = key.public_key_spki_der();
        verify_signature(&spki, SignatureAlg::RsaPkcs1Sha256, b"hello", &sig).unwrap();
        assert!(verify_signature(&spki, SignatureAlg::RsaPkcs1Sha256, b"hellp", &sig).is_err());
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(verify_signature(&spki, SignatureAlg::RsaPkcs1Sha256, b"hello", &bad).is_err());
        assert!(verify_signature(&spki, SignatureAlg::RsaPkcs1Sha1, b"hello", &sig).is_err());
    }

    #[test]
    fn sha1_signing_is_unsupported() {
        assert!(matches!(
            test_key().sign_pkcs1(DigestAlg::Sha1, b"x"),
            Err(CryptoError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn pkcs1_encrypt_decrypt_round_trip() {
        let key = test_key();
        let ct = encrypt_pkcs1v15(&key.public_key_spki_der(), b"content key 0123").unwrap();
        assert_eq!(ct.len(), 256);
        let pt = key.decrypt_pkcs1v15(&ct).unwrap();
        assert_eq!(pt.as_slice(), b"content key 0123");
        let mut bad = ct.clone();
        bad[0] ^= 0x55;
        bad[100] ^= 0x55;
        assert!(key.decrypt_pkcs1v15(&bad).is_err());
        assert!(key.decrypt_pkcs1v15(&ct[1..]).is_err());
        assert!(encrypt_pkcs1v15(b"junk", b"x").is_err());
        assert!(encrypt_pkcs1v15(&key.public_key_spki_der(), &[0u8; 300]).is_err());
    }
}
