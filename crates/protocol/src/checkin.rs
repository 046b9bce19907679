//! MDM check-in protocol messages (`PUT /mdm/checkin`).
//!
//! [`parse_checkin`] parses the XML or binary plist body, validates it against
//! Apple's check-in schema (`mdm/checkin/*.yaml`: keys present must have the
//! declared type; keys required on every platform must be present) and returns
//! a typed [`CheckinMessage`]. Unknown message types are returned as
//! [`CheckinMessage::Unknown`] rather than rejected.

use serde::{Deserialize, Serialize};

use crate::plistjson::{parse_plist_dict, plist_dict_to_json, plist_to_json, PlistError};
use crate::schema::{check_plist_dict, checkin_schema, PlistCheck, SchemaError};

/// Default size cap for check-in bodies (declarative-management status
/// reports can be large; ordinary check-ins are a few kilobytes).
pub const MAX_CHECKIN_BYTES: usize = 4 * 1024 * 1024;

/// `UserID` that Shared iPad sends for its user channel (no real user id).
pub const SHARED_IPAD_USER_ID: &str = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF";

/// Enrollment / channel identity carried by check-in and connect requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ident {
    /// `UDID` (device enrollments).
    pub udid: Option<String>,
    /// `EnrollmentID` (user enrollments / account-driven enrollments).
    pub enrollment_id: Option<String>,
    /// `UserID` (macOS user channel; Shared iPad sends [`SHARED_IPAD_USER_ID`]).
    pub user_id: Option<String>,
    /// `UserShortName`.
    pub user_short_name: Option<String>,
    /// `UserLongName`.
    pub user_long_name: Option<String>,
    /// `EnrollmentUserID` (user channel of a macOS user enrollment).
    pub enrollment_user_id: Option<String>,
}

impl Ident {
    /// Read the identity keys from a request dictionary. Keys that are present
    /// must be strings.
    pub fn from_dict(dict: &plist::Dictionary) -> Result<Self, PlistError> {
        Ok(Self {
            udid: opt_string(dict, "UDID")?,
            enrollment_id: opt_string(dict, "EnrollmentID")?,
            user_id: opt_string(dict, "UserID")?,
            user_short_name: opt_string(dict, "UserShortName")?,
            user_long_name: opt_string(dict, "UserLongName")?,
            enrollment_user_id: opt_string(dict, "EnrollmentUserID")?,
        })
    }

    /// Like [`Ident::from_dict`] but also requires a device identity
    /// (`UDID` or `EnrollmentID`).
    pub fn from_dict_required(dict: &plist::Dictionary) -> Result<Self, PlistError> {
        let ident = Self::from_dict(dict)?;
        if ident.device_key().is_none() {
            return Err(PlistError::MissingKey("UDID or EnrollmentID".to_owned()));
        }
        Ok(ident)
    }

    /// The enrollment's identity: `UDID`, or `EnrollmentID` for user
    /// enrollments. Empty strings count as absent.
    pub fn device_key(&self) -> Option<&str> {
        non_empty(&self.udid).or_else(|| non_empty(&self.enrollment_id))
    }

    /// Whether the request came over a user channel (macOS user, Shared iPad
    /// user, or user-enrollment user channel).
    pub fn is_user_channel(&self) -> bool {
        non_empty(&self.user_id).is_some()
            || non_empty(&self.enrollment_user_id).is_some()
            || non_empty(&self.user_short_name).is_some()
    }

    /// The user part of a user-channel identity: `EnrollmentUserID`, else
    /// `UserID` (for Shared iPad, whose `UserID` is all `F`s, the
    /// `UserShortName`), else `UserShortName`. `None` on the device channel.
    pub fn user_key(&self) -> Option<&str> {
        if let Some(e) = non_empty(&self.enrollment_user_id) {
            return Some(e);
        }
        match non_empty(&self.user_id) {
            Some(SHARED_IPAD_USER_ID) => {
                non_empty(&self.user_short_name).or(Some(SHARED_IPAD_USER_ID))
            }
            Some(u) => Some(u),
            None => non_empty(&self.user_short_name),
        }
    }

