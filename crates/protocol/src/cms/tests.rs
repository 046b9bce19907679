#![allow(clippy::unwrap_used)]

use der::Decode;
use mamori_crypto::certs::{cert_der_from_pem, parse_cert};
use mamori_crypto::{CryptoError, DigestAlg};

use super::*;

/// Reads a committed test fixture (generated once with the OpenSSL CLI, see
/// `tests/fixtures/gen.sh`).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Test-only keys and certificates from the fixtures directory.
pub(crate) mod keys {
    use super::*;
    use mamori_crypto::RsaPrivateKey;

    fn key(name: &str) -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_pem(&String::from_utf8(fixture(name)).unwrap()).unwrap()
    }

    fn cert(name: &str) -> Vec<u8> {
        cert_der_from_pem(&String::from_utf8(fixture(name)).unwrap()).unwrap()
    }

    /// Client key (self-signed cert `client_cert.pem`, CN=openssl-device).
    pub fn client() -> RsaPrivateKey {
        key("client_key.pem")
    }

    /// Client certificate DER.
    pub fn client_cert() -> Vec<u8> {
        cert("client_cert.pem")
    }

    /// SCEP RA key.
    pub fn ra() -> RsaPrivateKey {
        key("ra_key.pem")
    }

    /// SCEP RA certificate DER (issued by the fixture CA).
    pub fn ra_cert() -> Vec<u8> {
        cert("ra_cert.pem")
    }

    /// Fixture CA certificate DER.
    pub fn ca_cert() -> Vec<u8> {
        cert("ca_cert.pem")
    }
}

const CSR_FIXTURE: &str = "csr_challenge.der";

#[test]
fn openssl_attached_signatures_verify() {
    let body = fixture("body.plist");
    for name in [
        "signed_sha1_attached.der",
        "signed_sha256_attached.der",
        "signed_sha256_noattr.der",
        "signed_sha256_keyid.der",
    ] {
        let v = verify_signed_data(&fixture(name), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.content, body, "{name}");
        assert_eq!(v.signer_cert_der, keys::client_cert(), "{name}");
        assert_eq!(v.content_type, oids::DATA);
        assert_eq!(v.certificates, vec![keys::client_cert()]);
    }
    let v = verify_signed_data(&fixture("signed_sha1_attached.der"), None).unwrap();
    assert_eq!(v.digest_oid, oids::SHA1);
    assert!(v.signed_attr(&oids::MESSAGE_DIGEST).is_some());
    assert!(v.signed_attr(&oids::SIGNING_TIME).is_some());
    // Detached content may not be supplied on top of encapsulated content.
    assert!(matches!(
        verify_signed_data(&fixture("signed_sha1_attached.der"), Some(&body)),
        Err(PkiError::Content(_))
    ));
}

#[test]
fn openssl_detached_signatures_verify_and_reject_tampering() {
    let body = fixture("body.plist");
    let mut tampered = body.clone();
    tampered[50] ^= 0x20;
    for name in ["signed_sha1_detached.der", "signed_sha256_detached.der"] {
        let der = fixture(name);
        let v = verify_signed_data(&der, Some(&body)).unwrap();
        assert_eq!(v.content, body);
        assert!(matches!(
            verify_signed_data(&der, Some(&tampered)),
            Err(PkiError::DigestMismatch)
        ));
        assert!(matches!(
            verify_signed_data(&der, None),
            Err(PkiError::Content(_))
        ));
    }
}

#[test]
fn openssl_signature_without_attrs_rejects_tampered_content() {
    let der = fixture("signed_sha256_noattr.der");
    let pos = der.windows(12).position(|w| w == b"Authenticate").unwrap();
    let mut bad = der.clone();
    bad[pos] = b'a';
    assert!(matches!(
        verify_signed_data(&bad, None),
        Err(PkiError::BadSignature)
    ));
}

