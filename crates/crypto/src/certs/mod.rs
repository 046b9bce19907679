//! Certificate authority: CA generation, issuance (rcgen, signed through
//! [`RsaPrivateKey`]), parsing and verification (x509-cert + aws-lc-rs).

mod parse;
mod rcgen_glue;

use std::fmt;
use std::net::IpAddr;

use der::{Decode, Encode};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_cert::name::Name;

pub use parse::{common_name, common_name_from_der, parse_cert, ParsedCert};
use rcgen_glue::{end_entity_basic_constraints, rcgen_err, rcgen_key, ski_extension};

use crate::{
    public_key_kind, random_serial, verify_signature, CryptoError, KeyKind, Result, RsaPrivateKey,
    SignatureAlg,
};

const CERT_LABEL: &str = "CERTIFICATE";
/// Backdating applied to `notBefore` of generated certificates (clock skew).
const BACKDATE: Duration = Duration::hours(1);

/// What an issued certificate may be used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProfile {
    /// Device identity: KU digitalSignature + keyEncipherment, EKU clientAuth.
    DeviceIdentity,
    /// SCEP registration authority: KU digitalSignature + keyEncipherment.
    ScepRa,
    /// TLS server: KU digitalSignature + keyEncipherment, EKU serverAuth, SANs.
    TlsServer {
        /// DNS subjectAltNames.
        dns_names: Vec<String>,
        /// IP subjectAltNames.
        ip_addrs: Vec<IpAddr>,
    },
}

/// Parameters of a certificate to issue for a foreign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// Subject common name (already sanitized by the caller).
    pub subject_cn: String,
    /// Requester's DER `SubjectPublicKeyInfo` (RSA ≥ 2048 bits or EC P-256/P-384).
    pub spki_der: Vec<u8>,
    /// Canonical positive DER INTEGER content, 1..=20 bytes (see [`crate::random_serial`]).
    pub serial: Vec<u8>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Usage profile.
    pub profile: CertProfile,
}

/// A CA certificate and its private key.
#[derive(Clone)]
pub struct CertAuthority {
    /// CA certificate DER.
    pub cert_der: Vec<u8>,
    /// CA private key.
    pub key: RsaPrivateKey,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority")
            .field("fingerprint_sha256", &self.fingerprint_sha256_hex())
            .finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// Generates a self-signed RSA-2048 CA (basicConstraints CA:true pathlen 0,
    /// KU keyCertSign + cRLSign, SKI) valid for `years` years.
    pub fn generate(common_name: &str, years: u32) -> Result<Self> {
        if years == 0 || years > 100 {
            return Err(CryptoError::InvalidValidity);
        }
        let key = RsaPrivateKey::generate_2048()?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(365 * i64::from(years));
        let cert = params.self_signed(&rcgen_key(&key)?).map_err(rcgen_err)?;
        Ok(Self {
            cert_der: cert.der().to_vec(),
            key,
        })
    }

    /// Loads a CA from a PEM certificate and a PEM private key; the key must
    /// match the certificate's public key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let cert_der = cert_der_from_pem(cert_pem)?;
        let key = RsaPrivateKey::from_pkcs8_pem(key_pem)?;
        let parsed = parse_cert(&cert_der)?;
        if parsed.spki_der != key.public_key_spki_der() {
            return Err(CryptoError::InvalidKey(
                "CA key does not match the CA certificate".into(),
            ));
        }
        check_simple_name(&parsed.subject_der)?;
        Ok(Self { cert_der, key })
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        cert_to_pem(&self.cert_der)
    }

    /// Lower-case hex SHA-256 fingerprint of the CA certificate.
    pub fn fingerprint_sha256_hex(&self) -> String {
        crate::sha256_hex(&self.cert_der)
    }

    /// Issues a certificate for `req.spki_der`, signed with sha256WithRSAEncryption,
    /// with AKI (= CA SKI) and SKI extensions. Returns the certificate DER.
    pub fn issue(&self, req: &IssueRequest) -> Result<Vec<u8>> {
        validate_serial(&req.serial)?;
        if req.not_after <= req.not_before {
            return Err(CryptoError::InvalidValidity);
        }
        check_subject_key(&req.spki_der)?;
        let ca_parsed = parse_cert(&self.cert_der)?;
        check_simple_name(&ca_parsed.subject_der)?;
        let ca_params =
            CertificateParams::from_ca_cert_der(&CertificateDer::from(self.cert_der.as_slice()))
                .map_err(rcgen_err)?;
        let ca_key = rcgen_key(&self.key)?;
        // rcgen needs an issuer `Certificate`; re-signing the CA params only
        // rebuilds it in memory (name, key identifier), it is never published.
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_err)?;
        let public = rcgen::SubjectPublicKeyInfo::from_der(&req.spki_der).map_err(rcgen_err)?;

        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&req.subject_cn);
        params.serial_number = Some(SerialNumber::from_slice(&req.serial));
        params.not_before = req.not_before;
        params.not_after = req.not_after;
        params.is_ca = IsCa::NoCa;
        params.use_authority_key_identifier_extension = true;
        params.custom_extensions = vec![
            end_entity_basic_constraints(),
            ski_extension(public.der_bytes())?,
        ];
        apply_profile(&mut params, &req.profile)?;
        let cert = params
            .signed_by(&public, &ca_cert, &ca_key)
            .map_err(rcgen_err)?;
        let der = cert.der().to_vec();
        if parse_cert(&der)?.issuer_der != ca_parsed.subject_der {
            return Err(CryptoError::Certificate(
                "issued certificate issuer does not match the CA subject".into(),
            ));
        }
        Ok(der)
    }

    /// Checks that `cert_der` was issued by this CA and is valid at `now`:
    /// issuer name equals the CA subject, the signature verifies with the CA
    /// key, and `not_before <= now <= not_after`.
    pub fn verify_issued(&self, cert_der: &[u8], now: OffsetDateTime) -> Result<ParsedCert> {
        let ca = parse_cert(&self.cert_der)?;
        let cert = parse_cert(cert_der)?;
        if cert.issuer_der != ca.subject_der {
            return Err(CryptoError::WrongIssuer);
        }
        if cert.signature_alg_oid != cert.tbs_signature_alg_oid {
            return Err(CryptoError::BadSignature);
        }
        let alg = SignatureAlg::from_oids(&cert.signature_alg_oid, None)?;
        verify_signature(&ca.spki_der, alg, &cert.tbs_der, &cert.signature)?;
        if now < cert.not_before {
            return Err(CryptoError::NotYetValid);
        }
        if now > cert.not_after {
            return Err(CryptoError::Expired);
        }
        Ok(cert)
    }
}

