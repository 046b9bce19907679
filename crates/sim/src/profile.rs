//! Reading configuration profiles (`.mobileconfig`) the way a device does.

use std::io::Cursor;

use crate::error::{Result, SimError};

/// Largest profile the simulator accepts (real devices cap far lower).
const MAX_PROFILE_BYTES: usize = 8 * 1024 * 1024;

/// What a device learns from an MDM enrollment profile.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProfile {
    /// Top-level `PayloadIdentifier`.
    pub identifier: String,
    /// Top-level `PayloadUUID`.
    pub uuid: String,
    /// Top-level `PayloadDisplayName`, if any.
    pub display_name: Option<String>,
    /// SCEP payload `URL`.
    pub scep_url: String,
    /// SCEP payload `Name` (sent as `message=` in GetCACert), if any.
    pub scep_name: Option<String>,
    /// SCEP payload `Challenge`, if any.
    pub scep_challenge: Option<String>,
    /// SCEP payload `Subject`: relative distinguished names, each a list of
    /// `(attribute, value)` pairs, e.g. `[[("CN", "Device")]]`.
    pub scep_subject: Vec<Vec<(String, String)>>,
    /// SCEP payload `Keysize` (default 1024 per Apple; the simulator always
    /// generates RSA-2048 keys, this is informational).
    pub scep_keysize: u64,
    /// MDM payload `ServerURL`.
    pub server_url: String,
    /// MDM payload `CheckInURL` (`None`: check in at [`Self::server_url`]).
    pub checkin_url: Option<String>,
    /// MDM payload `Topic`.
    pub topic: String,
    /// MDM payload `SignMessage` (default `false`).
    pub sign_message: bool,
    /// MDM payload `CheckOutWhenRemoved` (default `false`).
    pub check_out_when_removed: bool,
    /// DER certificates of the `com.apple.security.root` payloads (the TLS CA).
    pub root_certs: Vec<Vec<u8>>,
    /// The whole (unsigned) profile dictionary.
    pub raw: plist::Dictionary,
}

impl DeviceProfile {
    /// Parses an enrollment profile: an unsigned XML/binary plist or a CMS
    /// SignedData wrapping one. Requires a SCEP and an MDM payload.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let raw = parse_profile_dict(bytes)?;
        let payloads = payload_dicts(&raw);
        let scep = payloads
            .iter()
            .find(|p| payload_type(p) == Some("com.apple.security.scep"))
            .ok_or_else(|| SimError::Profile("no com.apple.security.scep payload".into()))?;
        let scep = scep
            .get("PayloadContent")
            .and_then(plist::Value::as_dictionary)
            .ok_or_else(|| SimError::Profile("SCEP payload has no PayloadContent".into()))?;
        let mdm = payloads
            .iter()
            .find(|p| payload_type(p) == Some("com.apple.mdm"))
            .ok_or_else(|| SimError::Profile("no com.apple.mdm payload".into()))?;
        let root_certs = payloads
            .iter()
            .filter(|p| payload_type(p) == Some("com.apple.security.root"))
            .filter_map(|p| p.get("PayloadContent").and_then(plist::Value::as_data))
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Self {
            identifier: req_str(&raw, "PayloadIdentifier")?,
            uuid: req_str(&raw, "PayloadUUID")?,
            display_name: opt_str(&raw, "PayloadDisplayName"),
            scep_url: req_str(scep, "URL")?,
            scep_name: opt_str(scep, "Name"),
            scep_challenge: opt_str(scep, "Challenge"),
            scep_subject: parse_subject(scep.get("Subject"))?,
            scep_keysize: scep
                .get("Keysize")
                .and_then(plist::Value::as_unsigned_integer)
                .unwrap_or(1024),
            server_url: req_str(mdm, "ServerURL")?,
            checkin_url: opt_str(mdm, "CheckInURL").filter(|u| !u.is_empty()),
            topic: req_str(mdm, "Topic")?,
            sign_message: opt_bool(mdm, "SignMessage"),
            check_out_when_removed: opt_bool(mdm, "CheckOutWhenRemoved"),
            root_certs,
            raw,
        })
    }

    /// The first `CN` of the SCEP subject, if any.
    pub fn subject_cn(&self) -> Option<&str> {
        self.scep_subject
            .iter()
            .flatten()
            .find(|(k, _)| k == "CN" || k == "2.5.4.3")
            .map(|(_, v)| v.as_str())
    }

    /// Where check-in messages go: `CheckInURL`, else `ServerURL`.
    pub fn effective_checkin_url(&self) -> &str {
        self.checkin_url.as_deref().unwrap_or(&self.server_url)
    }
}

