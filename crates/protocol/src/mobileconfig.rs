//! Configuration profile (`.mobileconfig`) generation: the enrollment
//! profile, and profiles built from policies ([`build_configuration_profile`]).
//!
//! The profile contains, in order: an optional `com.apple.security.root`
//! payload (the TLS CA, so the device trusts the server), a
//! `com.apple.security.scep` payload (the device identity), and the
//! `com.apple.mdm` payload referencing the SCEP identity. Every payload and the
//! top level are validated against Apple's profile schema before encoding.
//! The result is unsigned XML; signing is up to the caller.

use uuid::Uuid;

use crate::plistjson::{to_xml_bytes, PlistError};
use crate::schema::{check_plist_dict, profile_schema, KeySchema, PlistCheck, SchemaError};

/// Default MDM access rights: all rights (bits 0–12).
pub const DEFAULT_ACCESS_RIGHTS: u64 = 8191;

/// Server capabilities advertised in the MDM payload.
pub const SERVER_CAPABILITIES: &[&str] = &[
    "com.apple.mdm.per-user-connections",
    "com.apple.mdm.bootstraptoken",
];

/// Inputs for [`build_enrollment_profile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentProfileParams {
    /// MDM `ServerURL`, e.g. `https://mdm.example.com:8443/mdm/connect`.
    pub server_url: String,
    /// MDM `CheckInURL`, e.g. `https://mdm.example.com:8443/mdm/checkin`.
    /// Empty: omitted (the device then checks in at `server_url`).
    pub checkin_url: String,
    /// APNs topic (`com.apple.mgmt.External.<uuid>`).
    pub topic: String,
    /// SCEP `URL`, e.g. `https://mdm.example.com:8443/scep`.
    pub scep_url: String,
    /// SCEP `Challenge`.
    pub scep_challenge: String,
    /// Common name of the requested device identity.
    pub scep_subject_cn: String,
    /// SCEP `Name` (CA identifier).
    pub scep_ca_name: String,
    /// DER certificate to install as a trusted root (the server's TLS CA).
    pub tls_root_der: Option<Vec<u8>>,
    /// MDM `SignMessage`.
    pub sign_message: bool,
    /// MDM `CheckOutWhenRemoved`.
    pub check_out_when_removed: bool,
    /// MDM `AccessRights` (1..=8191).
    pub access_rights: u64,
    /// `PayloadOrganization`.
    pub organization: String,
    /// Top-level `PayloadIdentifier`; sub-payloads use `<this>.root`,
    /// `<this>.scep`, `<this>.mdm`.
    pub profile_identifier: String,
    /// Top-level `PayloadUUID`.
    pub profile_uuid: Uuid,
    /// SCEP payload UUID (also the MDM `IdentityCertificateUUID`).
    pub scep_payload_uuid: Uuid,
    /// MDM payload UUID.
    pub mdm_payload_uuid: Uuid,
    /// Root-certificate payload UUID.
    pub root_payload_uuid: Uuid,
}

impl Default for EnrollmentProfileParams {
    /// Empty URLs/topic/challenge, [`DEFAULT_ACCESS_RIGHTS`], `SignMessage`
    /// off, `CheckOutWhenRemoved` on, and fresh random payload UUIDs.
    fn default() -> Self {
        Self {
            server_url: String::new(),
            checkin_url: String::new(),
            topic: String::new(),
            scep_url: String::new(),
            scep_challenge: String::new(),
            scep_subject_cn: "Mamori Device Identity".to_owned(),
            scep_ca_name: "Mamori".to_owned(),
            tls_root_der: None,
            sign_message: false,
            check_out_when_removed: true,
            access_rights: DEFAULT_ACCESS_RIGHTS,
            organization: "Mamori".to_owned(),
            profile_identifier: "com.mamori.enrollment".to_owned(),
            profile_uuid: Uuid::new_v4(),
            scep_payload_uuid: Uuid::new_v4(),
            mdm_payload_uuid: Uuid::new_v4(),
            root_payload_uuid: Uuid::new_v4(),
        }
    }
}

fn uuid_string(u: &Uuid) -> String {
    u.hyphenated().to_string().to_ascii_uppercase()
}

fn invalid(key: &str, reason: &str) -> PlistError {
    PlistError::InvalidValue {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

fn require_url(key: &str, value: &str, allow_http: bool) -> Result<(), PlistError> {
    let ok = value.starts_with("https://") || (allow_http && value.starts_with("http://"));
    if !ok || value.len() <= "https://".len() || value.chars().any(char::is_whitespace) {
        return Err(invalid(
            key,
            if allow_http {
                "must be an http(s) URL"
            } else {
                "must be an https URL"
            },
        ));
    }
    Ok(())
}

fn validate_params(p: &EnrollmentProfileParams) -> Result<(), PlistError> {
    require_url("ServerURL", &p.server_url, false)?;
    if !p.checkin_url.is_empty() {
        require_url("CheckInURL", &p.checkin_url, false)?;
    }
    require_url("SCEP URL", &p.scep_url, true)?;
    for (key, value) in [
        ("Topic", &p.topic),
        ("SCEP Subject CN", &p.scep_subject_cn),
        ("PayloadIdentifier", &p.profile_identifier),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(key, "must not be empty"));
        }
    }
    if p.access_rights == 0 || p.access_rights > DEFAULT_ACCESS_RIGHTS {
        return Err(invalid("AccessRights", "must be between 1 and 8191"));
    }
    let uuids = [
        p.profile_uuid,
        p.scep_payload_uuid,
        p.mdm_payload_uuid,
        p.root_payload_uuid,
    ];
    for (i, a) in uuids.iter().enumerate() {
        if uuids[i + 1..].contains(a) {
            return Err(invalid("PayloadUUID", "payload UUIDs must be distinct"));
        }
    }
    Ok(())
}

