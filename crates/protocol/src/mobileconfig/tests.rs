//! Tests of the enrollment and configuration profile builders.

#![allow(clippy::unwrap_used)]

use super::*;

fn params() -> EnrollmentProfileParams {
    EnrollmentProfileParams {
        server_url: "https://mdm.example.com:8443/mdm/connect".into(),
        checkin_url: "https://mdm.example.com:8443/mdm/checkin".into(),
        topic: "com.apple.mgmt.External.1234".into(),
        scep_url: "https://mdm.example.com:8443/scep".into(),
        scep_challenge: "secret".into(),
        scep_subject_cn: "Mamori Device".into(),
        scep_ca_name: "MamoriCA".into(),
        tls_root_der: Some(vec![0x30, 0x82, 0x01]),
        ..EnrollmentProfileParams::default()
    }
}

fn get<'a>(d: &'a plist::Dictionary, k: &str) -> &'a plist::Value {
    d.get(k).unwrap_or_else(|| panic!("missing {k}"))
}

#[test]
fn builds_and_parses_back() {
    let p = params();
    let bytes = build_enrollment_profile(&p).unwrap();
    let v = plist::Value::from_reader_xml(&bytes[..]).unwrap();
    let top = v.as_dictionary().unwrap();
    assert_eq!(get(top, "PayloadType").as_string(), Some("Configuration"));
    assert_eq!(get(top, "PayloadVersion").as_unsigned_integer(), Some(1));
    assert_eq!(
        get(top, "PayloadDisplayName").as_string(),
        Some("Mamori enrollment")
    );
    assert_eq!(get(top, "PayloadOrganization").as_string(), Some("Mamori"));
    assert_eq!(
        get(top, "PayloadUUID").as_string(),
        Some(uuid_string(&p.profile_uuid).as_str())
    );
    let content = get(top, "PayloadContent").as_array().unwrap();
    assert_eq!(content.len(), 3);
    check_root_payload(content[0].as_dictionary().unwrap());
    let scep = content[1].as_dictionary().unwrap();
    check_scep_payload(scep);
    check_mdm_payload(content[2].as_dictionary().unwrap(), scep);
}

/// The TLS root payload of `builds_and_parses_back`'s profile.
fn check_root_payload(root: &plist::Dictionary) {
    assert_eq!(
        get(root, "PayloadType").as_string(),
        Some("com.apple.security.root")
    );
    assert_eq!(
        get(root, "PayloadContent").as_data(),
        Some(&[0x30u8, 0x82, 0x01][..])
    );
}

/// The SCEP payload of `builds_and_parses_back`'s profile.
fn check_scep_payload(scep: &plist::Dictionary) {
    assert_eq!(
        get(scep, "PayloadType").as_string(),
        Some("com.apple.security.scep")
    );
    let sc = get(scep, "PayloadContent").as_dictionary().unwrap();
    assert_eq!(
        get(sc, "URL").as_string(),
        Some("https://mdm.example.com:8443/scep")
    );
    assert_eq!(get(sc, "Name").as_string(), Some("MamoriCA"));
    assert_eq!(get(sc, "Challenge").as_string(), Some("secret"));
    assert_eq!(get(sc, "Keysize").as_unsigned_integer(), Some(2048));
    assert_eq!(get(sc, "Key Type").as_string(), Some("RSA"));
    assert_eq!(get(sc, "Key Usage").as_unsigned_integer(), Some(5));
    // Subject: [[["CN", cn]]]
    let subject = get(sc, "Subject").as_array().unwrap();
    assert_eq!(subject.len(), 1);
    let rdn = subject[0].as_array().unwrap();
    assert_eq!(rdn.len(), 1);
    let pair = rdn[0].as_array().unwrap();
    assert_eq!(pair.len(), 2);
    assert_eq!(pair[0].as_string(), Some("CN"));
    assert_eq!(pair[1].as_string(), Some("Mamori Device"));
}

