//! Tests of check-in parsing: each message type, and the errors naming
//! the offending key.

#![allow(clippy::unwrap_used)]

use super::*;

fn xml(body: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>{body}</dict></plist>"#
    )
    .into_bytes()
}

#[test]
fn authenticate() {
    let body = xml("<key>MessageType</key><string>Authenticate</string>
         <key>Topic</key><string>com.apple.mgmt.External.abc</string>
         <key>UDID</key><string>0000-1111</string>
         <key>SerialNumber</key><string>C02XYZ</string>
         <key>Model</key><string>MacBookPro18,3</string>
         <key>ModelName</key><string>MacBook Pro</string>
         <key>DeviceName</key><string>Ann's Mac</string>
         <key>OSVersion</key><string>15.1</string>
         <key>BuildVersion</key><string>24B83</string>
         <key>ProductName</key><string>MacBookPro18,3</string>");
    let c = parse_checkin_with_raw(&body, 10_000).unwrap();
    match &c.message {
        CheckinMessage::Authenticate {
            udid,
            topic,
            serial_number,
            os_version,
            imei,
            ..
        } => {
            assert_eq!(udid.as_deref(), Some("0000-1111"));
            assert_eq!(topic, "com.apple.mgmt.External.abc");
            assert_eq!(serial_number.as_deref(), Some("C02XYZ"));
            assert_eq!(os_version.as_deref(), Some("15.1"));
            assert_eq!(imei, &None);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(c.message.device_key(), Some("0000-1111"));
    assert_eq!(c.raw["SerialNumber"], "C02XYZ");
    assert_eq!(c.message.message_type(), "Authenticate");
}

#[test]
fn authenticate_missing_topic() {
    let body = xml("<key>MessageType</key><string>Authenticate</string>
         <key>UDID</key><string>U</string>");
    let e = parse_checkin(&body).unwrap_err();
    assert!(
        matches!(&e, PlistError::MissingKey(k) if k == "Topic"),
        "{e}"
    );
    let body = xml("<key>MessageType</key><string>Authenticate</string>
         <key>Topic</key><string>t</string>");
    let e = parse_checkin(&body).unwrap_err();
    assert!(e.to_string().contains("UDID or EnrollmentID"), "{e}");
}

#[test]
fn token_update_device_and_user() {
    let body = xml("<key>MessageType</key><string>TokenUpdate</string>
         <key>Topic</key><string>com.apple.mgmt.x</string>
         <key>UDID</key><string>U1</string>
         <key>Token</key><data>AAECAw==</data>
         <key>PushMagic</key><string>magic</string>
         <key>UnlockToken</key><data>BAU=</data>
         <key>AwaitingConfiguration</key><true/>");
    let m = parse_checkin(&body).unwrap();
    let CheckinMessage::TokenUpdate {
        ident,
        token,
        push_magic,
        unlock_token,
        awaiting_configuration,
        ..
    } = &m
    else {
        panic!("{m:?}")
    };
    assert_eq!(token, &[0, 1, 2, 3]);
    assert_eq!(push_magic, "magic");
    assert_eq!(unlock_token.as_deref(), Some(&[4u8, 5][..]));
    assert!(awaiting_configuration);
    assert!(!ident.is_user_channel());
    assert_eq!(ident.channel_key().as_deref(), Some("U1"));

    let body = xml("<key>MessageType</key><string>TokenUpdate</string>
         <key>Topic</key><string>com.apple.mgmt.x</string>
         <key>UDID</key><string>U1</string>
         <key>UserID</key><string>501-UUID</string>
         <key>UserShortName</key><string>ann</string>
         <key>UserLongName</key><string>Ann A</string>
         <key>NotOnConsole</key><false/>
         <key>Token</key><data>AAECAw==</data>
         <key>PushMagic</key><string>magic</string>");
    let m = parse_checkin(&body).unwrap();
    let ident = m.ident().unwrap();
    assert!(ident.is_user_channel());
    assert_eq!(ident.device_key(), Some("U1"));
    assert_eq!(ident.channel_key().as_deref(), Some("U1:501-UUID"));
}

#[test]
fn token_update_errors_name_the_key() {
    let body = xml("<key>MessageType</key><string>TokenUpdate</string>
         <key>Topic</key><string>t</string>
         <key>UDID</key><string>U1</string>
         <key>PushMagic</key><string>magic</string>");
    let e = parse_checkin(&body).unwrap_err();
    assert!(
        matches!(&e, PlistError::MissingKey(k) if k == "Token"),
        "{e}"
    );
    let body = xml("<key>MessageType</key><string>TokenUpdate</string>
         <key>Topic</key><string>t</string>
         <key>UDID</key><string>U1</string>
         <key>Token</key><string>AAEC</string>
         <key>PushMagic</key><string>magic</string>");
    let e = parse_checkin(&body).unwrap_err();
    assert_eq!(e.to_string(), "key Token: expected data");
    let body = xml("<key>MessageType</key><string>TokenUpdate</string>
         <key>Topic</key><string>t</string>
         <key>UDID</key><integer>5</integer>
         <key>Token</key><data>AAEC</data>
         <key>PushMagic</key><string>magic</string>");
    let e = parse_checkin(&body).unwrap_err();
    assert_eq!(e.to_string(), "key UDID: expected string");
}

#[test]
fn user_enrollment_and_shared_ipad() {
    let body = xml("<key>MessageType</key><string>CheckOut</string>
         <key>Topic</key><string>t</string>
         <key>EnrollmentID</key><string>E1</string>
         <key>EnrollmentUserID</key><string>EU1</string>");
    let m = parse_checkin(&body).unwrap();
    let ident = m.ident().unwrap();
    assert_eq!(ident.device_key(), Some("E1"));
    assert_eq!(ident.channel_key().as_deref(), Some("E1:EU1"));

    let ident = Ident {
        udid: Some("D".into()),
        user_id: Some(SHARED_IPAD_USER_ID.into()),
        user_short_name: Some("ann@example.com".into()),
        ..Ident::default()
    };
    assert_eq!(ident.channel_key().as_deref(), Some("D:ann@example.com"));
}

#[test]
fn other_messages() {
    let m = parse_checkin(&xml(
        "<key>MessageType</key><string>UserAuthenticate</string>
         <key>UDID</key><string>U</string><key>UserID</key><string>X</string>",
    ))
    .unwrap();
    assert!(matches!(
        m,
        CheckinMessage::UserAuthenticate {
            digest_response: None,
            ..
        }
    ));
    let m = parse_checkin(&xml(
        "<key>MessageType</key><string>DeclarativeManagement</string>
         <key>UDID</key><string>U</string>
         <key>Endpoint</key><string>tokens</string>",
    ))
    .unwrap();
    assert!(
        matches!(m, CheckinMessage::DeclarativeManagement { ref endpoint, data: None, .. } if endpoint == "tokens")
    );
    let m = parse_checkin(&xml(
        "<key>MessageType</key><string>SetBootstrapToken</string>
         <key>UDID</key><string>U</string>
         <key>BootstrapToken</key><data>AQI=</data>",
    ))
    .unwrap();
    assert!(
        matches!(m, CheckinMessage::SetBootstrapToken { token: Some(ref t), .. } if t == &[1, 2])
    );
    let m = parse_checkin(&xml(
        "<key>MessageType</key><string>GetBootstrapToken</string>
         <key>UDID</key><string>U</string>",
    ))
    .unwrap();
    assert!(matches!(m, CheckinMessage::GetBootstrapToken { .. }));
    let m = parse_checkin(&xml(
        "<key>MessageType</key><string>GetToken</string>
         <key>UDID</key><string>U</string>
         <key>TokenServiceType</key><string>com.apple.maid</string>
         <key>TokenParameters</key><dict><key>PhoneUDID</key><string>P</string></dict>",
    ))
    .unwrap();
    let CheckinMessage::GetToken {
        token_service_type,
        token_parameters,
        ..
    } = m
    else {
        panic!()
    };
    assert_eq!(token_service_type, "com.apple.maid");
    assert_eq!(token_parameters.unwrap()["PhoneUDID"], "P");
    let e = parse_checkin(&xml("<key>MessageType</key><string>GetToken</string>
         <key>UDID</key><string>U</string>
         <key>TokenServiceType</key><string>com.example.nope</string>"))
    .unwrap_err();
    assert!(e.to_string().contains("TokenServiceType"), "{e}");
}

#[test]
fn unknown_and_missing_message_type() {
    let m = parse_checkin(&xml("<key>MessageType</key><string>FutureThing</string>
         <key>UDID</key><string>U</string>"))
    .unwrap();
    assert_eq!(m.message_type(), "FutureThing");
    assert_eq!(m.device_key(), Some("U"));
    let e = parse_checkin(&xml("<key>UDID</key><string>U</string>")).unwrap_err();
    assert!(matches!(&e, PlistError::MissingKey(k) if k == "MessageType"));
    assert!(parse_checkin(b"garbage").is_err());
}

#[test]
fn binary_body() {
    let mut d = plist::Dictionary::new();
    d.insert("MessageType".into(), "CheckOut".into());
    d.insert("Topic".into(), "t".into());
    d.insert("UDID".into(), "U".into());
    let mut bin = Vec::new();
    plist::Value::Dictionary(d)
        .to_writer_binary(&mut bin)
        .unwrap();
    assert!(matches!(
        parse_checkin(&bin).unwrap(),
        CheckinMessage::CheckOut { .. }
    ));
}