fn s(v: &str) -> plist::Value {
    plist::Value::String(v.to_owned())
}

fn common(
    payload_type: &str,
    identifier: String,
    uuid: &Uuid,
    display: &str,
    org: &str,
) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    d.insert("PayloadType".into(), s(payload_type));
    d.insert("PayloadVersion".into(), plist::Value::Integer(1.into()));
    d.insert("PayloadIdentifier".into(), plist::Value::String(identifier));
    d.insert(
        "PayloadUUID".into(),
        plist::Value::String(uuid_string(uuid)),
    );
    d.insert("PayloadDisplayName".into(), s(display));
    if !org.is_empty() {
        d.insert("PayloadOrganization".into(), s(org));
    }
    d
}

/// Check a payload against `CommonPayloadKeys` + its own schema.
fn check_payload(
    payload: &plist::Dictionary,
    payload_type: &str,
    path: &str,
) -> Result<(), SchemaError> {
    let missing = || SchemaError::Load(format!("no embedded profile schema for {payload_type}"));
    let common = profile_schema("CommonPayloadKeys").ok_or_else(missing)?;
    let own = profile_schema(payload_type).ok_or_else(missing)?;
    let keys: Vec<KeySchema> = own
        .keys
        .iter()
        .chain(
            common
                .keys
                .iter()
                .filter(|c| !own.keys.iter().any(|k| k.name == c.name)),
        )
        .cloned()
        .collect();
    check_plist_dict(payload, &keys, path, STRICT)
}

const STRICT: PlistCheck = PlistCheck {
    reject_unknown: true,
    unconditional_required_only: false,
};

/// Build the unsigned enrollment profile as an XML plist.
pub fn build_enrollment_profile(params: &EnrollmentProfileParams) -> Result<Vec<u8>, PlistError> {
    validate_params(params)?;
    let p = params;
    let id = p.profile_identifier.trim();
    let mut payloads: Vec<(plist::Dictionary, &str)> = Vec::new();

    if let Some(der) = p.tls_root_der.as_ref().filter(|d| !d.is_empty()) {
        let mut root = common(
            "com.apple.security.root",
            format!("{id}.root"),
            &p.root_payload_uuid,
            "Mamori server CA",
            &p.organization,
        );
        root.insert("PayloadCertificateFileName".into(), s("mamori-ca.cer"));
        root.insert("PayloadContent".into(), plist::Value::Data(der.clone()));
        payloads.push((root, "com.apple.security.root"));
    }

    let mut scep_content = plist::Dictionary::new();
    scep_content.insert("URL".into(), s(&p.scep_url));
    if !p.scep_ca_name.is_empty() {
        scep_content.insert("Name".into(), s(&p.scep_ca_name));
    }
    scep_content.insert(
        "Subject".into(),
        plist::Value::Array(vec![plist::Value::Array(vec![plist::Value::Array(vec![
            s("CN"),
            s(&p.scep_subject_cn),
        ])])]),
    );
    if !p.scep_challenge.is_empty() {
        scep_content.insert("Challenge".into(), s(&p.scep_challenge));
    }
    scep_content.insert("Keysize".into(), plist::Value::Integer(2048.into()));
    scep_content.insert("Key Type".into(), s("RSA"));
    // 1 = signing, 4 = encryption.
    scep_content.insert("Key Usage".into(), plist::Value::Integer(5.into()));
    let mut scep = common(
        "com.apple.security.scep",
        format!("{id}.scep"),
        &p.scep_payload_uuid,
        "Mamori device identity",
        &p.organization,
    );
    scep.insert(
        "PayloadContent".into(),
        plist::Value::Dictionary(scep_content),
    );
    payloads.push((scep, "com.apple.security.scep"));

    let mut mdm = common(
        "com.apple.mdm",
        format!("{id}.mdm"),
        &p.mdm_payload_uuid,
        "Mamori device management",
        &p.organization,
    );
    mdm.insert("ServerURL".into(), s(&p.server_url));
    if !p.checkin_url.is_empty() {
        mdm.insert("CheckInURL".into(), s(&p.checkin_url));
    }
    mdm.insert("Topic".into(), s(&p.topic));
    mdm.insert(
        "IdentityCertificateUUID".into(),
        plist::Value::String(uuid_string(&p.scep_payload_uuid)),
    );
    mdm.insert(
        "AccessRights".into(),
        plist::Value::Integer(p.access_rights.into()),
    );
    mdm.insert("SignMessage".into(), plist::Value::Boolean(p.sign_message));
    mdm.insert(
        "CheckOutWhenRemoved".into(),
        plist::Value::Boolean(p.check_out_when_removed),
    );
    mdm.insert(
        "ServerCapabilities".into(),
        plist::Value::Array(SERVER_CAPABILITIES.iter().map(|c| s(c)).collect()),
    );
    payloads.push((mdm, "com.apple.mdm"));

    for (i, (payload, ty)) in payloads.iter().enumerate() {
        check_payload(payload, ty, &format!("PayloadContent[{i}]"))?;
    }

    let mut top = common(
        "Configuration",
        id.to_owned(),
        &p.profile_uuid,
        "Mamori enrollment",
        &p.organization,
    );
    top.insert(
        "PayloadDescription".into(),
        s("Enrolls this device in Mamori device management."),
    );
    top.insert(
        "PayloadContent".into(),
        plist::Value::Array(
            payloads
                .into_iter()
                .map(|(d, _)| plist::Value::Dictionary(d))
                .collect(),
        ),
    );
    let top_schema = profile_schema("TopLevel")
        .ok_or_else(|| SchemaError::Load("no embedded TopLevel profile schema".to_owned()))?;
    check_plist_dict(&top, &top_schema.keys, "", STRICT)?;
    to_xml_bytes(&plist::Value::Dictionary(top))
}