/// The MDM payload of `builds_and_parses_back`'s profile, whose identity
/// is the `scep` payload.
fn check_mdm_payload(mdm: &plist::Dictionary, scep: &plist::Dictionary) {
    assert_eq!(get(mdm, "PayloadType").as_string(), Some("com.apple.mdm"));
    assert_eq!(
        get(mdm, "ServerURL").as_string(),
        Some("https://mdm.example.com:8443/mdm/connect")
    );
    assert_eq!(
        get(mdm, "CheckInURL").as_string(),
        Some("https://mdm.example.com:8443/mdm/checkin")
    );
    assert_eq!(
        get(mdm, "Topic").as_string(),
        Some("com.apple.mgmt.External.1234")
    );
    assert_eq!(
        get(mdm, "IdentityCertificateUUID").as_string(),
        get(scep, "PayloadUUID").as_string()
    );
    assert_eq!(get(mdm, "AccessRights").as_unsigned_integer(), Some(8191));
    assert_eq!(get(mdm, "SignMessage").as_boolean(), Some(false));
    assert_eq!(get(mdm, "CheckOutWhenRemoved").as_boolean(), Some(true));
    let caps: Vec<_> = get(mdm, "ServerCapabilities")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(plist::Value::as_string)
        .collect();
    assert_eq!(caps, SERVER_CAPABILITIES);
}

#[test]
fn without_root_and_checkin_url() {
    let p = EnrollmentProfileParams {
        tls_root_der: None,
        checkin_url: String::new(),
        ..params()
    };
    let bytes = build_enrollment_profile(&p).unwrap();
    let v = plist::Value::from_reader_xml(&bytes[..]).unwrap();
    let content = get(v.as_dictionary().unwrap(), "PayloadContent")
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(content.len(), 2);
    assert!(content[1]
        .as_dictionary()
        .unwrap()
        .get("CheckInURL")
        .is_none());
}

#[test]
fn rejects_bad_params() {
    let e = build_enrollment_profile(&EnrollmentProfileParams {
        server_url: "http://insecure/mdm".into(),
        ..params()
    })
    .unwrap_err();
    assert!(e.to_string().contains("ServerURL"), "{e}");
    let e = build_enrollment_profile(&EnrollmentProfileParams {
        topic: " ".into(),
        ..params()
    })
    .unwrap_err();
    assert!(e.to_string().contains("Topic"), "{e}");
    let e = build_enrollment_profile(&EnrollmentProfileParams {
        access_rights: 0,
        ..params()
    })
    .unwrap_err();
    assert!(e.to_string().contains("AccessRights"), "{e}");
    let mut p = params();
    p.mdm_payload_uuid = p.scep_payload_uuid;
    assert!(build_enrollment_profile(&p).is_err());
}

#[test]
fn schema_check_catches_bad_payload() {
    let mut d = common("com.apple.mdm", "x.mdm".into(), &Uuid::new_v4(), "d", "o");
    d.insert("ServerURL".into(), s("https://x"));
    d.insert("Topic".into(), s("t"));
    let e = check_payload(&d, "com.apple.mdm", "P").unwrap_err();
    assert_eq!(
        e,
        SchemaError::MissingKey {
            path: "P.IdentityCertificateUUID".into()
        }
    );
    d.insert("IdentityCertificateUUID".into(), s("u"));
    d.insert("Bogus".into(), s("b"));
    assert_eq!(
        check_payload(&d, "com.apple.mdm", "P").unwrap_err(),
        SchemaError::UnknownKey {
            path: "P.Bogus".into()
        }
    );
}