#[test]
fn own_signatures_round_trip() {
    let key = keys::client();
    let cert = keys::client_cert();
    let body = b"<plist>checkin</plist>";
    let attached = sign_attached(
        body,
        oids::DATA,
        &cert,
        &key,
        DigestAlg::Sha256,
        &[],
        &[keys::ca_cert()],
    )
    .unwrap();
    let v = verify_signed_data(&attached, None).unwrap();
    assert_eq!(v.content, body);
    assert_eq!(v.signer_cert_der, cert);
    assert_eq!(v.certificates, vec![cert.clone(), keys::ca_cert()]);
    assert_eq!(v.digest_oid, oids::SHA256);
    assert_eq!(
        ObjectIdentifier::from_der(v.signed_attr(&oids::CONTENT_TYPE).unwrap()).unwrap(),
        oids::DATA
    );

    let detached =
        sign_detached(body, oids::DATA, &cert, &key, DigestAlg::Sha256, &[], &[]).unwrap();
    assert!(detached.len() < attached.len());
    assert_eq!(
        verify_signed_data(&detached, Some(body)).unwrap().content,
        body
    );
    assert!(matches!(
        verify_signed_data(&detached, Some(b"<plist>checkiN</plist>")),
        Err(PkiError::DigestMismatch)
    ));
    // Flip the last signature byte (the SignerInfo is the last element).
    let mut bad = detached.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        verify_signed_data(&bad, Some(body)),
        Err(PkiError::BadSignature)
    ));
    // SHA-1 signing is not available through aws-lc-rs.
    assert!(matches!(
        sign_detached(body, oids::DATA, &cert, &key, DigestAlg::Sha1, &[], &[]),
        Err(PkiError::Crypto(CryptoError::UnsupportedAlgorithm(_)))
    ));
}

#[test]
fn signer_must_be_present() {
    let key = keys::client();
    // Signed with the client key, but claims the RA cert as signer: cert
    // lookup succeeds (issuer/serial of the RA) but the signature fails.
    let forged = sign_attached(
        b"x",
        oids::DATA,
        &keys::ra_cert(),
        &key,
        DigestAlg::Sha256,
        &[],
        &[],
    )
    .unwrap();
    assert!(matches!(
        verify_signed_data(&forged, None),
        Err(PkiError::BadSignature)
    ));
    // Certs-only has no signer.
    let degenerate = degenerate_certs_only(&[keys::client_cert()]).unwrap();
    assert!(verify_signed_data(&degenerate, Some(b"")).is_err());
}

#[test]
fn openssl_enveloped_data_decrypts() {
    let csr = fixture(CSR_FIXTURE);
    let ra = keys::ra();
    let cases = [
        ("enveloped_des3.der", ContentEncryptionAlg::DesEde3Cbc),
        ("enveloped_aes128.der", ContentEncryptionAlg::Aes128Cbc),
        ("enveloped_aes256.der", ContentEncryptionAlg::Aes256Cbc),
        ("enveloped_des.der", ContentEncryptionAlg::DesCbc),
    ];
    for (name, alg) in cases {
        let (plain, got) = decrypt_enveloped(&fixture(name), &keys::ra_cert(), true, |ct| {
            ra.decrypt_pkcs1v15(ct)
        })
        .unwrap();
        assert_eq!(plain, csr, "{name}");
        assert_eq!(got, alg);
    }
    assert!(matches!(
        decrypt_enveloped(
            &fixture("enveloped_des.der"),
            &keys::ra_cert(),
            false,
            |ct| ra.decrypt_pkcs1v15(ct)
        ),
        Err(PkiError::SingleDesRefused)
    ));
}

#[test]
fn enveloped_wrong_recipient_or_key_fails() {
    let der = fixture("enveloped_aes128.der");
    let client = keys::client();
    // Our cert is not a recipient: no other key is ever tried.
    assert!(matches!(
        decrypt_enveloped(&der, &keys::client_cert(), true, |ct| client
            .decrypt_pkcs1v15(ct)),
        Err(PkiError::NoMatchingRecipient)
    ));
    // Right recipient id, wrong key: generic decryption failure.
    assert!(matches!(
        decrypt_enveloped(&der, &keys::ra_cert(), true, |ct| client
            .decrypt_pkcs1v15(ct)),
        Err(PkiError::Decryption)
    ));
    // A callback returning a key of the wrong size is treated the same way.
    assert!(matches!(
        decrypt_enveloped(&der, &keys::ra_cert(), true, |_| Ok(
            zeroize::Zeroizing::new(vec![0u8; 5])
        )),
        Err(PkiError::Decryption)
    ));
}

