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
        return unknown_message(message_type, dict);
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
    typed_message(message_type, dict)
}

/// A message whose type is not in the schema (or not typed here), with its
/// ident if it names a device.
fn unknown_message(
    message_type: String,
    dict: &plist::Dictionary,
) -> Result<CheckinMessage, PlistError> {
    let ident = Ident::from_dict(dict)?;
    let ident = ident.device_key().is_some().then_some(ident);
    Ok(CheckinMessage::Unknown {
        message_type,
        ident,
    })
}

/// `Authenticate`: the device is identified by `UDID` or `EnrollmentID`.
fn authenticate_from_dict(dict: &plist::Dictionary) -> Result<CheckinMessage, PlistError> {
    let ident = Ident::from_dict(dict)?;
    if ident.device_key().is_none() {
        return Err(PlistError::MissingKey("UDID or EnrollmentID".to_owned()));
    }
    Ok(CheckinMessage::Authenticate {
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
    })
}

/// The typed message for a `MessageType` the schema knows, from a
/// dictionary already checked against that schema.
fn typed_message(
    message_type: String,
    dict: &plist::Dictionary,
) -> Result<CheckinMessage, PlistError> {
    Ok(match message_type.as_str() {
        "Authenticate" => authenticate_from_dict(dict)?,
        "TokenUpdate" => CheckinMessage::TokenUpdate {
            ident: Ident::from_dict_required(dict)?,
            topic: req_string(dict, "Topic")?,
            token: short_data(req_data(dict, "Token")?, "Token")?,
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
        _ => return unknown_message(message_type, dict),
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

/// Longest string a check-in may carry in any key. Identifiers (UDIDs,
/// user IDs, serial numbers, push magic, topics) are a few dozen bytes and
/// names a few hundred; several are stored in indexes, where PostgreSQL
/// refuses an entry over about 2.7 KB: one device's over-long string would
/// fail its own writes (the outside attack's finding).
pub const MAX_CHECKIN_STRING: usize = 512;

/// Longest push token (APNs tokens are 32 bytes).
pub const MAX_PUSH_TOKEN: usize = 256;

pub(crate) fn opt_string(
    dict: &plist::Dictionary,
    key: &str,
) -> Result<Option<String>, PlistError> {
    match dict.get(key) {
        None => Ok(None),
        Some(plist::Value::String(s)) if s.len() > MAX_CHECKIN_STRING => {
            Err(PlistError::InvalidValue {
                key: key.to_owned(),
                reason: format!("longer than {MAX_CHECKIN_STRING} bytes"),
            })
        }
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

/// A push token, at most [`MAX_PUSH_TOKEN`] bytes.
fn short_data(d: Vec<u8>, key: &str) -> Result<Vec<u8>, PlistError> {
    if d.len() > MAX_PUSH_TOKEN {
        return Err(PlistError::InvalidValue {
            key: key.to_owned(),
            reason: format!("longer than {MAX_PUSH_TOKEN} bytes"),
        });
    }
    Ok(d)
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
mod tests;