/// Parses a configuration profile (unsigned XML/binary plist, or CMS
/// SignedData with the plist encapsulated) into its top-level dictionary.
///
/// The CMS signature is checked for internal consistency only (the signer
/// certificate is not chain-validated, as the simulator has no trust store
/// for profile signers).
pub fn parse_profile_dict(bytes: &[u8]) -> Result<plist::Dictionary> {
    if bytes.len() > MAX_PROFILE_BYTES {
        return Err(SimError::Profile("profile too large".into()));
    }
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF)
        .unwrap_or(0);
    let body = bytes.get(start..).unwrap_or_default();
    let content;
    let plist_bytes = if body.first() == Some(&0x30) {
        content = mamori_protocol::cms::verify_signed_data(body, None)?.content;
        content.as_slice()
    } else {
        bytes
    };
    let value = plist::Value::from_reader(Cursor::new(plist_bytes))?;
    value
        .into_dictionary()
        .ok_or_else(|| SimError::Profile("profile is not a dictionary".into()))
}

/// The dictionaries of the top-level `PayloadContent` array.
pub(crate) fn payload_dicts(profile: &plist::Dictionary) -> Vec<&plist::Dictionary> {
    profile
        .get("PayloadContent")
        .and_then(plist::Value::as_array)
        .map(|a| a.iter().filter_map(plist::Value::as_dictionary).collect())
        .unwrap_or_default()
}

fn payload_type(d: &plist::Dictionary) -> Option<&str> {
    d.get("PayloadType").and_then(plist::Value::as_string)
}

pub(crate) fn opt_str(d: &plist::Dictionary, key: &str) -> Option<String> {
    d.get(key)
        .and_then(plist::Value::as_string)
        .map(str::to_owned)
}

fn req_str(d: &plist::Dictionary, key: &str) -> Result<String> {
    opt_str(d, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SimError::Profile(format!("missing or empty {key}")))
}

fn opt_bool(d: &plist::Dictionary, key: &str) -> bool {
    d.get(key)
        .and_then(plist::Value::as_boolean)
        .unwrap_or(false)
}