#[test]
fn own_enveloped_round_trip_all_algorithms() {
    let ra = keys::ra();
    for alg in [
        ContentEncryptionAlg::DesCbc,
        ContentEncryptionAlg::DesEde3Cbc,
        ContentEncryptionAlg::Aes128Cbc,
        ContentEncryptionAlg::Aes192Cbc,
        ContentEncryptionAlg::Aes256Cbc,
    ] {
        for content in [
            &b""[..],
            b"0123456789abcdef",
            b"some longer content that spans blocks",
        ] {
            let der = encrypt_enveloped(content, &keys::ra_cert(), alg).unwrap();
            let (plain, got) =
                decrypt_enveloped(&der, &keys::ra_cert(), true, |ct| ra.decrypt_pkcs1v15(ct))
                    .unwrap();
            assert_eq!((plain.as_slice(), got), (content, alg));
        }
    }
    // Tampering with the last ciphertext block breaks the padding or content.
    let der = encrypt_enveloped(
        b"hello world",
        &keys::ra_cert(),
        ContentEncryptionAlg::Aes128Cbc,
    )
    .unwrap();
    let mut bad = der.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let res = decrypt_enveloped(&bad, &keys::ra_cert(), true, |ct| ra.decrypt_pkcs1v15(ct));
    assert!(res.map(|(p, _)| p != b"hello world").unwrap_or(true));
}

#[test]
fn degenerate_round_trip() {
    let certs = vec![keys::ra_cert(), keys::ca_cert()];
    let der = degenerate_certs_only(&certs).unwrap();
    assert_eq!(certs_from_degenerate(&der).unwrap(), certs);
    assert!(degenerate_certs_only(&[b"junk".to_vec()]).is_err());
    assert!(degenerate_certs_only(&[vec![0x02, 0x01, 0x00]]).is_err());
    assert_eq!(
        certs_from_degenerate(&degenerate_certs_only(&[]).unwrap())
            .unwrap()
            .len(),
        0
    );
    // OpenSSL-signed data also yields its certificates.
    assert_eq!(
        certs_from_degenerate(&fixture("signed_sha256_attached.der")).unwrap(),
        vec![keys::client_cert()]
    );
    assert!(matches!(
        certs_from_degenerate(&fixture("enveloped_des3.der")),
        Err(PkiError::UnexpectedContentType(_))
    ));
    assert!(parse_cert(&certs_from_degenerate(&der).unwrap()[0]).is_ok());
}

/// Truncations, bit flips and garbage never panic.
#[test]
fn malformed_inputs_never_panic() {
    let ra = keys::ra();
    let body = fixture("body.plist");
    let inputs = [
        fixture("signed_sha1_attached.der"),
        fixture("signed_sha256_detached.der"),
        fixture("enveloped_des3.der"),
        degenerate_certs_only(&[keys::ra_cert()]).unwrap(),
    ];
    let check = |d: &[u8]| {
        let _ = verify_signed_data(d, None);
        let _ = verify_signed_data(d, Some(&body));
        let _ = certs_from_degenerate(d);
        let _ = decrypt_enveloped(d, &keys::ra_cert(), true, |ct| ra.decrypt_pkcs1v15(ct));
    };
    for der in &inputs {
        for n in (0..der.len()).step_by(37) {
            check(&der[..n]);
            assert!(verify_signed_data(&der[..n], None).is_err());
        }
        for i in (0..der.len()).step_by(11) {
            let mut m = der.clone();
            m[i] ^= 0x5a;
            check(&m);
        }
    }
    for junk in [
        &b""[..],
        b"\x30",
        b"\x30\x80\x00\x00",
        b"\xff\xff\xff",
        b"hello",
    ] {
        check(junk);
        assert!(matches!(
            verify_signed_data(junk, None),
            Err(PkiError::Der(_))
        ));
    }
}

#[test]
fn ber_normalisation_is_identity_on_der_fixtures() {
    for name in [
        "signed_sha1_attached.der",
        "signed_sha256_detached.der",
        "signed_sha256_keyid.der",
        "enveloped_des3.der",
        "csr_challenge.der",
        "scep_pkcsreq_sha1_des.der",
    ] {
        let der = fixture(name);
        assert_eq!(ber::to_der(&der).unwrap(), der, "{name}");
    }
}

#[test]
fn openssl_streamed_ber_messages() {
    let body = fixture("body.plist");
    let v = verify_signed_data(&fixture("signed_sha256_attached_ber.der"), None).unwrap();
    assert_eq!(v.content, body);
    assert_eq!(v.signer_cert_der, keys::client_cert());
    let ra = keys::ra();
    for (name, alg) in [
        ("enveloped_aes128_ber.der", ContentEncryptionAlg::Aes128Cbc),
        ("enveloped_des3_ber.der", ContentEncryptionAlg::DesEde3Cbc),
    ] {
        let (plain, got) = decrypt_enveloped(&fixture(name), &keys::ra_cert(), true, |ct| {
            ra.decrypt_pkcs1v15(ct)
        })
        .unwrap();
        assert_eq!((plain, got), (fixture(CSR_FIXTURE), alg), "{name}");
    }
}
