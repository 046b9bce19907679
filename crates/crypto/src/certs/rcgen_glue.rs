//! Adapter letting rcgen sign through [`RsaPrivateKey`] (aws-lc-rs), so the
//! private key never leaves this crate's key type.

use der::asn1::OctetString;
use der::Encode;
use rcgen::{CustomExtension, KeyPair, RemoteKeyPair, SignatureAlgorithm, PKCS_RSA_SHA256};

use crate::{sha1, CryptoError, DigestAlg, Result, RsaPrivateKey};

struct Signer(RsaPrivateKey);

impl RemoteKeyPair for Signer {
    fn public_key(&self) -> &[u8] {
        self.0.public_key_pkcs1_der()
    }

    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        self.0
            .sign_pkcs1(DigestAlg::Sha256, msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

/// An rcgen key pair whose signatures (sha256WithRSAEncryption) are made by `key`.
pub(crate) fn rcgen_key(key: &RsaPrivateKey) -> Result<KeyPair> {
    KeyPair::from_remote(Box::new(Signer(key.clone()))).map_err(rcgen_err)
}

pub(crate) fn rcgen_err(e: rcgen::Error) -> CryptoError {
    CryptoError::Certificate(e.to_string())
}

/// subjectKeyIdentifier extension (RFC 5280 method 1: SHA-1 of the key bits).
pub(crate) fn ski_extension(public_key_bits: &[u8]) -> Result<CustomExtension> {
    let content = OctetString::new(sha1(public_key_bits).to_vec())?.to_der()?;
    Ok(CustomExtension::from_oid_content(&[2, 5, 29, 14], content))
}

/// Critical basicConstraints `CA:FALSE`, DER-encoded as an empty SEQUENCE.
pub(crate) fn end_entity_basic_constraints() -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
    ext.set_criticality(true);
    ext
}
