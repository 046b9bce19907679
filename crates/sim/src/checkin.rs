//! Check-in message bodies (`Authenticate`, `TokenUpdate`, `CheckOut`).

use plist::{Dictionary, Value};

use crate::hardware::DeviceInfo;

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn base(message_type: &str, topic: &str, udid: &str) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("MessageType".into(), s(message_type));
    d.insert("Topic".into(), s(topic));
    d.insert("UDID".into(), s(udid));
    d
}

/// `Authenticate`: the device's hardware identity.
pub(crate) fn authenticate(info: &DeviceInfo, topic: &str, udid: &str) -> Dictionary {
    let mut d = base("Authenticate", topic, udid);
    for (k, v) in [
        ("DeviceName", &info.device_name),
        ("Model", &info.model),
        ("ModelName", &info.model_name),
        ("ProductName", &info.product_name),
        ("SerialNumber", &info.serial_number),
        ("OSVersion", &info.os_version),
        ("BuildVersion", &info.build_version),
    ] {
        d.insert(k.into(), s(v));
    }
    if let Some(imei) = &info.imei {
        d.insert("IMEI".into(), s(imei));
    }
    if let Some(meid) = &info.meid {
        d.insert("MEID".into(), s(meid));
    }
    d
}

/// Push credentials sent in `TokenUpdate`.
pub(crate) struct PushCredentials<'a> {
    pub token: &'a [u8],
    pub push_magic: &'a str,
    pub unlock_token: Option<&'a [u8]>,
}

/// `TokenUpdate`: APNs token, push magic and (iOS) unlock token.
pub(crate) fn token_update(topic: &str, udid: &str, push: &PushCredentials<'_>) -> Dictionary {
    let mut d = base("TokenUpdate", topic, udid);
    d.insert("Token".into(), Value::Data(push.token.to_vec()));
    d.insert("PushMagic".into(), s(push.push_magic));
    if let Some(unlock) = push.unlock_token {
        d.insert("UnlockToken".into(), Value::Data(unlock.to_vec()));
    }
    d.insert("AwaitingConfiguration".into(), Value::Boolean(false));
    d
}

/// `CheckOut`: the MDM profile was removed.
pub(crate) fn check_out(topic: &str, udid: &str) -> Dictionary {
    base("CheckOut", topic, udid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::command::to_xml;
    use crate::hardware::DeviceKind;
    use mamori_protocol::checkin::{parse_checkin, CheckinMessage};

    #[test]
    fn server_parser_accepts_our_messages() {
        let info = DeviceInfo::random(DeviceKind::IPhone);
        let auth = to_xml(authenticate(&info, "com.apple.mgmt.X", &info.udid)).unwrap();
        match parse_checkin(&auth).unwrap() {
            CheckinMessage::Authenticate {
                udid,
                serial_number,
                imei,
                ..
            } => {
                assert_eq!(udid.as_deref(), Some(info.udid.as_str()));
                assert_eq!(serial_number.as_deref(), Some(info.serial_number.as_str()));
                assert_eq!(imei, info.imei);
            }
            other => panic!("{other:?}"),
        }
        let push = PushCredentials {
            token: &[7u8; 32],
            push_magic: "MAGIC",
            unlock_token: Some(&[1, 2, 3]),
        };
        let tu = to_xml(token_update("com.apple.mgmt.X", &info.udid, &push)).unwrap();
        match parse_checkin(&tu).unwrap() {
            CheckinMessage::TokenUpdate {
                token,
                push_magic,
                unlock_token,
                awaiting_configuration,
                ..
            } => {
                assert_eq!(token, vec![7u8; 32]);
                assert_eq!(push_magic, "MAGIC");
                assert_eq!(unlock_token, Some(vec![1, 2, 3]));
                assert!(!awaiting_configuration);
            }
            other => panic!("{other:?}"),
        }
        let co = to_xml(check_out("com.apple.mgmt.X", &info.udid)).unwrap();
        assert_eq!(parse_checkin(&co).unwrap().message_type(), "CheckOut");
    }
}
