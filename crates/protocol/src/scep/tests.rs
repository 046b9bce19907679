#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use mamori_crypto::certs::{self_signed_cert, CertAuthority, CertProfile, IssueRequest};
use mamori_crypto::random_serial;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::cms::tests::{fixture, keys};
use crate::cms::{decrypt_enveloped, sign_detached};
use crate::csr::{build_csr, parse_csr};

fn ca() -> &'static CertAuthority {
    static CA: OnceLock<CertAuthority> = OnceLock::new();
    CA.get_or_init(|| CertAuthority::generate("Mamori SCEP Test CA", 1).unwrap())
}

fn issue(spki_der: Vec<u8>, cn: &str) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    ca().issue(&IssueRequest {
        subject_cn: cn.into(),
        spki_der,
        serial: random_serial().unwrap(),
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(365),
        profile: CertProfile::DeviceIdentity,
    })
    .unwrap()
}

/// What the server does with a pkiMessage (RA = fixture RA cert/key).
fn serve(req_der: &[u8]) -> Result<(PkiMessage, ContentEncryptionAlg, Vec<u8>)> {
    let msg = parse_pki_message(req_der)?;
    let ra = keys::ra();
    let (csr_der, alg) = decrypt_enveloped(&msg.enveloped_der, &keys::ra_cert(), true, |ct| {
        ra.decrypt_pkcs1v15(ct)
    })?;
    let csr = parse_csr(&csr_der)?;
    let cert = issue(csr.spki_der, &csr.subject_cn.unwrap_or_default());
    let rep = build_cert_rep_success(&msg, &cert, alg, &keys::ra_cert(), &ra)?;
    Ok((msg, alg, rep))
}

const ALGS: [ContentEncryptionAlg; 4] = [
    ContentEncryptionAlg::DesCbc,
    ContentEncryptionAlg::DesEde3Cbc,
    ContentEncryptionAlg::Aes128Cbc,
    ContentEncryptionAlg::Aes256Cbc,
];

#[test]
fn ca_caps_lists_one_capability_per_line() {
    let caps: Vec<&str> = CA_CAPS.lines().collect();
    assert_eq!(
        caps,
        [
            "AES",
            "SHA-256",
            "SHA-1",
            "DES3",
            "POSTPKIOperation",
            "SCEPStandard",
            "Renewal"
        ]
    );
}

#[test]
fn pkcsreq_round_trip_sha256_all_ciphers() {
    let key = keys::client();
    let signer = self_signed_cert(&key, "scep-client").unwrap();
    let csr = build_csr(&key, "device-abc", Some("challenge-1")).unwrap();
    for alg in ALGS {
        let req = build_pki_request(
            MessageType::PkcsReq,
            &csr,
            &signer,
            &key,
            &keys::ra_cert(),
            alg,
            DigestAlg::Sha256,
            "tx-1",
        )
        .unwrap();
        let (msg, used, rep) = serve(&req).unwrap();
        assert_eq!(msg.message_type, MessageType::PkcsReq);
        assert_eq!(msg.transaction_id, "tx-1");
        assert_eq!(msg.sender_nonce.len(), 16);
        assert_eq!(msg.signer_cert_der, signer);
        assert_eq!(used, alg);
        let CertRepOutcome::Success { cert_der } = parse_cert_rep(&rep, &signer, &key).unwrap()
        else {
            panic!("expected success");
        };
        let parsed = ca()
            .verify_issued(&cert_der, OffsetDateTime::now_utc())
            .unwrap();
        assert_eq!(parsed.spki_der, key.public_key_spki_der());
        assert_eq!(parsed.subject_cn.as_deref(), Some("device-abc"));
    }
}

#[test]
fn pkcsreq_round_trip_sha1_openssl_signed_fixtures() {
    let key = keys::client();
    for (name, alg) in [
        ("scep_pkcsreq_sha1_des.der", ContentEncryptionAlg::DesCbc),
        (
            "scep_pkcsreq_sha1_aes128.der",
            ContentEncryptionAlg::Aes128Cbc,
        ),
    ] {
        let (msg, used, rep) = serve(&fixture(name)).unwrap();
        assert_eq!(msg.digest_oid, crate::cms::oids::SHA1, "{name}");
        assert_eq!(msg.transaction_id, "fixture-sha1-transaction");
        assert_eq!(used, alg);
        let CertRepOutcome::Success { cert_der } =
            parse_cert_rep(&rep, &keys::client_cert(), &key).unwrap()
        else {
            panic!("expected success");
        };
        let parsed = ca()
            .verify_issued(&cert_der, OffsetDateTime::now_utc())
            .unwrap();
        assert_eq!(parsed.subject_cn.as_deref(), Some("openssl-device"));
        assert_eq!(parsed.spki_der, key.public_key_spki_der());
    }
}

