//! Unit tests of the built-in behaviour.

use super::*;
use crate::hardware::DeviceKind;

fn cmd(request_type: &str, extra: Vec<(&str, Value)>) -> Command {
    let mut command = Dictionary::new();
    command.insert("RequestType".into(), s(request_type));
    for (k, v) in extra {
        command.insert(k.into(), v);
    }
    Command {
        command_uuid: "C".into(),
        request_type: request_type.into(),
        command,
    }
}

fn acked(r: Response) -> Dictionary {
    match r {
        Response::Acknowledged(d) => d,
        other => panic!("not acknowledged: {other:?}"),
    }
}

#[test]
fn device_information_answers_requested_queries_only() {
    let info = DeviceInfo::random(DeviceKind::IPhone);
    let mut state = DeviceState::default();
    let queries = [
        "UDID",
        "SerialNumber",
        "DeviceCapacity",
        "IMEI",
        "NoSuchQuery",
    ];
    let c = cmd(
        "DeviceInformation",
        vec![(
            "Queries",
            Value::Array(queries.iter().map(|q| s(q)).collect()),
        )],
    );
    let d = acked(builtin_response(&info, &mut state, &c));
    let qr = d
        .get("QueryResponses")
        .and_then(Value::as_dictionary)
        .unwrap();
    assert_eq!(qr.len(), 4);
    assert_eq!(
        qr.get("UDID").and_then(Value::as_string),
        Some(info.udid.as_str())
    );
    assert_eq!(
        qr.get("SerialNumber").and_then(Value::as_string),
        Some(info.serial_number.as_str())
    );
    assert!(matches!(qr.get("DeviceCapacity"), Some(Value::Real(_))));
    assert_eq!(
        qr.get("IMEI").and_then(Value::as_string),
        info.imei.as_deref()
    );
    assert!(qr.get("NoSuchQuery").is_none());
}

#[test]
fn mac_omits_cellular_and_reports_fde() {
    let info = DeviceInfo::random(DeviceKind::Mac);
    let mut state = DeviceState::default();
    let c = cmd(
        "DeviceInformation",
        vec![(
            "Queries",
            Value::Array(vec![s("IMEI"), s("IsAppleSilicon")]),
        )],
    );
    let d = acked(builtin_response(&info, &mut state, &c));
    let qr = d
        .get("QueryResponses")
        .and_then(Value::as_dictionary)
        .unwrap();
    assert!(qr.get("IMEI").is_none());
    assert_eq!(
        qr.get("IsAppleSilicon").and_then(Value::as_boolean),
        Some(true)
    );
    let d = acked(builtin_response(
        &info,
        &mut state,
        &cmd("SecurityInfo", vec![]),
    ));
    let si = d
        .get("SecurityInfo")
        .and_then(Value::as_dictionary)
        .unwrap();
    assert_eq!(
        si.get("FDE_Enabled").and_then(Value::as_boolean),
        Some(true)
    );
    let missing = builtin_response(&info, &mut state, &cmd("DeviceInformation", vec![]));
    assert_eq!(missing, Response::CommandFormatError);
}

fn profile_bytes(id: &str) -> Vec<u8> {
    let mut inner = Dictionary::new();
    inner.insert("PayloadType".into(), s("com.apple.wifi.managed"));
    inner.insert("PayloadIdentifier".into(), s(&format!("{id}.wifi")));
    inner.insert("PayloadUUID".into(), s("P-1"));
    inner.insert("PayloadVersion".into(), int(1));
    let mut top = Dictionary::new();
    top.insert("PayloadType".into(), s("Configuration"));
    top.insert("PayloadIdentifier".into(), s(id));
    top.insert("PayloadUUID".into(), s("T-1"));
    top.insert("PayloadVersion".into(), int(1));
    top.insert("PayloadDisplayName".into(), s("Wi-Fi"));
    top.insert(
        "PayloadContent".into(),
        Value::Array(vec![Value::Dictionary(inner)]),
    );
    let mut out = Vec::new();
    Value::Dictionary(top).to_writer_xml(&mut out).unwrap();
    out
}

#[test]
fn install_list_remove_profiles() {
    let info = DeviceInfo::random(DeviceKind::IPhone);
    let mut state = DeviceState::default();
    let install = cmd(
        "InstallProfile",
        vec![("Payload", Value::Data(profile_bytes("com.example.wifi")))],
    );
    assert_eq!(
        builtin_response(&info, &mut state, &install),
        Response::ack()
    );
    let d = acked(builtin_response(
        &info,
        &mut state,
        &cmd("ProfileList", vec![]),
    ));
    let list = d.get("ProfileList").and_then(Value::as_array).unwrap();
    assert_eq!(list.len(), 1);
    let p = list[0].as_dictionary().unwrap();
    assert_eq!(
        p.get("PayloadIdentifier").and_then(Value::as_string),
        Some("com.example.wifi")
    );
    assert_eq!(p.get("IsManaged").and_then(Value::as_boolean), Some(true));
    let bad = cmd(
        "InstallProfile",
        vec![("Payload", Value::Data(b"nope".to_vec()))],
    );
    assert!(matches!(
        builtin_response(&info, &mut state, &bad),
        Response::Error(_)
    ));
    let rm = cmd("RemoveProfile", vec![("Identifier", s("com.example.wifi"))]);
    assert_eq!(builtin_response(&info, &mut state, &rm), Response::ack());
    assert!(matches!(
        builtin_response(&info, &mut state, &rm),
        Response::Error(_)
    ));
}

#[test]
fn apps_lock_not_now_and_unknown() {
    let info = DeviceInfo::random(DeviceKind::IPhone);
    let mut state = DeviceState {
        apps: InstalledApp::defaults_for(&info),
        ..DeviceState::default()
    };
    let c = cmd(
        "InstalledApplicationList",
        vec![(
            "Identifiers",
            Value::Array(vec![s("com.google.chrome.ios")]),
        )],
    );
    let d = acked(builtin_response(&info, &mut state, &c));
    let list = d
        .get("InstalledApplicationList")
        .and_then(Value::as_array)
        .unwrap();
    assert_eq!(list.len(), 1);
    state.not_now_remaining = 1;
    let lock = cmd("DeviceLock", vec![]);
    assert_eq!(builtin_response(&info, &mut state, &lock), Response::NotNow);
    assert!(!state.locked);
    assert_eq!(builtin_response(&info, &mut state, &lock), Response::ack());
    assert!(state.locked);
    assert_eq!(
        builtin_response(&info, &mut state, &cmd("Frobnicate", vec![])),
        Response::unknown_request_type()
    );
}
