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

mod enrollment;

pub use enrollment::{
    build_enrollment_profile, EnrollmentProfileParams, DEFAULT_ACCESS_RIGHTS, SERVER_CAPABILITIES,
};

fn uuid_string(u: &Uuid) -> String {
    u.hyphenated().to_string().to_ascii_uppercase()
}

fn invalid(key: &str, reason: &str) -> PlistError {
    PlistError::InvalidValue {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
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

/// Check the top level against Apple's `TopLevel` schema and encode the
/// profile as XML.
fn check_top_level_and_encode(top: plist::Dictionary) -> Result<Vec<u8>, PlistError> {
    let top_schema = profile_schema("TopLevel")
        .ok_or_else(|| SchemaError::Load("no embedded TopLevel profile schema".to_owned()))?;
    check_plist_dict(&top, &top_schema.keys, "", STRICT)?;
    to_xml_bytes(&plist::Value::Dictionary(top))
}

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
    check_top_level_and_encode(top)
}

#[cfg(test)]
mod tests;
