//! Which parts of what a device reports are personal data, and how they are
//! withheld (pure: no I/O).
//!
//! What a device says about its user — its name ("Taro's iPhone"), where it
//! is, its phone number and carrier, the accounts and users on it, its
//! host name (derived from the device name) — is personal data. Only an
//! actor holding `personal_data_read` sees it, and every such read is
//! recorded (`Services::device_view` and friends); everyone else gets the
//! same document with each personal value replaced by `null` and its place
//! named in a `redacted` list.
//!
//! Deny by default: a command result is personal except for the keys listed
//! here as not personal for its RequestType, so a RequestType this module
//! does not know (UserList, CertificateList, a future one) is withheld
//! whole. Not personal: what identifies or describes the hardware, the OS
//! and the management state (serial number, model, OS version, IMEI/MEID,
//! MAC addresses, capacity, supervision, SecurityInfo), and the app and
//! profile lists. IMEI and MEID identify the handset, like the serial number
//! the organisation already tracks its hardware by (the serial number is
//! stored in the clear and searched); the subscription — phone number,
//! ICCID, carrier, the network the device is on, roaming — is the person's.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// How one key of a result is treated.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Not personal: shown to every reader.
    Open,
    /// A dictionary of which only the listed keys are not personal.
    Dict(&'static [&'static str]),
}

/// DeviceInformation `QueryResponses` keys that are not personal: hardware,
/// OS and management state. Any other answer (DeviceName, HostName,
/// LocalHostName, PhoneNumber, ICCID, ServiceSubscriptions, carrier and
/// network codes, roaming, time zone, languages, store account, push token,
/// ...) is withheld.
pub const DEVICE_INFORMATION_OPEN: &[&str] = &[
    "UDID",
    "SerialNumber",
    "Model",
    "ModelName",
    "ModelNumber",
    "ProductName",
    "OSVersion",
    "BuildVersion",
    "SupplementalBuildVersion",
    "SupplementalOSVersionExtra",
    "IMEI",
    "MEID",
    "ModemFirmwareVersion",
    "CellularTechnology",
    "WiFiMAC",
    "BluetoothMAC",
    "EthernetMACs",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "HasBattery",
    "IsSupervised",
    "IsActivationLockEnabled",
    "IsActivationLockSupported",
    "IsDeviceLocatorServiceEnabled",
    "IsMDMLostModeEnabled",
    "IsMultiUser",
    "IsAppleSilicon",
    "SystemIntegrityProtectionEnabled",
    "SupportsLOMDevice",
    "AwaitingConfiguration",
];

/// The keys of each RequestType's result that are not personal. Every other
/// key, and every key of a RequestType not listed, is personal.
/// DeviceLocation is listed with nothing open: all of it (Latitude,
/// Longitude, Altitude, Speed, Course, accuracies, Timestamp) is personal.
const RESULTS: &[(&str, &[(&str, Part)])] = &[
    (
        "DeviceInformation",
        &[("QueryResponses", Part::Dict(DEVICE_INFORMATION_OPEN))],
    ),
    ("SecurityInfo", &[("SecurityInfo", Part::Open)]),
    (
        "InstalledApplicationList",
        &[("InstalledApplicationList", Part::Open)],
    ),
    (
        "ManagedApplicationList",
        &[("ManagedApplicationList", Part::Open)],
    ),
    ("ProfileList", &[("ProfileList", Part::Open)]),
    ("AvailableOSUpdates", &[("AvailableOSUpdates", Part::Open)]),
    ("OSUpdateStatus", &[("OSUpdateStatus", Part::Open)]),
    ("DeviceLocation", &[]),
];

/// Personal keys named as such in the audit log. A withheld key outside
/// this list and the open lists is counted there, not named: key names come
/// from the device, and the audit log holds no personal data.
const KNOWN_PERSONAL: &[&str] = &[
    "device_name",
    "device_information",
    "result",
    "QueryResponses",
    "DeviceName",
    "HostName",
    "LocalHostName",
    "PhoneNumber",
    "ICCID",
    "ServiceSubscriptions",
    "CarrierSettingsVersion",
    "CurrentCarrierNetwork",
    "SubscriberCarrierNetwork",
    "CurrentMCC",
    "CurrentMNC",
    "SubscriberMCC",
    "SubscriberMNC",
    "IsRoaming",
    "DataRoamingEnabled",
    "VoiceRoamingEnabled",
    "PersonalHotspotEnabled",
    "IsNetworkTethered",
    "TimeZone",
    "Languages",
    "Locales",
    "iTunesStoreAccountHash",
    "iTunesStoreAccountIsActive",
    "IsCloudBackupEnabled",
    "LastCloudBackupDate",
    "IsDoNotDisturbInEffect",
    "DiagnosticSubmissionEnabled",
    "AppAnalyticsEnabled",
    "EASDeviceIdentifier",
    "PushToken",
    "OrganizationInfo",
    "MDMOptions",
    "Latitude",
    "Longitude",
    "Altitude",
    "Speed",
    "Course",
    "HorizontalAccuracy",
    "VerticalAccuracy",
    "Timestamp",
    "Users",
    "CertificateList",
    "ProvisioningProfileList",
    "ActivationLockBypassCode",
];

