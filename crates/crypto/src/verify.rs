//! Public-key signature verification (aws-lc-rs) and SPKI inspection.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::UintRef;
use der::{Decode, Sequence};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

use crate::{CryptoError, Result};

/// Well-known OIDs used for signature algorithm mapping.
pub mod oids {
    use spki::ObjectIdentifier;

    /// rsaEncryption.
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// sha1WithRSAEncryption.
    pub const SHA1_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// sha384WithRSAEncryption.
    pub const SHA384_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// sha512WithRSAEncryption.
    pub const SHA512_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    /// id-ecPublicKey.
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// ecdsa-with-SHA256.
    pub const ECDSA_WITH_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// ecdsa-with-SHA384.
    pub const ECDSA_WITH_SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// secp256r1 / P-256.
    pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1 / P-384.
    pub const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    /// id-sha1.
    pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    /// id-sha256.
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// id-sha384.
    pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// id-sha512.
    pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
}

/// Signature algorithms accepted for verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlg {
    /// RSA PKCS#1 v1.5 with SHA-1 (legacy; 1024..8192-bit keys accepted).
    RsaPkcs1Sha1,
    /// RSA PKCS#1 v1.5 with SHA-256 (2048..8192-bit keys).
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 with SHA-384 (2048..8192-bit keys).
    RsaPkcs1Sha384,
    /// RSA PKCS#1 v1.5 with SHA-512 (2048..8192-bit keys).
    RsaPkcs1Sha512,
    /// ECDSA P-256 with SHA-256, ASN.1 DER signature.
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384, ASN.1 DER signature.
    EcdsaP384Sha384,
}

impl SignatureAlg {
    /// Maps the signature algorithm OID (and, for bare `rsaEncryption` as used in
    /// CMS, the digest algorithm OID) to a [`SignatureAlg`].
    pub fn from_oids(
        sig_alg: &ObjectIdentifier,
        digest: Option<&ObjectIdentifier>,
    ) -> Result<Self> {
        let alg = match *sig_alg {
            oids::SHA1_WITH_RSA => Self::RsaPkcs1Sha1,
            oids::SHA256_WITH_RSA => Self::RsaPkcs1Sha256,
            oids::SHA384_WITH_RSA => Self::RsaPkcs1Sha384,
            oids::SHA512_WITH_RSA => Self::RsaPkcs1Sha512,
            oids::ECDSA_WITH_SHA256 => Self::EcdsaP256Sha256,
            oids::ECDSA_WITH_SHA384 => Self::EcdsaP384Sha384,
            oids::RSA_ENCRYPTION => match digest.copied() {
                Some(oids::SHA1) => Self::RsaPkcs1Sha1,
                Some(oids::SHA256) => Self::RsaPkcs1Sha256,
                Some(oids::SHA384) => Self::RsaPkcs1Sha384,
                Some(oids::SHA512) => Self::RsaPkcs1Sha512,
                other => {
                    return Err(CryptoError::UnsupportedAlgorithm(format!(
                        "rsaEncryption with digest {other:?}"
                    )))
                }
            },
            other => {
                return Err(CryptoError::UnsupportedAlgorithm(format!(
                    "signature algorithm {other}"
                )))
            }
        };
        Ok(alg)
    }

    fn aws_alg(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::RsaPkcs1Sha1 => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            Self::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::RsaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
        }
    }

    fn key_matches(self, kind: KeyKind) -> bool {
        match self {
            Self::RsaPkcs1Sha1
            | Self::RsaPkcs1Sha256
            | Self::RsaPkcs1Sha384
            | Self::RsaPkcs1Sha512 => matches!(kind, KeyKind::Rsa { .. }),
            Self::EcdsaP256Sha256 => kind == KeyKind::EcP256,
            Self::EcdsaP384Sha384 => kind == KeyKind::EcP384,
        }
    }
}

/// The kind of public key found in a `SubjectPublicKeyInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with the given modulus size in bits.
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// Parses a DER `SubjectPublicKeyInfo` and reports its key type (and RSA size).
pub fn public_key_kind(spki_der: &[u8]) -> Result<KeyKind> {
    Ok(parse_spki(spki_der)?.0)
}

