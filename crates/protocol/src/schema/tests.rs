//! Tests of the schema loading and the JSON and plist validators.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value as Json};

use super::registry::{parse_doc, CHECKIN_YAMLS, COMMAND_YAMLS, PROFILE_YAMLS};
use super::*;

fn err(v: Json) -> SchemaError {
    validate_command(&v).unwrap_err()
}

#[test]
fn every_yaml_parses() {
    for (file, text) in COMMAND_YAMLS.iter().chain(CHECKIN_YAMLS) {
        parse_doc(file, text, false).unwrap();
    }
    for (file, text) in PROFILE_YAMLS {
        parse_doc(file, text, true).unwrap();
    }
    ensure_loaded().unwrap();
    assert_eq!(request_types().count(), COMMAND_YAMLS.len());
    assert_eq!(checkin_message_types().count(), CHECKIN_YAMLS.len());
    assert!(request_types().any(|t| t == "DeviceInformation"));
    assert!(checkin_message_types().any(|t| t == "TokenUpdate"));
    assert!(profile_schema("com.apple.mdm").is_some());
}

#[test]
fn every_vendored_file_is_embedded() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/apple-schema/mdm");
    for (dir, list) in [
        ("commands", COMMAND_YAMLS),
        ("checkin", CHECKIN_YAMLS),
        ("profiles", PROFILE_YAMLS),
    ] {
        let on_disk = std::fs::read_dir(format!("{root}/{dir}"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".yaml")
            })
            .count();
        assert_eq!(on_disk, list.len(), "{dir}");
    }
}

#[test]
fn device_information_ok() {
    let d = validate_command(&json!({
        "RequestType": "DeviceInformation",
        "Queries": ["UDID", "SerialNumber", "OSVersion"]
    }))
    .unwrap();
    assert_eq!(
        d.get("RequestType").and_then(plist::Value::as_string),
        Some("DeviceInformation")
    );
    assert_eq!(d.get("Queries").unwrap().as_array().unwrap().len(), 3);
    assert_eq!(d.keys().next().map(String::as_str), Some("RequestType"));
}

#[test]
fn queries_wrong_types() {
    let e = err(json!({"RequestType": "DeviceInformation", "Queries": "UDID"}));
    assert_eq!(e.to_string(), "Command.Queries: expected array");
    let e = err(json!({"RequestType": "DeviceInformation", "Queries": ["a", "b", 3]}));
    assert_eq!(e.to_string(), "Command.Queries[2]: expected string");
    let e = err(json!({"RequestType": "DeviceInformation"}));
    assert_eq!(
        e,
        SchemaError::MissingKey {
            path: "Command.Queries".into()
        }
    );
}

#[test]
fn request_type_problems() {
    assert_eq!(
        err(json!({"RequestType": "MakeCoffee"})),
        SchemaError::UnknownRequestType("MakeCoffee".into())
    );
    assert!(matches!(err(json!({})), SchemaError::MissingKey { .. }));
    assert!(matches!(
        err(json!({"RequestType": 5})),
        SchemaError::WrongType { .. }
    ));
    assert!(matches!(err(json!([1])), SchemaError::WrongType { .. }));
}

#[test]
fn device_lock_ok_and_unknown_key() {
    let d = validate_command(&json!({
        "RequestType": "DeviceLock", "PIN": "123456", "Message": "Lost"
    }))
    .unwrap();
    assert_eq!(
        d.get("PIN").and_then(plist::Value::as_string),
        Some("123456")
    );
    let e = err(json!({"RequestType": "DeviceLock", "Pin": "123456"}));
    assert_eq!(
        e,
        SchemaError::UnknownKey {
            path: "Command.Pin".into()
        }
    );
    let e = err(json!({"RequestType": "DeviceLock", "PIN": 123456}));
    assert_eq!(e.to_string(), "Command.PIN: expected string");
}

#[test]
fn install_profile_payload_becomes_data() {
    let d = validate_command(&json!({
        "RequestType": "InstallProfile", "Payload": "PD94bWw="
    }))
    .unwrap();
    assert_eq!(
        d.get("Payload").and_then(plist::Value::as_data),
        Some(&b"<?xml"[..])
    );
    let e = err(json!({"RequestType": "InstallProfile", "Payload": "not base64!"}));
    assert_eq!(
        e.to_string(),
        "Command.Payload: expected data (base64 string)"
    );
    let e = err(json!({"RequestType": "InstallProfile"}));
    assert!(matches!(e, SchemaError::MissingKey { .. }));
}

