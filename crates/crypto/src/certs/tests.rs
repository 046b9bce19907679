#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use der::asn1::{BitString, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::Certificate;

use super::*;
use crate::oids;

fn ca_a() -> CertAuthority {
    static CA: OnceLock<CertAuthority> = OnceLock::new();
    CA.get_or_init(|| CertAuthority::generate("Mamori Test CA A", 10).unwrap())
        .clone()
}

fn ca_b() -> CertAuthority {
    static CA: OnceLock<CertAuthority> = OnceLock::new();
    CA.get_or_init(|| CertAuthority::generate("Mamori Test CA B", 1).unwrap())
        .clone()
}

fn device_key() -> RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::generate_2048().unwrap())
        .clone()
}

fn request(profile: CertProfile) -> IssueRequest {
    let now = OffsetDateTime::now_utc();
    IssueRequest {
        subject_cn: "device-1234".into(),
        spki_der: device_key().public_key_spki_der(),
        serial: random_serial().unwrap(),
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(365),
        profile,
    }
}

fn ext<'a, T: Decode<'a> + der::oid::AssociatedOid>(cert: &'a Certificate) -> Option<(bool, T)> {
    cert.tbs_certificate.get::<T>().unwrap()
}

#[test]
fn generated_ca_has_ca_extensions() {
    let ca = ca_a();
    let parsed = parse_cert(&ca.cert_der).unwrap();
    assert_eq!(parsed.subject_cn.as_deref(), Some("Mamori Test CA A"));
    assert_eq!(parsed.subject_der, parsed.issuer_der);
    assert_eq!(parsed.spki_der, ca.key.public_key_spki_der());
    assert_eq!(parsed.signature_alg_oid, oids::SHA256_WITH_RSA);
    let cert = Certificate::from_der(&ca.cert_der).unwrap();
    let (critical, bc) = ext::<BasicConstraints>(&cert).unwrap();
    assert!(critical && bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let (_, ku) = ext::<KeyUsage>(&cert).unwrap();
    assert!(ku.0.contains(KeyUsages::KeyCertSign) && ku.0.contains(KeyUsages::CRLSign));
    assert!(ext::<SubjectKeyIdentifier>(&cert).is_some());
    // Self-signature verifies and validity covers now.
    let now = OffsetDateTime::now_utc();
    ca.verify_issued(&ca.cert_der, now).unwrap();
    assert!(parsed.not_after > now + Duration::days(365 * 9));
    assert_eq!(parsed.fingerprint_sha256_hex, ca.fingerprint_sha256_hex());
}

#[test]
fn issue_device_identity_and_verify() {
    let ca = ca_a();
    let req = request(CertProfile::DeviceIdentity);
    let der = ca.issue(&req).unwrap();
    let parsed = ca.verify_issued(&der, OffsetDateTime::now_utc()).unwrap();
    assert_eq!(parsed.serial, req.serial);
    assert_eq!(parsed.subject_cn.as_deref(), Some("device-1234"));
    assert_eq!(parsed.spki_der, req.spki_der);
    let ca_parsed = parse_cert(&ca.cert_der).unwrap();
    assert_eq!(parsed.issuer_der, ca_parsed.subject_der);

    let cert = Certificate::from_der(&der).unwrap();
    let (_, aki) = ext::<AuthorityKeyIdentifier>(&cert).unwrap();
    assert_eq!(
        aki.key_identifier.unwrap().as_bytes(),
        ca_parsed.subject_key_id.unwrap().as_slice()
    );
    assert!(parsed.subject_key_id.is_some());
    let (_, eku) = ext::<ExtendedKeyUsage>(&cert).unwrap();
    assert_eq!(eku.0, vec![const_oid_client_auth()]);
    let (_, ku) = ext::<KeyUsage>(&cert).unwrap();
    assert!(ku.0.contains(KeyUsages::DigitalSignature));
    assert!(ku.0.contains(KeyUsages::KeyEncipherment));
    assert!(!ku.0.contains(KeyUsages::KeyCertSign));
    let (critical, bc) = ext::<BasicConstraints>(&cert).unwrap();
    assert!(critical && !bc.ca);
}

fn const_oid_client_auth() -> spki::ObjectIdentifier {
    spki::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2")
}

#[test]
fn issue_tls_server_with_sans() {
    let ca = ca_a();
    let req = request(CertProfile::TlsServer {
        dns_names: vec!["mdm.example.com".into()],
        ip_addrs: vec!["127.0.0.1".parse().unwrap()],
    });
    let der = ca.issue(&req).unwrap();
    ca.verify_issued(&der, OffsetDateTime::now_utc()).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let (_, san) = ext::<SubjectAltName>(&cert).unwrap();
    assert_eq!(san.0.len(), 2);
    let (_, eku) = ext::<ExtendedKeyUsage>(&cert).unwrap();
    assert_eq!(eku.0[0].to_string(), "1.3.6.1.5.5.7.3.1");
    // ScepRa has no EKU.
    let ra = ca.issue(&request(CertProfile::ScepRa)).unwrap();
    assert!(ext::<ExtendedKeyUsage>(&Certificate::from_der(&ra).unwrap()).is_none());
}

#[test]
fn wrong_ca_is_rejected() {
    let der = ca_a().issue(&request(CertProfile::DeviceIdentity)).unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(matches!(
        ca_b().verify_issued(&der, now),
        Err(CryptoError::WrongIssuer)
    ));
    // Same subject name, different key: the signature check catches it.
    let impostor = CertAuthority {
        cert_der: ca_a().cert_der,
        key: ca_b().key,
    };
    let forged = impostor
        .issue(&request(CertProfile::DeviceIdentity))
        .unwrap();
    assert!(matches!(
        ca_a().verify_issued(&forged, now),
        Err(CryptoError::BadSignature)
    ));
}

#[test]
fn validity_is_enforced() {
    let ca = ca_a();
    let mut req = request(CertProfile::DeviceIdentity);
    let now = OffsetDateTime::now_utc();
    req.not_before = now - Duration::days(30);
    req.not_after = now - Duration::days(1);
    let der = ca.issue(&req).unwrap();
    assert!(matches!(
        ca.verify_issued(&der, now),
        Err(CryptoError::Expired)
    ));
    assert!(ca.verify_issued(&der, now - Duration::days(2)).is_ok());
    assert!(matches!(
        ca.verify_issued(&der, now - Duration::days(31)),
        Err(CryptoError::NotYetValid)
    ));
    req.not_after = req.not_before;
    assert!(matches!(ca.issue(&req), Err(CryptoError::InvalidValidity)));
}

#[test]
fn tampered_certificate_is_rejected() {
    let ca = ca_a();
    let der = ca.issue(&request(CertProfile::DeviceIdentity)).unwrap();
    let now = OffsetDateTime::now_utc();
    let mut bad_sig = der.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    assert!(matches!(
        ca.verify_issued(&bad_sig, now),
        Err(CryptoError::BadSignature)
    ));
    // Flip a byte inside the subject CN ("device-1234").
    let pos = der.windows(11).position(|w| w == b"device-1234").unwrap();
    let mut bad_tbs = der.clone();
    bad_tbs[pos] = b'D';
    assert!(matches!(
        ca.verify_issued(&bad_tbs, now),
        Err(CryptoError::BadSignature)
    ));
    assert!(ca.verify_issued(&der[..der.len() - 3], now).is_err());
    assert!(parse_cert(b"garbage").is_err());
    assert!(parse_cert(&[]).is_err());
}

#[test]
fn serial_validation() {
    let ca = ca_a();
    for bad in [vec![], vec![0], vec![0x80, 1], vec![0, 1], vec![1; 21]] {
        let mut req = request(CertProfile::DeviceIdentity);
        req.serial = bad;
        assert!(matches!(ca.issue(&req), Err(CryptoError::InvalidSerial)));
    }
    let mut req = request(CertProfile::DeviceIdentity);
    req.serial = vec![0x00, 0x85, 0x01];
    let der = ca.issue(&req).unwrap();
    assert_eq!(parse_cert(&der).unwrap().serial, vec![0x00, 0x85, 0x01]);
    req.serial = vec![0x7f; 20];
    assert!(ca.issue(&req).is_ok());
}

#[derive(Sequence)]
struct RsaPub<'a> {
    n: UintRef<'a>,
    e: UintRef<'a>,
}