/// `Subject` is an array of RDNs, each an array of `[type, value]` arrays.
fn parse_subject(v: Option<&plist::Value>) -> Result<Vec<Vec<(String, String)>>> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let bad = || SimError::Profile("SCEP Subject is not [[[type, value]]]".into());
    let rdns = v.as_array().ok_or_else(bad)?;
    rdns.iter()
        .map(|rdn| {
            rdn.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([k, v]) => match (k.as_string(), v.as_string()) {
                        (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                        _ => Err(bad()),
                    },
                    _ => Err(bad()),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(v: &str) -> plist::Value {
        plist::Value::String(v.into())
    }

    fn dict(pairs: Vec<(&str, plist::Value)>) -> plist::Value {
        plist::Value::Dictionary(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn sample_profile(sign_message: bool, with_root: bool) -> Vec<u8> {
        let mut payloads = Vec::new();
        if with_root {
            payloads.push(dict(vec![
                ("PayloadType", s("com.apple.security.root")),
                ("PayloadIdentifier", s("com.example.enroll.root")),
                ("PayloadUUID", s("A1")),
                ("PayloadVersion", plist::Value::Integer(1.into())),
                (
                    "PayloadContent",
                    plist::Value::Data(vec![0x30, 0x03, 1, 2, 3]),
                ),
            ]));
        }
        payloads.push(dict(vec![
            ("PayloadType", s("com.apple.security.scep")),
            ("PayloadIdentifier", s("com.example.enroll.scep")),
            ("PayloadUUID", s("A2")),
            ("PayloadVersion", plist::Value::Integer(1.into())),
            (
                "PayloadContent",
                dict(vec![
                    ("URL", s("https://mdm.example.com/scep")),
                    ("Name", s("ExampleCA")),
                    ("Challenge", s("s3cret")),
                    ("Keysize", plist::Value::Integer(2048.into())),
                    (
                        "Subject",
                        plist::Value::Array(vec![
                            plist::Value::Array(vec![plist::Value::Array(vec![
                                s("O"),
                                s("Example"),
                            ])]),
                            plist::Value::Array(vec![plist::Value::Array(vec![
                                s("CN"),
                                s("Device Identity"),
                            ])]),
                        ]),
                    ),
                ]),
            ),
        ]));
        payloads.push(dict(vec![
            ("PayloadType", s("com.apple.mdm")),
            ("PayloadIdentifier", s("com.example.enroll.mdm")),
            ("PayloadUUID", s("A3")),
            ("PayloadVersion", plist::Value::Integer(1.into())),
            ("ServerURL", s("https://mdm.example.com/mdm/connect")),
            ("CheckInURL", s("https://mdm.example.com/mdm/checkin")),
            ("Topic", s("com.apple.mgmt.External.1234")),
            ("SignMessage", plist::Value::Boolean(sign_message)),
            ("CheckOutWhenRemoved", plist::Value::Boolean(true)),
        ]));
        let top = dict(vec![
            ("PayloadType", s("Configuration")),
            ("PayloadIdentifier", s("com.example.enroll")),
            ("PayloadUUID", s("TOP-UUID")),
            ("PayloadVersion", plist::Value::Integer(1.into())),
            ("PayloadDisplayName", s("Example enrollment")),
            ("PayloadContent", plist::Value::Array(payloads)),
        ]);
        let mut out = Vec::new();
        top.to_writer_xml(&mut out).unwrap();
        out
    }

    #[test]
    fn parses_xml_enrollment_profile() {
        let p = DeviceProfile::parse(&sample_profile(true, true)).unwrap();
        assert_eq!(p.identifier, "com.example.enroll");
        assert_eq!(p.uuid, "TOP-UUID");
        assert_eq!(p.display_name.as_deref(), Some("Example enrollment"));
        assert_eq!(p.scep_url, "https://mdm.example.com/scep");
        assert_eq!(p.scep_name.as_deref(), Some("ExampleCA"));
        assert_eq!(p.scep_challenge.as_deref(), Some("s3cret"));
        assert_eq!(p.scep_keysize, 2048);
        assert_eq!(p.subject_cn(), Some("Device Identity"));
        assert_eq!(p.scep_subject.len(), 2);
        assert_eq!(p.server_url, "https://mdm.example.com/mdm/connect");
        assert_eq!(
            p.effective_checkin_url(),
            "https://mdm.example.com/mdm/checkin"
        );
        assert_eq!(p.topic, "com.apple.mgmt.External.1234");
        assert!(p.sign_message);
        assert!(p.check_out_when_removed);
        assert_eq!(p.root_certs, vec![vec![0x30, 0x03, 1, 2, 3]]);
    }

    #[test]
    fn parses_binary_profile_without_root() {
        let xml = sample_profile(false, false);
        let v = plist::Value::from_reader_xml(&xml[..]).unwrap();
        let mut bin = Vec::new();
        v.to_writer_binary(&mut bin).unwrap();
        let p = DeviceProfile::parse(&bin).unwrap();
        assert!(!p.sign_message);
        assert!(p.root_certs.is_empty());
    }

    #[test]
    fn rejects_profiles_without_mdm_or_scep() {
        let top = dict(vec![
            ("PayloadIdentifier", s("x")),
            ("PayloadUUID", s("y")),
            ("PayloadContent", plist::Value::Array(vec![])),
        ]);
        let mut out = Vec::new();
        top.to_writer_xml(&mut out).unwrap();
        assert!(matches!(
            DeviceProfile::parse(&out),
            Err(SimError::Profile(_))
        ));
        assert!(DeviceProfile::parse(b"not a plist").is_err());
        assert!(DeviceProfile::parse(&[0x30, 0x01, 0x00]).is_err());
    }
}
