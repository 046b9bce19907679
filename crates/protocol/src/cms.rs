//! PKCS#7 / CMS (RFC 5652) building blocks for SCEP and `Mdm-Signature`:
//! SignedData verification and signing, certs-only ("degenerate") SignedData,
//! and EnvelopedData with RSA key transport.
//!
//! Inbound messages may be BER (indefinite lengths, constructed OCTET
//! STRINGs, as sent by Apple devices); they are normalised to DER first, which
//! leaves DER input untouched. Signed attributes and certificates are then
//! handled as exact bytes, never re-encoded, so signatures verify
//! byte-for-byte. Malformed input yields [`PkiError::Der`], never a panic.
//! All RSA private-key operations are delegated to `mamori-crypto`.

pub(crate) mod ber;
mod enveloped;
mod raw;
mod signed;

use der::asn1::ObjectIdentifier;
use mamori_crypto::{CryptoError, DigestAlg};
use sha2::Digest as _;

pub use enveloped::{decrypt_enveloped, encrypt_enveloped, ContentEncryptionAlg};
pub(crate) use signed::{build_signed, SignFn, SignParams};
pub use signed::{
    certs_from_degenerate, degenerate_certs_only, sign_attached, sign_detached, signer_certificate,
    verify_signed_data, VerifiedSignedData,
};

/// Errors of the CMS, SCEP and CSR modules.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Malformed or non-DER ASN.1 (BER indefinite lengths are not supported).
    #[error("malformed DER: {0}")]
    Der(String),
    /// The ContentInfo/eContent type is not the expected one.
    #[error("unexpected content type {0}")]
    UnexpectedContentType(String),
    /// SignedData has no SignerInfo.
    #[error("SignedData has no signer")]
    NoSigner,
    /// No certificate in SignedData matches the SignerInfo identifier.
    #[error("signer certificate not found in SignedData")]
    SignerCertNotFound,
    /// A required attribute is missing.
    #[error("missing attribute: {0}")]
    MissingAttribute(&'static str),
    /// An attribute value is malformed or repeated.
    #[error("invalid attribute: {0}")]
    InvalidAttribute(String),
    /// The messageDigest attribute does not match the content.
    #[error("message digest mismatch")]
    DigestMismatch,
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Neither encapsulated nor detached content is available, or both were given.
    #[error("content: {0}")]
    Content(&'static str),
    /// Unsupported algorithm (digest, key transport, content encryption).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// No RecipientInfo is addressed to our certificate.
    #[error("no RecipientInfo matches the recipient certificate")]
    NoMatchingRecipient,
    /// Decryption failed (deliberately unspecific).
    #[error("decryption failed")]
    Decryption,
    /// Single DES content encryption refused by policy.
    #[error("single DES content encryption is not allowed")]
    SingleDesRefused,
    /// The CSR is malformed, its signature is invalid, or its key is too weak.
    #[error("invalid CSR: {0}")]
    InvalidCsr(String),
    /// A SCEP message is malformed or semantically invalid.
    #[error("invalid SCEP message: {0}")]
    Scep(String),
    /// The SCEP transactionID cannot be echoed in a CertRep (which demands a
    /// PrintableString of 1 to 256 characters). Carries the value as
    /// received, for the log only (print it escaped, never raw); the message
    /// does not include it.
    #[error("invalid SCEP message: transactionID is not a PrintableString of 1 to 256 characters")]
    TransactionId(String),
    /// Error from the crypto crate.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<der::Error> for PkiError {
    fn from(e: der::Error) -> Self {
        PkiError::Der(e.to_string())
    }
}

/// Result alias with [`PkiError`].
pub type Result<T> = std::result::Result<T, PkiError>;

/// CMS / PKCS#9 object identifiers.
pub mod oids {
    use der::asn1::ObjectIdentifier as Oid;

    /// id-data.
    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    /// id-signedData.
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    /// id-envelopedData.
    pub const ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
    /// contentType attribute.
    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    /// messageDigest attribute.
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    /// signingTime attribute.
    pub const SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
    /// challengePassword attribute.
    pub const CHALLENGE_PASSWORD: Oid = Oid::new_unwrap("1.2.840.113549.1.9.7");
    /// extensionRequest attribute.
    pub const EXTENSION_REQUEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.14");
    /// rsaEncryption.
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    /// id-sha1.
    pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
    /// id-sha256.
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// id-sha384.
    pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// id-sha512.
    pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// desCBC.
    pub const DES_CBC: Oid = Oid::new_unwrap("1.3.14.3.2.7");
    /// des-ede3-cbc.
    pub const DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
    /// aes128-CBC.
    pub const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
    /// aes192-CBC.
    pub const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
    /// aes256-CBC.
    pub const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
}

/// Digest OID for a signing digest.
pub(crate) fn digest_oid(alg: DigestAlg) -> ObjectIdentifier {
    match alg {
        DigestAlg::Sha1 => oids::SHA1,
        DigestAlg::Sha256 => oids::SHA256,
    }
}

/// Hashes `data` with the digest identified by `oid`.
pub(crate) fn digest_by_oid(oid: &ObjectIdentifier, data: &[u8]) -> Result<Vec<u8>> {
    Ok(match *oid {
        oids::SHA1 => sha1::Sha1::digest(data).to_vec(),
        oids::SHA256 => sha2::Sha256::digest(data).to_vec(),
        oids::SHA384 => sha2::Sha384::digest(data).to_vec(),
        oids::SHA512 => sha2::Sha512::digest(data).to_vec(),
        other => {
            return Err(PkiError::UnsupportedAlgorithm(format!(
                "digest algorithm {other}"
            )))
        }
    })
}

#[cfg(test)]
pub(crate) mod tests;
