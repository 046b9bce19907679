//! Mamori cryptography: the only crate that touches private keys.
//!
//! Every RSA private-key operation (signing, PKCS#1 v1.5 decryption) goes
//! through aws-lc-rs, whose RSA implementation is constant-time. Symmetric
//! ciphers and hashes come from RustCrypto; ASN.1 is handled with the
//! `der`/`x509-cert`/`spki` crates and certificates are built with `rcgen`.

pub mod certs;
mod ec;
mod error;
mod hash;
pub mod password;
mod rsa;
mod secretbox;
pub mod stream;
pub mod totp;
mod verify;

pub use ec::EcPrivateKey;
pub use error::{CryptoError, Result};
pub use hash::{
    constant_time_eq, hmac_sha256, random_bytes, random_serial, sha1, sha256, sha256_hex,
    try_random_bytes,
};
pub use rsa::{encrypt_pkcs1v15, DigestAlg, RsaPrivateKey};
pub use secretbox::SecretBox;
pub use verify::{oids, public_key_kind, verify_signature, KeyKind, SignatureAlg};

/// Object identifier type used throughout the public API (re-exported from `spki`/`const-oid`).
pub use spki::ObjectIdentifier;
