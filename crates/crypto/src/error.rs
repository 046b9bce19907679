//! Error type of the crypto crate.

/// Errors returned by every fallible function of this crate.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A private or public key could not be parsed or was rejected.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Key generation failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// A signing operation failed.
    #[error("signing failed")]
    Signing,
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// RSA or AEAD decryption failed (deliberately unspecific).
    #[error("decryption failed")]
    Decryption,
    /// RSA or AEAD encryption failed.
    #[error("encryption failed")]
    Encryption,
    /// The requested algorithm (or OID combination) is not supported.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// PEM decoding/encoding failed or the PEM label was unexpected.
    #[error("PEM error: {0}")]
    Pem(String),
    /// DER decoding/encoding failed.
    #[error("DER error: {0}")]
    Der(String),
    /// Certificate generation or parsing failed.
    #[error("certificate error: {0}")]
    Certificate(String),
    /// The certificate was not issued by the expected CA.
    #[error("certificate issuer does not match the CA subject")]
    WrongIssuer,
    /// The certificate is not valid yet.
    #[error("certificate is not yet valid")]
    NotYetValid,
    /// The certificate has expired.
    #[error("certificate has expired")]
    Expired,
    /// The requested serial number is not a positive DER INTEGER of at most 20 octets.
    #[error("invalid certificate serial number")]
    InvalidSerial,
    /// The requested validity period is empty or out of range.
    #[error("invalid validity period")]
    InvalidValidity,
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// Reading or writing a stream failed.
    #[error("I/O error: {0}")]
    Io(String),
}

impl From<der::Error> for CryptoError {
    fn from(e: der::Error) -> Self {
        CryptoError::Der(e.to_string())
    }
}

/// Result alias with [`CryptoError`].
pub type Result<T> = std::result::Result<T, CryptoError>;