/// At most this many field names in one audit record (the rest counted).
const AUDIT_NAMES_MAX: usize = 64;

fn is_known(key: &str) -> bool {
    KNOWN_PERSONAL.contains(&key)
        || DEVICE_INFORMATION_OPEN.contains(&key)
        || RESULTS
            .iter()
            .any(|(rt, keys)| *rt == key || keys.iter().any(|(k, _)| *k == key))
}

/// The personal values found in one record: where each is (exact paths,
/// for the `redacted` list of the answer) and how the audit log names them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Personal {
    /// Dotted paths of the personal values (`device_name`,
    /// `device_information.DeviceName`, `result.Latitude`), in document order.
    pub paths: Vec<String>,
    named: BTreeSet<String>,
    unnamed: usize,
}

impl Personal {
    fn note(&mut self, prefix: &str, key: &str) {
        self.paths.push(format!("{prefix}{key}"));
        if is_known(key) && self.named.len() < AUDIT_NAMES_MAX {
            self.named.insert(format!("{prefix}{key}"));
        } else {
            self.unnamed += 1;
        }
    }

    /// Whether there is nothing personal.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The audit record's detail: the fields named (only names this module
    /// knows; others are counted), never a value.
    pub fn audit_fields(&self) -> String {
        let mut s = format!(
            "fields={}",
            self.named.iter().cloned().collect::<Vec<_>>().join(",")
        );
        if self.unnamed > 0 {
            s.push_str(&format!(" other_fields={}", self.unnamed));
        }
        s
    }
}

/// Walks `map`, noting every personal value and, when `redact`, replacing
/// it with `null`. `open` says which keys are not personal.
fn walk(
    map: &mut Map<String, Value>,
    open: &dyn Fn(&str) -> Option<Part>,
    prefix: &str,
    redact: bool,
    found: &mut Personal,
) {
    for (k, v) in map.iter_mut() {
        if v.is_null() {
            continue;
        }
        match open(k) {
            Some(Part::Open) => {}
            Some(Part::Dict(keys)) if v.is_object() => {
                if let Some(inner) = v.as_object_mut() {
                    let inner_open = |key: &str| keys.contains(&key).then_some(Part::Open);
                    walk(inner, &inner_open, &format!("{prefix}{k}."), redact, found);
                }
            }
            _ => {
                found.note(prefix, k);
                if redact {
                    *v = Value::Null;
                }
            }
        }
    }
}

/// Finds (and, when `redact`, withholds) the personal values of a stored
/// DeviceInformation answer and a device name.
pub fn device_fields(
    device_name: &mut Option<String>,
    device_information: &mut Option<Value>,
    redact: bool,
) -> Personal {
    let mut found = Personal::default();
    if device_name.is_some() {
        found.note("", "device_name");
        if redact {
            *device_name = None;
        }
    }
    match device_information {
        Some(Value::Object(map)) => {
            let open = |key: &str| DEVICE_INFORMATION_OPEN.contains(&key).then_some(Part::Open);
            walk(map, &open, "device_information.", redact, &mut found);
        }
        Some(Value::Null) | None => {}
        Some(_) => {
            found.note("", "device_information");
            if redact {
                *device_information = None;
            }
        }
    }
    found
}

/// Finds (and, when `redact`, withholds) the personal values of a command
/// result of `request_type` (deny by default: see the module).
pub fn command_result(request_type: &str, result: &mut Option<Value>, redact: bool) -> Personal {
    let mut found = Personal::default();
    let shape: &[(&str, Part)] = RESULTS
        .iter()
        .find(|(rt, _)| *rt == request_type)
        .map_or(&[], |(_, s)| s);
    match result {
        Some(Value::Object(map)) => {
            let open = |key: &str| shape.iter().find(|(k, _)| *k == key).map(|(_, p)| *p);
            walk(map, &open, "result.", redact, &mut found);
        }
        Some(Value::Null) | None => {}
        Some(_) => {
            found.note("", "result");
            if redact {
                *result = None;
            }
        }
    }
    found
}

/// The SecurityInfo keys no administrator's view carries: a Mac's escrowed
/// FileVault personal recovery key (encrypted, as CMS) and the key it was
/// encrypted to. No page or route reads them; a view drops them.
const ESCROW_KEYS: &[&str] = &[
    "FDE_PersonalRecoveryKeyCMS",
    "FDE_PersonalRecoveryKeyDeviceKey",
];