fn parse_spki(spki_der: &[u8]) -> Result<(KeyKind, &[u8])> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| CryptoError::InvalidKey(format!("SubjectPublicKeyInfo: {e}")))?;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CryptoError::InvalidKey("public key has unused bits".into()))?;
    let kind = match spki.algorithm.oid {
        oids::RSA_ENCRYPTION => {
            let rsa = RsaPublicKey::from_der(key)
                .map_err(|e| CryptoError::InvalidKey(format!("RSAPublicKey: {e}")))?;
            let _ = rsa.public_exponent;
            KeyKind::Rsa {
                bits: uint_bits(rsa.modulus.as_bytes()),
            }
        }
        oids::EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(oids::P256) => KeyKind::EcP256,
                Some(oids::P384) => KeyKind::EcP384,
                other => {
                    return Err(CryptoError::UnsupportedAlgorithm(format!(
                        "EC curve {other:?}"
                    )))
                }
            }
        }
        other => {
            return Err(CryptoError::UnsupportedAlgorithm(format!(
                "public key {other}"
            )))
        }
    };
    Ok((kind, key))
}

fn uint_bits(be: &[u8]) -> usize {
    match be.iter().position(|b| *b != 0) {
        Some(i) => {
            let rest = be.len() - i - 1;
            let lead = be.get(i).map_or(0, |b| 8 - b.leading_zeros() as usize);
            rest * 8 + lead
        }
        None => 0,
    }
}

/// Verifies `sig` over `msg` with the public key in `spki_der` (DER
/// `SubjectPublicKeyInfo`). The key type must match the algorithm.
pub fn verify_signature(spki_der: &[u8], alg: SignatureAlg, msg: &[u8], sig: &[u8]) -> Result<()> {
    let (kind, key) = parse_spki(spki_der)?;
    if !alg.key_matches(kind) {
        return Err(CryptoError::UnsupportedAlgorithm(format!(
            "{alg:?} does not match a {kind:?} key"
        )));
    }
    UnparsedPublicKey::new(alg.aws_alg(), key)
        .verify(msg, sig)
        .map_err(|_| CryptoError::BadSignature)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};

    #[test]
    fn oid_mapping() {
        use oids::*;
        let m = |s, d: Option<&ObjectIdentifier>| SignatureAlg::from_oids(&s, d).unwrap();
        assert_eq!(m(SHA256_WITH_RSA, None), SignatureAlg::RsaPkcs1Sha256);
        assert_eq!(m(SHA1_WITH_RSA, None), SignatureAlg::RsaPkcs1Sha1);
        assert_eq!(m(RSA_ENCRYPTION, Some(&SHA1)), SignatureAlg::RsaPkcs1Sha1);
        assert_eq!(
            m(RSA_ENCRYPTION, Some(&SHA512)),
            SignatureAlg::RsaPkcs1Sha512
        );
        assert_eq!(m(ECDSA_WITH_SHA384, None), SignatureAlg::EcdsaP384Sha384);
        assert!(SignatureAlg::from_oids(&RSA_ENCRYPTION, None).is_err());
        assert!(SignatureAlg::from_oids(&P256, None).is_err());
    }

    #[test]
    fn ecdsa_p256_verification() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let sig = kp.sign(&rng, b"msg").unwrap();
        // Build the SPKI with rcgen, which knows the EC encoding.
        let spki = rcgen::KeyPair::try_from(pkcs8.as_ref())
            .unwrap()
            .public_key_der();
        assert_eq!(public_key_kind(&spki).unwrap(), KeyKind::EcP256);
        let _ = kp.public_key();
        verify_signature(&spki, SignatureAlg::EcdsaP256Sha256, b"msg", sig.as_ref()).unwrap();
        assert!(
            verify_signature(&spki, SignatureAlg::EcdsaP256Sha256, b"msh", sig.as_ref()).is_err()
        );
        assert!(
            verify_signature(&spki, SignatureAlg::RsaPkcs1Sha256, b"msg", sig.as_ref()).is_err()
        );
        assert!(
            verify_signature(&spki, SignatureAlg::EcdsaP384Sha384, b"msg", sig.as_ref()).is_err()
        );
    }

    #[test]
    fn garbage_spki() {
        assert!(public_key_kind(b"").is_err());
        assert!(public_key_kind(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(verify_signature(b"\x30\x00", SignatureAlg::RsaPkcs1Sha1, b"", b"").is_err());
    }

    #[test]
    fn bit_counting() {
        assert_eq!(uint_bits(&[0x80, 0]), 16);
        assert_eq!(uint_bits(&[0x01, 0]), 9);
        assert_eq!(uint_bits(&[0, 0x7f]), 7);
        assert_eq!(uint_bits(&[]), 0);
    }
}
