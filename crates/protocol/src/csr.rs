//! PKCS#10 certificate signing requests (RFC 2986) for SCEP.

use der::asn1::{
    AnyRef, BitString, BitStringRef, ObjectIdentifier, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use der::{Any, Decode, Encode, Sequence, Tag, Tagged};
use mamori_crypto::{
    public_key_kind, verify_signature, DigestAlg, KeyKind, RsaPrivateKey, SignatureAlg,
};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::cms::{oids, PkiError, Result};

/// Minimum accepted RSA modulus size.
pub const MIN_RSA_BITS: usize = 2048;

const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// A parsed and signature-checked CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    /// First subject common name, if any.
    pub subject_cn: Option<String>,
    /// DER `SubjectPublicKeyInfo` of the requested key.
    pub spki_der: Vec<u8>,
    /// challengePassword attribute (PrintableString, UTF8String or IA5String).
    pub challenge_password: Option<String>,
    /// The CSR DER as received.
    pub der: Vec<u8>,
}

/// CSR with the CertificationRequestInfo kept as raw bytes (the signed bytes).
#[derive(Sequence)]
struct RawCsr<'a> {
    info: AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitStringRef<'a>,
}

fn invalid(msg: impl Into<String>) -> PkiError {
    PkiError::InvalidCsr(msg.into())
}

/// Parses a DER PKCS#10 CSR, verifies its self-signature (proof of
/// possession) and rejects RSA keys smaller than [`MIN_RSA_BITS`].
pub fn parse_csr(der: &[u8]) -> Result<Csr> {
    let raw = RawCsr::from_der(der).map_err(|e| invalid(format!("malformed: {e}")))?;
    if raw.info.tag() != Tag::Sequence {
        return Err(invalid("CertificationRequestInfo is not a SEQUENCE"));
    }
    let info_der = raw.info.to_der()?;
    let info = CertReqInfo::from_der(&info_der).map_err(|e| invalid(format!("malformed: {e}")))?;
    let spki_der = info.public_key.to_der()?;
    match public_key_kind(&spki_der).map_err(|e| invalid(e.to_string()))? {
        KeyKind::Rsa { bits } if bits < MIN_RSA_BITS => {
            return Err(invalid(format!(
                "RSA key of {bits} bits is too small (minimum {MIN_RSA_BITS})"
            )))
        }
        _ => {}
    }
    let alg =
        SignatureAlg::from_oids(&raw.algorithm.oid, None).map_err(|e| invalid(e.to_string()))?;
    let sig = raw
        .signature
        .as_bytes()
        .ok_or_else(|| invalid("signature has unused bits"))?;
    verify_signature(&spki_der, alg, &info_der, sig).map_err(|_| invalid("bad self-signature"))?;
    Ok(Csr {
        subject_cn: mamori_crypto::certs::common_name(&info.subject),
        spki_der,
        challenge_password: challenge_password(&info)?,
        der: der.to_vec(),
    })
}

fn challenge_password(info: &CertReqInfo) -> Result<Option<String>> {
    let Some(attr) = info
        .attributes
        .iter()
        .find(|a| a.oid == oids::CHALLENGE_PASSWORD)
    else {
        return Ok(None);
    };
    let value = attr
        .values
        .iter()
        .next()
        .ok_or_else(|| invalid("empty challengePassword"))?;
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
            std::str::from_utf8(value.value())
                .map(|s| Some(s.to_owned()))
                .map_err(|_| invalid("challengePassword is not valid text"))
        }
        other => Err(invalid(format!(
            "unsupported challengePassword type {other}"
        ))),
    }
}

/// A CSR's DER as PEM (`CERTIFICATE REQUEST`).
pub fn csr_to_pem(der: &[u8]) -> String {
    // Base64 encoding of an in-memory buffer cannot fail.
    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, der)
        .unwrap_or_default()
}

/// Builds a CSR for `key` with subject `CN=cn` and an optional
/// challengePassword, signed with sha256WithRSAEncryption (used by the
/// device simulator).
pub fn build_csr(key: &RsaPrivateKey, cn: &str, challenge: Option<&str>) -> Result<Vec<u8>> {
    let atv = AttributeTypeAndValue {
        oid: CN,
        value: Any::encode_from(&Utf8StringRef::new(cn)?)?,
    };
    let subject = RdnSequence(vec![RelativeDistinguishedName(SetOfVec::try_from(vec![
        atv,
    ])?)]);
    let mut attributes = SetOfVec::new();
    if let Some(pw) = challenge {
        let value = match PrintableStringRef::new(pw) {
            Ok(p) => Any::encode_from(&p)?,
            Err(_) => Any::encode_from(&Utf8StringRef::new(pw)?)?,
        };
        attributes.insert(Attribute {
            oid: oids::CHALLENGE_PASSWORD,
            values: SetOfVec::try_from(vec![value])?,
        })?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: SubjectPublicKeyInfoOwned::from_der(&key.public_key_spki_der())?,
        attributes,
    };
    let signature = key.sign_pkcs1(DigestAlg::Sha256, &info.to_der()?)?;
    let csr = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: oids::SHA256_WITH_RSA,
            parameters: Some(Any::from(der::asn1::Null)),
        },
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(csr.to_der()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cms::tests::fixture;
    use crate::cms::tests::keys;

    #[test]
    fn build_and_parse_round_trip() {
        let key = keys::client();
        let der = build_csr(&key, "device-42", Some("s3cret")).unwrap();
        let csr = parse_csr(&der).unwrap();
        assert_eq!(csr.subject_cn.as_deref(), Some("device-42"));
        assert_eq!(csr.challenge_password.as_deref(), Some("s3cret"));
        assert_eq!(csr.spki_der, key.public_key_spki_der());
        assert_eq!(csr.der, der);
        let utf8 = parse_csr(&build_csr(&key, "d", Some("pässwörd")).unwrap()).unwrap();
        assert_eq!(utf8.challenge_password.as_deref(), Some("pässwörd"));
        let none = parse_csr(&build_csr(&key, "d", None).unwrap()).unwrap();
        assert_eq!(none.challenge_password, None);
    }

    #[test]
    fn tampered_and_garbage_rejected() {
        let der = build_csr(&keys::client(), "device-42", Some("s3cret")).unwrap();
        let pos = der.windows(6).position(|w| w == b"s3cret").unwrap();
        let mut bad = der.clone();
        bad[pos] = b'S';
        assert!(matches!(parse_csr(&bad), Err(PkiError::InvalidCsr(_))));
        for n in [0, 1, 10, der.len() / 2, der.len() - 1] {
            assert!(parse_csr(&der[..n]).is_err());
        }
        assert!(parse_csr(b"\x30\x80garbage").is_err());
    }

    #[test]
    fn openssl_csr_with_challenge() {
        let csr = parse_csr(&fixture("csr_challenge.der")).unwrap();
        assert_eq!(csr.subject_cn.as_deref(), Some("openssl-device"));
        assert_eq!(csr.challenge_password.as_deref(), Some("fixture-challenge"));
    }

    #[test]
    fn small_rsa_key_rejected() {
        let err = parse_csr(&fixture("csr_rsa1024.der")).unwrap_err();
        assert!(err.to_string().contains("1024 bits is too small"), "{err}");
    }
}