/// Removes the escrowed recovery key from a SecurityInfo answer.
pub(crate) fn drop_escrow(security_info: &mut Option<Value>) {
    if let Some(Value::Object(map)) = security_info {
        for k in ESCROW_KEYS {
            map.remove(*k);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_view_never_carries_the_escrowed_recovery_key() {
        let mut info = Some(serde_json::json!({
            "FDE_Enabled": true,
            "FDE_PersonalRecoveryKeyCMS": "MIAGCSqGSIb3DQEHA6CAMIACAQAx",
            "FDE_PersonalRecoveryKeyDeviceKey": "ABCD-EFGH",
        }));
        drop_escrow(&mut info);
        assert_eq!(info, Some(serde_json::json!({"FDE_Enabled": true})));
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn a_location_is_withheld_whole_and_named_in_the_audit() {
        let mut r = Some(json!({
            "Latitude": 35.6812, "Longitude": 139.7671, "Altitude": 40.0,
            "Speed": 0.0, "Course": 0.0, "HorizontalAccuracy": 12.0,
            "VerticalAccuracy": 8.0, "Timestamp": "2026-11-24T09:30:00Z"
        }));
        let p = command_result("DeviceLocation", &mut r, true);
        let r = r.unwrap_or_default();
        assert!(
            r.as_object()
                .is_some_and(|m| m.values().all(Value::is_null)),
            "{r}"
        );
        assert_eq!(p.paths.len(), 8);
        assert!(p.audit_fields().contains("result.Latitude"));
        assert!(!p.audit_fields().contains("35.68"));
        assert!(!p.audit_fields().contains("other_fields"));
    }

    #[test]
    fn device_information_keeps_hardware_and_withholds_the_user() {
        let mut r = Some(json!({"QueryResponses": {
            "DeviceName": "Taro's iPhone", "PhoneNumber": "+81 90 0000 0000",
            "ServiceSubscriptions": [{"PhoneNumber": "+81 90 0000 0000", "ICCID": "8981"}],
            "SerialNumber": "C02XYZ", "OSVersion": "18.1", "IMEI": "35 000000 000000 0",
            "EthernetMACs": ["aa:bb"], "IsSupervised": true
        }}));
        let p = command_result("DeviceInformation", &mut r, true);
        let q = &r.unwrap_or_default()["QueryResponses"];
        assert!(q["DeviceName"].is_null() && q["PhoneNumber"].is_null());
        assert!(q["ServiceSubscriptions"].is_null());
        assert_eq!(q["SerialNumber"], "C02XYZ");
        assert_eq!(q["IMEI"], "35 000000 000000 0");
        assert_eq!(q["IsSupervised"], true);
        assert_eq!(
            p.paths,
            vec![
                "result.QueryResponses.DeviceName",
                "result.QueryResponses.PhoneNumber",
                "result.QueryResponses.ServiceSubscriptions"
            ]
        );
    }

    #[test]
    fn an_unknown_result_type_is_withheld_and_its_keys_are_not_named() {
        let mut r = Some(
            json!({"Users": [{"UserName": "taro", "FullName": "Taro Yamada"}],
                                "Taro Yamada": "x"}),
        );
        let p = command_result("UserList", &mut r, true);
        let r = r.unwrap_or_default();
        assert!(r["Users"].is_null() && r["Taro Yamada"].is_null());
        let audit = p.audit_fields();
        assert_eq!(audit, "fields=result.Users other_fields=1");
        // A non-dictionary result is withheld too.
        let mut odd = Some(json!(["Taro"]));
        assert_eq!(command_result("Whatever", &mut odd, true).paths, ["result"]);
        assert!(odd.is_none());
    }

    #[test]
    fn open_results_and_empty_answers_have_nothing_personal() {
        let mut apps = Some(json!({"InstalledApplicationList": [{"Identifier": "a.b"}]}));
        assert!(command_result("InstalledApplicationList", &mut apps, true).is_empty());
        assert!(apps.unwrap_or_default()["InstalledApplicationList"].is_array());
        let mut ack = Some(json!({}));
        assert!(command_result("DeviceLock", &mut ack, true).is_empty());
        assert!(command_result("DeviceLocation", &mut None, true).is_empty());
    }

    #[test]
    fn revealing_finds_the_same_fields_and_changes_nothing() {
        let mut name = Some("Taro's Mac".to_owned());
        let mut info = Some(json!({"LocalHostName": "Taros-Mac", "OSVersion": "15.1"}));
        let p = device_fields(&mut name, &mut info, false);
        assert_eq!(p.paths, ["device_name", "device_information.LocalHostName"]);
        assert_eq!(name.as_deref(), Some("Taro's Mac"));
        assert_eq!(
            info.clone().unwrap_or_default()["LocalHostName"],
            "Taros-Mac"
        );
        let q = device_fields(&mut name, &mut info, true);
        assert_eq!(p, q);
        assert!(name.is_none());
        let info = info.unwrap_or_default();
        assert!(info["LocalHostName"].is_null());
        assert_eq!(info["OSVersion"], "15.1");
    }
}