#[test]
fn renewal_signed_by_issued_identity() {
    let key = keys::client();
    let identity = issue(key.public_key_spki_der(), "device-abc");
    let csr = build_csr(&key, "device-abc", None).unwrap();
    let req = build_pki_request(
        MessageType::RenewalReq,
        &csr,
        &identity,
        &key,
        &keys::ra_cert(),
        ContentEncryptionAlg::Aes256Cbc,
        DigestAlg::Sha256,
        "renew-1",
    )
    .unwrap();
    let (msg, _, rep) = serve(&req).unwrap();
    assert_eq!(msg.message_type, MessageType::RenewalReq);
    assert_eq!(msg.signer_cert_der, identity);
    // The server's trust decision: the renewal signer chains to our CA.
    ca().verify_issued(&msg.signer_cert_der, OffsetDateTime::now_utc())
        .unwrap();
    assert!(matches!(
        parse_cert_rep(&rep, &identity, &key).unwrap(),
        CertRepOutcome::Success { .. }
    ));
}

#[test]
fn cert_rep_carries_scep_attributes() {
    let key = keys::client();
    let signer = self_signed_cert(&key, "c").unwrap();
    let csr = build_csr(&key, "d", None).unwrap();
    let req = build_pki_request(
        MessageType::PkcsReq,
        &csr,
        &signer,
        &key,
        &keys::ra_cert(),
        ContentEncryptionAlg::Aes128Cbc,
        DigestAlg::Sha256,
        "tx-attrs",
    )
    .unwrap();
    let (msg, _, rep) = serve(&req).unwrap();
    let v = verify_signed_data(&rep, None).unwrap();
    assert_eq!(v.signer_cert_der, keys::ra_cert());
    assert_eq!(v.digest_oid, crate::cms::oids::SHA256);
    assert_eq!(text_attr(&v, &oids::MESSAGE_TYPE, "m").unwrap(), "3");
    assert_eq!(text_attr(&v, &oids::PKI_STATUS, "s").unwrap(), "0");
    assert_eq!(
        text_attr(&v, &oids::TRANSACTION_ID, "t").unwrap(),
        "tx-attrs"
    );
    assert_eq!(
        nonce_attr(&v, &oids::RECIPIENT_NONCE, "r").unwrap(),
        msg.sender_nonce
    );
    let sender = nonce_attr(&v, &oids::SENDER_NONCE, "s").unwrap();
    assert_eq!(sender.len(), 16);
    assert_ne!(sender, msg.sender_nonce);
}

#[test]
fn failure_and_pending_replies() {
    let msg = parse_pki_message(&fixture("scep_pkcsreq_sha1_aes128.der")).unwrap();
    let (ra, ra_cert) = (keys::ra(), keys::ra_cert());
    let key = keys::client();
    for fail in [FailInfo::BadAlg, FailInfo::BadRequest, FailInfo::BadCertId] {
        let rep = build_cert_rep_failure(&msg, fail, &ra_cert, &ra).unwrap();
        assert_eq!(
            parse_cert_rep(&rep, &keys::client_cert(), &key).unwrap(),
            CertRepOutcome::Failure { fail_info: fail }
        );
    }
    let rep = build_cert_rep_pending(&msg, &ra_cert, &ra).unwrap();
    assert_eq!(
        parse_cert_rep(&rep, &keys::client_cert(), &key).unwrap(),
        CertRepOutcome::Pending
    );
    // A CertRep is not a request.
    assert!(matches!(parse_pki_message(&rep), Err(PkiError::Scep(_))));
}