#[test]
fn small_rsa_key_is_refused() {
    let mut modulus = vec![0xc5u8; 128];
    modulus[127] = 0x01;
    let rsa = RsaPub {
        n: UintRef::new(&modulus).unwrap(),
        e: UintRef::new(&[1, 0, 1]).unwrap(),
    }
    .to_der()
    .unwrap();
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oids::RSA_ENCRYPTION,
            parameters: Some(der::asn1::Null.into()),
        },
        subject_public_key: BitString::from_bytes(&rsa).unwrap(),
    }
    .to_der()
    .unwrap();
    assert_eq!(public_key_kind(&spki).unwrap(), KeyKind::Rsa { bits: 1024 });
    let mut req = request(CertProfile::DeviceIdentity);
    req.spki_der = spki;
    assert!(matches!(
        ca_a().issue(&req),
        Err(CryptoError::InvalidKey(_))
    ));
}

#[test]
fn pem_round_trip() {
    let ca = ca_a();
    let loaded = CertAuthority::from_pem(&ca.cert_pem(), &ca.key.to_pkcs8_pem()).unwrap();
    assert_eq!(loaded.cert_der, ca.cert_der);
    // Issuing with the reloaded CA still chains to the original.
    let der = loaded.issue(&request(CertProfile::DeviceIdentity)).unwrap();
    ca.verify_issued(&der, OffsetDateTime::now_utc()).unwrap();
    // Mismatched key.
    assert!(CertAuthority::from_pem(&ca.cert_pem(), &ca_b().key.to_pkcs8_pem()).is_err());
    assert!(CertAuthority::from_pem("junk", &ca.key.to_pkcs8_pem()).is_err());
    assert!(cert_der_from_pem(&ca.key.to_pkcs8_pem()).is_err());
    assert!(format!("{ca:?}").contains("fingerprint"));
    assert!(!format!("{ca:?}").contains("PRIVATE"));
}

#[test]
fn self_signed_helper() {
    let key = device_key();
    let der = self_signed_cert(&key, "scep-client").unwrap();
    let parsed = parse_cert(&der).unwrap();
    assert_eq!(parsed.subject_cn.as_deref(), Some("scep-client"));
    assert_eq!(parsed.spki_der, key.public_key_spki_der());
    verify_signature(
        &parsed.spki_der,
        SignatureAlg::RsaPkcs1Sha256,
        &parsed.tbs_der,
        &parsed.signature,
    )
    .unwrap();
    assert_eq!(
        common_name_from_der(&parsed.subject_der)
            .unwrap()
            .as_deref(),
        Some("scep-client")
    );
}