    /// Key identifying the channel: the device key, or
    /// `"<device key>:<user key>"` for user channels.
    pub fn channel_key(&self) -> Option<String> {
        let device = self.device_key()?;
        Some(match self.user_key() {
            Some(user) => format!("{device}:{user}"),
            None => device.to_owned(),
        })
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A parsed check-in message.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckinMessage {
    /// First message of an enrollment.
    Authenticate {
        /// `UDID`.
        udid: Option<String>,
        /// `EnrollmentID` (user enrollment).
        enrollment_id: Option<String>,
        /// APNs topic.
        topic: String,
        /// `SerialNumber`.
        serial_number: Option<String>,
        /// `Model`.
        model: Option<String>,
        /// `ModelName`.
        model_name: Option<String>,
        /// `DeviceName`.
        device_name: Option<String>,
        /// `OSVersion`.
        os_version: Option<String>,
        /// `BuildVersion`.
        build_version: Option<String>,
        /// `ProductName`.
        product_name: Option<String>,
        /// `IMEI`.
        imei: Option<String>,
        /// `MEID`.
        meid: Option<String>,
    },
    /// Push token for a device or user channel.
    TokenUpdate {
        /// Channel identity.
        ident: Ident,
        /// APNs topic.
        topic: String,
        /// APNs device token.
        token: Vec<u8>,
        /// `PushMagic` to send in pushes.
        push_magic: String,
        /// `UnlockToken` (for `ClearPasscode`).
        unlock_token: Option<Vec<u8>>,
        /// `AwaitingConfiguration` (default `false`).
        awaiting_configuration: bool,
        /// `NotOnConsole` (macOS user channel).
        not_on_console: Option<bool>,
    },
    /// The MDM profile was removed.
    CheckOut {
        /// Channel identity.
        ident: Ident,
        /// APNs topic.
        topic: String,
    },
    /// macOS user-channel authentication (digest challenge flow).
    UserAuthenticate {
        /// Channel identity.
        ident: Ident,
        /// `DigestResponse`; absent in the first request of the exchange.
        digest_response: Option<String>,
    },
    /// Declarative device management request.
    DeclarativeManagement {
        /// Channel identity.
        ident: Ident,
        /// `Endpoint`, e.g. `tokens`, `declaration-items`, `status`.
        endpoint: String,
        /// `Data` (JSON body for the endpoint), if any.
        data: Option<Vec<u8>>,
    },
    /// Device asks for its stored bootstrap token.
    GetBootstrapToken {
        /// Channel identity.
        ident: Ident,
    },
    /// Device escrows (or clears, when `token` is `None`) its bootstrap token.
    SetBootstrapToken {
        /// Channel identity.
        ident: Ident,
        /// `BootstrapToken`.
        token: Option<Vec<u8>>,
    },
    /// Device asks for a service token.
    GetToken {
        /// Channel identity.
        ident: Ident,
        /// `TokenServiceType`, e.g. `com.apple.maid`.
        token_service_type: String,
        /// `TokenParameters`, as JSON.
        token_parameters: Option<serde_json::Value>,
    },
    /// A message type this crate does not model.
    Unknown {
        /// The `MessageType` value.
        message_type: String,
        /// Identity, if the message carried `UDID` or `EnrollmentID`.
        ident: Option<Ident>,
    },
}

impl CheckinMessage {
    /// The `MessageType` string.
    pub fn message_type(&self) -> &str {
        match self {
            Self::Authenticate { .. } => "Authenticate",
            Self::TokenUpdate { .. } => "TokenUpdate",
            Self::CheckOut { .. } => "CheckOut",
            Self::UserAuthenticate { .. } => "UserAuthenticate",
            Self::DeclarativeManagement { .. } => "DeclarativeManagement",
            Self::GetBootstrapToken { .. } => "GetBootstrapToken",
            Self::SetBootstrapToken { .. } => "SetBootstrapToken",
            Self::GetToken { .. } => "GetToken",
            Self::Unknown { message_type, .. } => message_type,
        }
    }

    /// The channel identity (`None` for `Authenticate`, which has no user
    /// fields, and for unknown messages without identity).
    pub fn ident(&self) -> Option<&Ident> {
        match self {
            Self::Authenticate { .. } => None,
            Self::TokenUpdate { ident, .. }
            | Self::CheckOut { ident, .. }
            | Self::UserAuthenticate { ident, .. }
            | Self::DeclarativeManagement { ident, .. }
            | Self::GetBootstrapToken { ident }
            | Self::SetBootstrapToken { ident, .. }
            | Self::GetToken { ident, .. } => Some(ident),
            Self::Unknown { ident, .. } => ident.as_ref(),
        }
    }

    /// The enrollment's identity (UDID or EnrollmentID).
    pub fn device_key(&self) -> Option<&str> {
        match self {
            Self::Authenticate {
                udid,
                enrollment_id,
                ..
            } => non_empty(udid).or_else(|| non_empty(enrollment_id)),
            other => other.ident().and_then(Ident::device_key),
        }
    }
}

/// A check-in message together with its raw dictionary (as JSON, see
/// [`crate::plistjson`]) for storage/auditing.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkin {
    /// The typed message.
    pub message: CheckinMessage,
    /// The whole request dictionary as a JSON object.
    pub raw: serde_json::Value,
}

/// Parse a check-in body (XML or binary plist, at most [`MAX_CHECKIN_BYTES`]).
pub fn parse_checkin(body: &[u8]) -> Result<CheckinMessage, PlistError> {
    parse_checkin_with_raw(body, MAX_CHECKIN_BYTES).map(|c| c.message)
}

/// Parse a check-in body with a custom size cap, keeping the raw dictionary.
pub fn parse_checkin_with_raw(body: &[u8], max_len: usize) -> Result<Checkin, PlistError> {
    let dict = parse_plist_dict(body, max_len)?;
    let message = checkin_from_dict(&dict)?;
    Ok(Checkin {
        message,
        raw: plist_dict_to_json(&dict),
    })
}

/// Build a typed check-in message from an already parsed dictionary.
pub fn checkin_from_dict(dict: &plist::Dictionary) -> Result<CheckinMessage, PlistError> {
    let message_type = req_string(dict, "MessageType")?;
    let Some(schema) = checkin_schema(&message_type) else {
        let ident = Ident::from_dict(dict)?;
        let ident = ident.device_key().is_some().then_some(ident);
        return Ok(CheckinMessage::Unknown {
            message_type,
            ident,
        });
    };
    check_plist_dict(
        dict,
        &schema.keys,
        "",
        PlistCheck {
            reject_unknown: false,
            unconditional_required_only: true,
        },
    )
    .map_err(schema_to_plist_error)?;

    Ok(match message_type.as_str() {
        "Authenticate" => {
            let ident = Ident::from_dict(dict)?;
            if ident.device_key().is_none() {
                return Err(PlistError::MissingKey("UDID or EnrollmentID".to_owned()));
            }
            CheckinMessage::Authenticate {
                udid: ident.udid,
                enrollment_id: ident.enrollment_id,
                topic: req_string(dict, "Topic")?,
                serial_number: opt_string(dict, "SerialNumber")?,
                model: opt_string(dict, "Model")?,
                model_name: opt_string(dict, "ModelName")?,
                device_name: opt_string(dict, "DeviceName")?,
                os_version: opt_string(dict, "OSVersion")?,
                build_version: opt_string(dict, "BuildVersion")?,
                product_name: opt_string(dict, "ProductName")?,
                imei: opt_string(dict, "IMEI")?,
                meid: opt_string(dict, "MEID")?,
            }
        }
        "TokenUpdate" => CheckinMessage::TokenUpdate {
            ident: Ident::from_dict_required(dict)?,
            topic: req_string(dict, "Topic")?,
            token: req_data(dict, "Token")?,
            push_magic: req_string(dict, "PushMagic")?,
            unlock_token: opt_data(dict, "UnlockToken")?,
            awaiting_configuration: opt_bool(dict, "AwaitingConfiguration")?.unwrap_or(false),
            not_on_console: opt_bool(dict, "NotOnConsole")?,
        },
        "CheckOut" => CheckinMessage::CheckOut {
            ident: Ident::from_dict_required(dict)?,
            topic: req_string(dict, "Topic")?,
        },
        "UserAuthenticate" => CheckinMessage::UserAuthenticate {
            ident: Ident::from_dict_required(dict)?,
            digest_response: opt_string(dict, "DigestResponse")?,
        },
        "DeclarativeManagement" => CheckinMessage::DeclarativeManagement {
            ident: Ident::from_dict_required(dict)?,
            endpoint: req_string(dict, "Endpoint")?,
            data: opt_data(dict, "Data")?,
        },
        "GetBootstrapToken" => CheckinMessage::GetBootstrapToken {
            ident: Ident::from_dict_required(dict)?,
        },
        "SetBootstrapToken" => CheckinMessage::SetBootstrapToken {
            ident: Ident::from_dict_required(dict)?,
            token: opt_data(dict, "BootstrapToken")?,
        },
        "GetToken" => CheckinMessage::GetToken {
            ident: Ident::from_dict_required(dict)?,
            token_service_type: req_string(dict, "TokenServiceType")?,
            token_parameters: dict.get("TokenParameters").map(plist_to_json),
        },
        _ => CheckinMessage::Unknown {
            message_type,
            ident: {
                let ident = Ident::from_dict(dict)?;
                ident.device_key().is_some().then_some(ident)
            },
        },
    })
}

pub(crate) fn schema_to_plist_error(e: SchemaError) -> PlistError {
    match e {
        SchemaError::MissingKey { path } => PlistError::MissingKey(path),
        SchemaError::WrongType { path, expected } => PlistError::WrongType {
            key: path,
            expected,
        },
        other => match other.path() {
            Some(path) => PlistError::InvalidValue {
                key: path.to_owned(),
                reason: other.to_string(),
            },
            None => PlistError::Schema(other),
        },
    }
}

// ---------------------------------------------------------------------------
// Typed key access

pub(crate) fn opt_string(
    dict: &plist::Dictionary,
    key: &str,
) -> Result<Option<String>, PlistError> {
    match dict.get(key) {
        None => Ok(None),
        Some(plist::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PlistError::WrongType {
            key: key.to_owned(),
            expected: "string",
        }),
    }
}

pub(crate) fn req_string(dict: &plist::Dictionary, key: &str) -> Result<String, PlistError> {
    opt_string(dict, key)?.ok_or_else(|| PlistError::MissingKey(key.to_owned()))
}

fn opt_data(dict: &plist::Dictionary, key: &str) -> Result<Option<Vec<u8>>, PlistError> {
    match dict.get(key) {
        None => Ok(None),
        Some(plist::Value::Data(d)) => Ok(Some(d.clone())),
        Some(_) => Err(PlistError::WrongType {
            key: key.to_owned(),
            expected: "data",
        }),
    }
}

fn req_data(dict: &plist::Dictionary, key: &str) -> Result<Vec<u8>, PlistError> {
    opt_data(dict, key)?.ok_or_else(|| PlistError::MissingKey(key.to_owned()))
}

fn opt_bool(dict: &plist::Dictionary, key: &str) -> Result<Option<bool>, PlistError> {
    match dict.get(key) {
        None => Ok(None),
        Some(plist::Value::Boolean(b)) => Ok(Some(*b)),
        Some(_) => Err(PlistError::WrongType {
            key: key.to_owned(),
            expected: "boolean",
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
}