#[test]
fn tampered_and_misaddressed_requests_fail() {
    let key = keys::client();
    let signer = self_signed_cert(&key, "c").unwrap();
    let csr = build_csr(&key, "d", None).unwrap();
    let req = build_pki_request(
        MessageType::PkcsReq,
        &csr,
        &signer,
        &key,
        &keys::ra_cert(),
        ContentEncryptionAlg::Aes128Cbc,
        DigestAlg::Sha256,
        "tx",
    )
    .unwrap();
    let mut bad = req.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(
        parse_pki_message(&bad),
        Err(PkiError::BadSignature)
    ));
    for n in [0, 1, 64, req.len() / 2, req.len() - 1] {
        assert!(parse_pki_message(&req[..n]).is_err());
    }
    assert!(parse_pki_message(b"garbage").is_err());
    assert!(parse_pki_message(&fixture("signed_sha256_attached.der")).is_err());

    // Encrypted to someone else: the RA must not find itself as recipient.
    let misaddressed = build_pki_request(
        MessageType::PkcsReq,
        &csr,
        &signer,
        &key,
        &keys::client_cert(),
        ContentEncryptionAlg::Aes128Cbc,
        DigestAlg::Sha256,
        "tx",
    )
    .unwrap();
    assert!(matches!(
        serve(&misaddressed),
        Err(PkiError::NoMatchingRecipient)
    ));

    // The reply can only be opened by the requester's key.
    let (_, _, rep) = serve(&req).unwrap();
    assert!(parse_cert_rep(&rep, &signer, &keys::ra()).is_err());
    assert!(parse_cert_rep(&rep, &keys::ra_cert(), &key).is_err());
    let mut bad_rep = rep.clone();
    let last = bad_rep.len() - 1;
    bad_rep[last] ^= 0x01;
    assert!(parse_cert_rep(&bad_rep, &signer, &key).is_err());
    for i in (0..rep.len()).step_by(13) {
        let mut m = rep.clone();
        m[i] ^= 0x5a;
        let _ = parse_cert_rep(&m, &signer, &key);
    }
}

#[test]
fn mdm_signature_detached_round_trip() {
    let key = keys::client();
    let identity = issue(key.public_key_spki_der(), "device-abc");
    let body = fixture("body.plist");
    let sig = sign_detached(
        &body,
        crate::cms::oids::DATA,
        &identity,
        &key,
        DigestAlg::Sha256,
        &[],
        &[],
    )
    .unwrap();
    let v = verify_signed_data(&sig, Some(&body)).unwrap();
    ca().verify_issued(&v.signer_cert_der, OffsetDateTime::now_utc())
        .unwrap();
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(matches!(
        verify_signed_data(&sig, Some(&tampered)),
        Err(PkiError::DigestMismatch)
    ));
    // SHA-1 (old devices): OpenSSL-produced detached signature.
    let v1 = verify_signed_data(&fixture("signed_sha1_detached.der"), Some(&body)).unwrap();
    assert_eq!(v1.digest_oid, crate::cms::oids::SHA1);
    assert!(verify_signed_data(&fixture("signed_sha1_detached.der"), Some(&tampered)).is_err());
}

#[test]
fn code_mappings() {
    for code in [3, 17, 19, 20, 21, 22] {
        assert_eq!(MessageType::from_code(code).unwrap().code(), code);
    }
    assert!(MessageType::from_code(18).is_none());
    for code in 0..5 {
        assert_eq!(FailInfo::from_code(code).unwrap().code(), code);
    }
    assert!(FailInfo::from_code(5).is_none());
    assert_eq!(PkiStatus::Pending.code(), 3);
}

/// Apple devices send BER (indefinite-length) envelopes: a PKCSReq whose
/// content is OpenSSL's streamed EnvelopedData must still be served.
#[test]
fn pkcsreq_with_ber_envelope() {
    let key = keys::client();
    let cert = keys::client_cert();
    let envelope = fixture("enveloped_aes128_ber.der");
    let attrs = [
        (oids::MESSAGE_TYPE, printable("19").unwrap()),
        (oids::TRANSACTION_ID, printable("ber-tx").unwrap()),
        (oids::SENDER_NONCE, octets(&[7u8; 16]).unwrap()),
    ];
    let params = crate::cms::SignParams {
        content: &envelope,
        detached: false,
        content_type: crate::cms::oids::DATA,
        signer_cert_der: &cert,
        digest: DigestAlg::Sha256,
        extra_signed_attrs: &attrs,
        extra_certs: &[],
    };
    let req = crate::cms::build_signed(&params, &|d| key.sign_pkcs1(DigestAlg::Sha256, d)).unwrap();
    let (msg, alg, rep) = serve(&req).unwrap();
    assert_eq!(msg.enveloped_der, envelope);
    assert_eq!(alg, ContentEncryptionAlg::Aes128Cbc);
    assert!(matches!(
        parse_cert_rep(&rep, &cert, &key).unwrap(),
        CertRepOutcome::Success { .. }
    ));
}

