//! The enrollment profile: its inputs ([`EnrollmentProfileParams`]), their
//! checks, and its three payloads (TLS root, SCEP identity, MDM).

use uuid::Uuid;

use super::{check_payload, check_top_level_and_encode, common, invalid, s, uuid_string};
use crate::plistjson::PlistError;

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

/// Build the unsigned enrollment profile as an XML plist.
pub fn build_enrollment_profile(params: &EnrollmentProfileParams) -> Result<Vec<u8>, PlistError> {
    validate_params(params)?;
    let p = params;
    let id = p.profile_identifier.trim();
    let mut payloads: Vec<(plist::Dictionary, &str)> = Vec::new();
    if let Some(root) = root_payload(p, id) {
        payloads.push((root, "com.apple.security.root"));
    }
    payloads.push((scep_payload(p, id), "com.apple.security.scep"));
    payloads.push((mdm_payload(p, id), "com.apple.mdm"));

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
    check_top_level_and_encode(top)
}

/// The `com.apple.security.root` payload with the server's TLS CA, if the
/// params carry a (non-empty) one.
fn root_payload(p: &EnrollmentProfileParams, id: &str) -> Option<plist::Dictionary> {
    let der = p.tls_root_der.as_ref().filter(|d| !d.is_empty())?;
    let mut root = common(
        "com.apple.security.root",
        format!("{id}.root"),
        &p.root_payload_uuid,
        "Mamori server CA",
        &p.organization,
    );
    root.insert("PayloadCertificateFileName".into(), s("mamori-ca.cer"));
    root.insert("PayloadContent".into(), plist::Value::Data(der.clone()));
    Some(root)
}

/// The `com.apple.security.scep` payload: how the device gets its identity.
fn scep_payload(p: &EnrollmentProfileParams, id: &str) -> plist::Dictionary {
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
    scep
}

/// The `com.apple.mdm` payload, referencing the SCEP identity.
fn mdm_payload(p: &EnrollmentProfileParams, id: &str) -> plist::Dictionary {
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
    mdm
}
