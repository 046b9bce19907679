//! Certificate parsing with `x509-cert`.

use der::asn1::{AnyRef, BitString, OctetString};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier};
use time::OffsetDateTime;
use x509_cert::certificate::TbsCertificate;
use x509_cert::name::Name;
use x509_cert::time::Time;

use crate::{sha256_hex, CryptoError, Result};

const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");

/// The fields of an X.509 certificate that Mamori needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCert {
    /// DER INTEGER content octets of the serial (a leading `0x00` appears when
    /// the top bit of the magnitude is set).
    pub serial: Vec<u8>,
    /// First common name of the subject, if it is a text string.
    pub subject_cn: Option<String>,
    /// DER of the subject `Name`.
    pub subject_der: Vec<u8>,
    /// DER of the issuer `Name`.
    pub issuer_der: Vec<u8>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// DER `SubjectPublicKeyInfo`.
    pub spki_der: Vec<u8>,
    /// Subject key identifier extension value, if present.
    pub subject_key_id: Option<Vec<u8>>,
    /// Exact DER of the `TBSCertificate` (the signed bytes).
    pub tbs_der: Vec<u8>,
    /// Outer `signatureAlgorithm` OID.
    pub signature_alg_oid: ObjectIdentifier,
    /// `TBSCertificate.signature` OID (must equal the outer one).
    pub tbs_signature_alg_oid: ObjectIdentifier,
    /// Signature bytes.
    pub signature: Vec<u8>,
    /// Lower-case hex SHA-256 of the whole certificate DER.
    pub fingerprint_sha256_hex: String,
    /// The whole certificate DER.
    pub der: Vec<u8>,
}

/// Certificate split into raw TBS bytes + signature, so the signed bytes are
/// exactly those of the input (never a re-encoding).
#[derive(Sequence)]
struct RawCertificate<'a> {
    tbs: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

fn cert_err(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Certificate(e.to_string())
}

/// Parses a DER X.509 certificate (no trust decisions are made here).
pub fn parse_cert(der: &[u8]) -> Result<ParsedCert> {
    let raw = RawCertificate::from_der(der).map_err(cert_err)?;
    if raw.tbs.tag() != Tag::Sequence {
        return Err(cert_err("TBSCertificate is not a SEQUENCE"));
    }
    let tbs_der = raw.tbs.to_der().map_err(cert_err)?;
    let tbs = TbsCertificate::from_der(&tbs_der).map_err(cert_err)?;
    let signature = raw
        .signature
        .as_bytes()
        .ok_or_else(|| cert_err("signature has unused bits"))?
        .to_vec();
    Ok(ParsedCert {
        serial: tbs.serial_number.as_bytes().to_vec(),
        subject_cn: common_name(&tbs.subject),
        subject_der: tbs.subject.to_der().map_err(cert_err)?,
        issuer_der: tbs.issuer.to_der().map_err(cert_err)?,
        not_before: to_offset(tbs.validity.not_before)?,
        not_after: to_offset(tbs.validity.not_after)?,
        spki_der: tbs.subject_public_key_info.to_der().map_err(cert_err)?,
        subject_key_id: subject_key_id(&tbs)?,
        signature_alg_oid: raw.signature_algorithm.oid,
        tbs_signature_alg_oid: tbs.signature.oid,
        tbs_der,
        signature,
        fingerprint_sha256_hex: sha256_hex(der),
        der: der.to_vec(),
    })
}

fn to_offset(t: Time) -> Result<OffsetDateTime> {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).map_err(cert_err)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(cert_err)
}

fn subject_key_id(tbs: &TbsCertificate) -> Result<Option<Vec<u8>>> {
    let Some(exts) = &tbs.extensions else {
        return Ok(None);
    };
    match exts.iter().find(|e| e.extn_id == SKI) {
        Some(ext) => {
            let id = OctetString::from_der(ext.extn_value.as_bytes()).map_err(cert_err)?;
            Ok(Some(id.as_bytes().to_vec()))
        }
        None => Ok(None),
    }
}

/// The first common name in `name`, if it is a UTF8/Printable/IA5/Teletex string.
pub fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .and_then(|atv| match atv.value.tag() {
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
                std::str::from_utf8(atv.value.value())
                    .ok()
                    .map(str::to_owned)
            }
            _ => None,
        })
}

/// The first common name of a DER-encoded `Name`.
pub fn common_name_from_der(name_der: &[u8]) -> Result<Option<String>> {
    let name = Name::from_der(name_der).map_err(cert_err)?;
    Ok(common_name(&name))
}