/// A PKCSReq whose transactionID attribute is `tid` exactly as given.
fn request_with_transaction_id(tid: Any) -> Vec<u8> {
    let key = keys::client();
    let signer = self_signed_cert(&key, "c").unwrap();
    let csr = build_csr(&key, "d", Some("challenge")).unwrap();
    let enveloped =
        encrypt_enveloped(&csr, &keys::ra_cert(), ContentEncryptionAlg::Aes128Cbc).unwrap();
    let attrs = [
        (oids::MESSAGE_TYPE, printable("19").unwrap()),
        (oids::TRANSACTION_ID, tid),
        (oids::SENDER_NONCE, octets(&[7u8; 16]).unwrap()),
    ];
    let params = crate::cms::SignParams {
        content: &enveloped,
        detached: false,
        content_type: crate::cms::oids::DATA,
        signer_cert_der: &signer,
        digest: DigestAlg::Sha256,
        extra_signed_attrs: &attrs,
        extra_certs: &[],
    };
    crate::cms::build_signed(&params, &|d| key.sign_pkcs1(DigestAlg::Sha256, d)).unwrap()
}

fn utf8(s: &str) -> Any {
    Any::encode_from(&der::asn1::Utf8StringRef::new(s).unwrap()).unwrap()
}

/// A transactionID the CertRep could not echo as a PrintableString is
/// refused when the request is parsed, before anything is issued (it used
/// to pass, and building the reply after issuance failed).
#[test]
fn transaction_ids_the_reply_cannot_echo_are_refused_at_parse() {
    let forged = "x\n2026-12-06T00:00:00Z  INFO device authenticated device=FORGED\u{1b}[31m";
    let long = "A".repeat(MAX_TRANSACTION_ID + 1);
    for tid in [
        utf8("TX_1"),
        utf8("tx@example"),
        utf8(forged),
        utf8("トランザクション"),
        utf8(&long),
        // Tagged PrintableString, but holding characters it cannot hold.
        Any::new(Tag::PrintableString, forged.as_bytes()).unwrap(),
        Any::new(Tag::PrintableString, b"".as_slice()).unwrap(),
        Any::new(Tag::Ia5String, b"a*b".as_slice()).unwrap(),
    ] {
        let req = request_with_transaction_id(tid.clone());
        match parse_pki_message(&req) {
            Err(PkiError::TransactionId(raw)) => {
                assert_eq!(raw.as_bytes(), tid.value());
                assert!(!PkiError::TransactionId(raw).to_string().contains('\n'));
            }
            other => panic!("{tid:?}: {other:?}"),
        }
    }
}

/// Every request that parses can be answered, success or failure, whatever
/// text type carried its transactionID.
#[test]
fn every_parsed_request_can_be_answered() {
    let key = keys::client();
    let printable_all = "AZaz09 '()+,-./:=?";
    let long = "A".repeat(MAX_TRANSACTION_ID);
    for tid in [
        utf8("TX1"),
        utf8(printable_all),
        Any::new(Tag::Ia5String, b"ia5-tx".as_slice()).unwrap(),
        printable(&long).unwrap(),
    ] {
        let req = request_with_transaction_id(tid.clone());
        let (msg, _, rep) = serve(&req).unwrap();
        assert_eq!(msg.transaction_id.as_bytes(), tid.value());
        let v = verify_signed_data(&rep, None).unwrap();
        assert_eq!(
            text_attr(&v, &oids::TRANSACTION_ID, "t").unwrap(),
            msg.transaction_id
        );
        assert!(matches!(
            parse_cert_rep(&rep, &msg.signer_cert_der, &key).unwrap(),
            CertRepOutcome::Success { .. }
        ));
        build_cert_rep_failure(&msg, FailInfo::BadRequest, &keys::ra_cert(), &keys::ra()).unwrap();
    }
}

/// The reply is encrypted to the signer: a certificate whose key cannot
/// take RSA key transport (here an EC key) is refused before issuance.
#[test]
fn reply_recipient_must_take_rsa_key_transport() {
    let ec = mamori_crypto::EcPrivateKey::generate_p256().unwrap();
    let ec_cert = issue(ec.public_key_spki_der(), "ec-device");
    assert!(matches!(
        check_reply_recipient(&ec_cert),
        Err(PkiError::UnsupportedAlgorithm(_))
    ));
    check_reply_recipient(&keys::client_cert()).unwrap();
    assert!(check_reply_recipient(b"junk").is_err());
}

/// The client builder sends a transactionID outside PrintableString as a
/// UTF8String (that is how a test sends one); printable ones stay printable.
#[test]
fn client_builder_encodes_transaction_ids() {
    assert_eq!(
        transaction_id_attr("TX1").unwrap().tag(),
        Tag::PrintableString
    );
    let odd = transaction_id_attr("TX_1\n").unwrap();
    assert_eq!(odd.tag(), Tag::Utf8String);
    assert_eq!(odd.value(), b"TX_1\n");
}