#[test]
fn policy_payloads_are_checked_against_apples_schema_and_errors_name_the_key() {
    use crate::schema::{validate_payload, SchemaError};
    use serde_json::json;
    let ok = validate_payload(
        "com.apple.mobiledevice.passwordpolicy",
        &json!({"forcePIN": true, "minLength": 8, "maxFailedAttempts": 6}),
    )
    .unwrap();
    assert_eq!(ok.get("minLength"), Some(&plist::Value::Integer(8.into())));
    let out_of_range = validate_payload(
        "com.apple.mobiledevice.passwordpolicy",
        &json!({"maxFailedAttempts": 20}),
    )
    .unwrap_err();
    assert_eq!(
        out_of_range.to_string(),
        "com.apple.mobiledevice.passwordpolicy.maxFailedAttempts: 20 is out of range (2–11)"
    );
    let wrong = validate_payload(
        "com.apple.mobiledevice.passwordpolicy",
        &json!({"forcePIN": "yes"}),
    )
    .unwrap_err();
    assert!(matches!(wrong, SchemaError::WrongType { ref path, .. } if path.ends_with("forcePIN")));
    let unknown = validate_payload(
        "com.apple.applicationaccess",
        &json!({"allowEverything": true}),
    )
    .unwrap_err();
    assert!(
        unknown.to_string().contains("allowEverything: unknown key"),
        "{unknown}"
    );
    let missing =
        validate_payload("com.apple.vpn.managed", &json!({"VPNType": "IKEv2"})).unwrap_err();
    assert!(missing.to_string().contains("UserDefinedName"), "{missing}");
    let builder =
        validate_payload("com.apple.wifi.managed", &json!({"PayloadUUID": "x"})).unwrap_err();
    assert!(builder.to_string().contains("set by Mamori"), "{builder}");
    let not_allowed = validate_payload(
        "com.apple.wifi.managed",
        &json!({"SSID_STR": "Corp", "EncryptionType": "ROT13"}),
    )
    .unwrap_err();
    assert!(
        not_allowed.to_string().contains("EncryptionType"),
        "{not_allowed}"
    );
}

#[test]
fn a_configuration_profile_holds_validated_payloads_with_stable_identifiers() {
    use crate::schema::validate_payload;
    use serde_json::json;
    let wifi = validate_payload(
        "com.apple.wifi.managed",
        &json!({"SSID_STR": "Corp", "EncryptionType": "WPA2", "Password": "s3cret-pass", "AutoJoin": true}),
    )
    .unwrap();
    let pass = validate_payload(
        "com.apple.mobiledevice.passwordpolicy",
        &json!({"forcePIN": true, "minLength": 8}),
    )
    .unwrap();
    let uuid = Uuid::new_v4();
    let p = ConfigurationProfile {
        identifier: "com.mamori.policy.wifi-corp".into(),
        uuid,
        display_name: "Corporate Wi-Fi".into(),
        description: "Managed by Mamori".into(),
        organization: "Acme".into(),
        payloads: vec![
            PayloadSpec {
                payload_type: "com.apple.wifi.managed".into(),
                identifier: "com.mamori.policy.wifi-corp.wifi".into(),
                uuid: Uuid::new_v4(),
                display_name: "Wi-Fi".into(),
                content: wifi,
            },
            PayloadSpec {
                payload_type: "com.apple.mobiledevice.passwordpolicy".into(),
                identifier: "com.mamori.policy.wifi-corp.passcode".into(),
                uuid: Uuid::new_v4(),
                display_name: "Passcode".into(),
                content: pass,
            },
        ],
    };
    let xml = build_configuration_profile(&p).unwrap();
    let v: plist::Value = plist::from_bytes(&xml).unwrap();
    let top = v.as_dictionary().unwrap();
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(
        top["PayloadUUID"].as_string(),
        Some(uuid.hyphenated().to_string().to_ascii_uppercase().as_str())
    );
    let payloads = top["PayloadContent"].as_array().unwrap();
    assert_eq!(payloads.len(), 2);
    let w = payloads[0].as_dictionary().unwrap();
    assert_eq!(w["SSID_STR"].as_string(), Some("Corp"));
    assert_eq!(w["PayloadOrganization"].as_string(), Some("Acme"));
    let mut dup = p.clone();
    dup.payloads[1].uuid = dup.payloads[0].uuid;
    assert!(build_configuration_profile(&dup).is_err());
    let mut empty = p;
    empty.payloads.clear();
    assert!(build_configuration_profile(&empty).is_err());
}