/// One payload of a configuration profile.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadSpec {
    /// `PayloadType`, e.g. `com.apple.wifi.managed`.
    pub payload_type: String,
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: Uuid,
    /// `PayloadDisplayName`.
    pub display_name: String,
    /// The payload's own keys, already validated
    /// ([`crate::schema::validate_payload`]).
    pub content: plist::Dictionary,
}

/// Inputs for [`build_configuration_profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigurationProfile {
    /// Top-level `PayloadIdentifier` (stable: a new version replaces the
    /// installed one).
    pub identifier: String,
    /// Top-level `PayloadUUID` (changes with each version).
    pub uuid: Uuid,
    /// `PayloadDisplayName`.
    pub display_name: String,
    /// `PayloadDescription` (empty: omitted).
    pub description: String,
    /// `PayloadOrganization`.
    pub organization: String,
    /// The payloads.
    pub payloads: Vec<PayloadSpec>,
}

/// Build an unsigned configuration profile (XML plist), every payload and
/// the top level checked against Apple's schema.
pub fn build_configuration_profile(p: &ConfigurationProfile) -> Result<Vec<u8>, PlistError> {
    if p.identifier.trim().is_empty() {
        return Err(invalid("PayloadIdentifier", "must not be empty"));
    }
    if p.payloads.is_empty() {
        return Err(invalid(
            "PayloadContent",
            "a profile needs at least one payload",
        ));
    }
    let mut uuids = vec![p.uuid];
    let mut content = Vec::with_capacity(p.payloads.len());
    for (i, spec) in p.payloads.iter().enumerate() {
        if uuids.contains(&spec.uuid) {
            return Err(invalid("PayloadUUID", "payload UUIDs must be distinct"));
        }
        uuids.push(spec.uuid);
        let mut d = common(
            &spec.payload_type,
            spec.identifier.clone(),
            &spec.uuid,
            &spec.display_name,
            &p.organization,
        );
        for (k, v) in &spec.content {
            d.insert(k.clone(), v.clone());
        }
        check_payload(&d, &spec.payload_type, &format!("PayloadContent[{i}]"))?;
        content.push(plist::Value::Dictionary(d));
    }
    let mut top = common(
        "Configuration",
        p.identifier.clone(),
        &p.uuid,
        &p.display_name,
        &p.organization,
    );
    if !p.description.is_empty() {
        top.insert("PayloadDescription".into(), s(&p.description));
    }
    top.insert("PayloadContent".into(), plist::Value::Array(content));
    let top_schema = profile_schema("TopLevel")
        .ok_or_else(|| SchemaError::Load("no embedded TopLevel profile schema".to_owned()))?;
    check_plist_dict(&top, &top_schema.keys, "", STRICT)?;
    to_xml_bytes(&plist::Value::Dictionary(top))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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

        let root = content[0].as_dictionary().unwrap();
        assert_eq!(
            get(root, "PayloadType").as_string(),
            Some("com.apple.security.root")
        );
        assert_eq!(
            get(root, "PayloadContent").as_data(),
            Some(&[0x30u8, 0x82, 0x01][..])
        );

        let scep = content[1].as_dictionary().unwrap();
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

        let mdm = content[2].as_dictionary().unwrap();
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
        assert!(
            matches!(wrong, SchemaError::WrongType { ref path, .. } if path.ends_with("forcePIN"))
        );
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
}