/// A short-lived (30 days) self-signed certificate for `key`, as used by SCEP
/// clients to sign their initial request.
pub fn self_signed_cert(key: &RsaPrivateKey, cn: &str) -> Result<Vec<u8>> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(30);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params.self_signed(&rcgen_key(key)?).map_err(rcgen_err)?;
    Ok(cert.der().to_vec())
}

/// Decodes a PEM `CERTIFICATE` block to DER.
pub fn cert_der_from_pem(pem: &str) -> Result<Vec<u8>> {
    let (label, der) =
        der::pem::decode_vec(pem.as_bytes()).map_err(|e| CryptoError::Pem(e.to_string()))?;
    if label != CERT_LABEL {
        return Err(CryptoError::Pem(format!("unexpected PEM label {label:?}")));
    }
    Ok(der)
}

/// Encodes certificate DER as PEM.
pub fn cert_to_pem(der: &[u8]) -> String {
    // Base64 encoding of an in-memory buffer cannot fail.
    der::pem::encode_string(CERT_LABEL, der::pem::LineEnding::LF, der).unwrap_or_default()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn apply_profile(params: &mut CertificateParams, profile: &CertProfile) -> Result<()> {
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    match profile {
        CertProfile::DeviceIdentity => {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        CertProfile::ScepRa => {}
        CertProfile::TlsServer {
            dns_names,
            ip_addrs,
        } => {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            for name in dns_names {
                let ia5 = name.clone().try_into().map_err(rcgen_err)?;
                params.subject_alt_names.push(SanType::DnsName(ia5));
            }
            for ip in ip_addrs {
                params.subject_alt_names.push(SanType::IpAddress(*ip));
            }
        }
    }
    Ok(())
}

/// Serial must be canonical positive DER INTEGER content of 1..=20 octets.
fn validate_serial(serial: &[u8]) -> Result<()> {
    let ok = match serial {
        [] => false,
        [first, ..] if *first >= 0x80 => false,
        [0] => false,
        [0, second, ..] => *second >= 0x80,
        _ => true,
    };
    if !ok || serial.len() > 20 {
        return Err(CryptoError::InvalidSerial);
    }
    Ok(())
}

fn check_subject_key(spki_der: &[u8]) -> Result<()> {
    match public_key_kind(spki_der)? {
        KeyKind::Rsa { bits } if bits < 2048 => Err(CryptoError::InvalidKey(format!(
            "RSA key of {bits} bits is too small (minimum 2048)"
        ))),
        _ => Ok(()),
    }
}

/// rcgen only supports single-valued, non-empty RDNs (and panics on empty
/// ones), so reject anything else up front.
fn check_simple_name(name_der: &[u8]) -> Result<()> {
    let name = Name::from_der(name_der)?;
    if name.0.iter().any(|rdn| rdn.0.len() != 1) {
        return Err(CryptoError::Certificate(
            "CA subject must consist of single-valued RDNs".into(),
        ));
    }
    // Round-trip check guards against encodings rcgen would rewrite.
    if name.to_der()? != name_der {
        return Err(CryptoError::Certificate("non-canonical CA subject".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