#[test]
fn erase_device() {
    let d = validate_command(&json!({
        "RequestType": "EraseDevice", "PIN": "123456", "PreserveDataPlan": true,
        "ReturnToService": {"Enabled": true, "WiFiProfileData": "AAEC"}
    }))
    .unwrap();
    let rts = d.get("ReturnToService").unwrap().as_dictionary().unwrap();
    assert_eq!(
        rts.get("WiFiProfileData").and_then(plist::Value::as_data),
        Some(&[0u8, 1, 2][..])
    );
    let e = err(json!({"RequestType": "EraseDevice", "ReturnToService": {}}));
    assert_eq!(
        e.to_string(),
        "Command.ReturnToService.Enabled: required key missing"
    );
    validate_command(&json!({"RequestType": "EraseDevice"})).unwrap();
}

#[test]
fn rangelist_enforced() {
    let e = err(json!({"RequestType": "InstallMedia", "MediaType": "Video"}));
    assert!(matches!(e, SchemaError::NotAllowed { .. }), "{e}");
    assert!(e
        .to_string()
        .starts_with("Command.MediaType: value \"Video\""));
    let e = err(json!({"RequestType": "Settings", "Settings": [
        {"Item": "Wallpaper", "Image": "AAEC", "Where": 7}
    ]}));
    assert!(
        e.to_string()
            .starts_with("Command.Settings[0].Where: value 7"),
        "{e}"
    );
}

#[test]
fn settings_alternatives() {
    let d = validate_command(&json!({"RequestType": "Settings", "Settings": [
        {"Item": "DeviceName", "DeviceName": "Kiosk 1"},
        {"Item": "Bluetooth", "Enabled": false},
        {"Item": "ApplicationConfiguration", "Identifier": "com.example.app",
         "Configuration": {"anything": [1, {"x": "y"}]}}
    ]}))
    .unwrap();
    assert_eq!(d.get("Settings").unwrap().as_array().unwrap().len(), 3);
    let e = err(json!({"RequestType": "Settings", "Settings": [
        {"Item": "Bluetooth", "Enabled": "yes"}
    ]}));
    assert_eq!(
        e.to_string(),
        "Command.Settings[0].Enabled: expected boolean"
    );
    let e = err(json!({"RequestType": "Settings", "Settings": [{"Item": "Nope"}]}));
    assert!(
        e.to_string()
            .starts_with("Command.Settings[0]: item matches none"),
        "{e}"
    );
}

#[test]
fn no_payloadkeys_command_rejects_extras() {
    validate_command(&json!({"RequestType": "RestartDevice"})).unwrap();
    validate_command(&json!({"RequestType": "SecurityInfo"})).unwrap();
    let e = err(json!({"RequestType": "SecurityInfo", "X": 1}));
    assert_eq!(
        e,
        SchemaError::UnknownKey {
            path: "Command.X".into()
        }
    );
}

#[test]
fn null_rejected() {
    let e = err(json!({"RequestType": "DeviceLock", "Message": null}));
    assert_eq!(e.to_string(), "Command.Message: expected string");
}

#[test]
fn plist_check_modes() {
    let schema = checkin_schema("TokenUpdate").unwrap();
    let mut d = plist::Dictionary::new();
    d.insert("MessageType".into(), "TokenUpdate".into());
    d.insert("Topic".into(), "com.apple.mgmt.x".into());
    d.insert("UDID".into(), "U".into());
    d.insert("PushMagic".into(), "m".into());
    d.insert("Extra".into(), 1.into());
    let lenient = PlistCheck {
        reject_unknown: false,
        unconditional_required_only: true,
    };
    assert_eq!(
        check_plist_dict(&d, &schema.keys, "", lenient),
        Err(SchemaError::MissingKey {
            path: "Token".into()
        })
    );
    d.insert("Token".into(), plist::Value::String("x".into()));
    assert_eq!(
        check_plist_dict(&d, &schema.keys, "", lenient),
        Err(SchemaError::WrongType {
            path: "Token".into(),
            expected: "data"
        })
    );
    d.insert("Token".into(), plist::Value::Data(vec![1]));
    check_plist_dict(&d, &schema.keys, "", lenient).unwrap();
    let strict = PlistCheck {
        reject_unknown: true,
        unconditional_required_only: true,
    };
    assert_eq!(
        check_plist_dict(&d, &schema.keys, "", strict),
        Err(SchemaError::UnknownKey {
            path: "Extra".into()
        })
    );
}
