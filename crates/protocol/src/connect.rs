//! MDM command-response requests (`PUT /mdm/connect`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::checkin::{opt_string, Ident};
use crate::plistjson::{parse_plist_dict, plist_dict_to_json, plist_to_json, PlistError};

/// Default size cap for connect bodies (responses such as
/// `InstalledApplicationList` or `CertificateList` can be large).
pub const MAX_CONNECT_BYTES: usize = 16 * 1024 * 1024;

/// Keys that route the request rather than belong to the command result; they
/// are removed from [`ConnectRequest::result`].
pub const ROUTING_KEYS: &[&str] = &[
    "UDID",
    "EnrollmentID",
    "EnrollmentUserID",
    "UserID",
    "UserShortName",
    "UserLongName",
    "Status",
    "CommandUUID",
    "ErrorChain",
];

/// The `Status` of a connect request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommandStatus {
    /// The device is idle and asks for the next command.
    Idle,
    /// The command succeeded.
    Acknowledged,
    /// The command failed (see `ErrorChain`).
    Error,
    /// The command was malformed.
    CommandFormatError,
    /// The device cannot process the command now; resend later.
    NotNow,
}

impl CommandStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "Idle",
            Self::Acknowledged => "Acknowledged",
            Self::Error => "Error",
            Self::CommandFormatError => "CommandFormatError",
            Self::NotNow => "NotNow",
        }
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandStatus {
    type Err = PlistError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "Idle" => Self::Idle,
            "Acknowledged" => Self::Acknowledged,
            "Error" => Self::Error,
            "CommandFormatError" => Self::CommandFormatError,
            "NotNow" => Self::NotNow,
            other => return Err(PlistError::UnknownStatus(other.to_owned())),
        })
    }
}

/// A parsed connect request.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRequest {
    /// Channel identity (always has a device key).
    pub ident: Ident,
    /// `Status`.
    pub status: CommandStatus,
    /// `CommandUUID` (present unless `status` is `Idle`).
    pub command_uuid: Option<String>,
    /// `ErrorChain`, as JSON, if present.
    pub error_chain: Option<serde_json::Value>,
    /// The request dictionary minus [`ROUTING_KEYS`], as a JSON object.
    pub result: serde_json::Value,
    /// `RequestType`, when the device echoes it.
    pub request_type: Option<String>,
}

/// Parse a connect body (XML or binary plist, at most [`MAX_CONNECT_BYTES`]).
pub fn parse_connect(body: &[u8]) -> Result<ConnectRequest, PlistError> {
    parse_connect_with_limit(body, MAX_CONNECT_BYTES)
}

/// Parse a connect body with a custom size cap.
pub fn parse_connect_with_limit(body: &[u8], max_len: usize) -> Result<ConnectRequest, PlistError> {
    let dict = parse_plist_dict(body, max_len)?;
    connect_from_dict(dict)
}

/// Build a [`ConnectRequest`] from an already parsed dictionary.
pub fn connect_from_dict(mut dict: plist::Dictionary) -> Result<ConnectRequest, PlistError> {
    let ident = Ident::from_dict_required(&dict)?;
    let status: CommandStatus = opt_string(&dict, "Status")?
        .ok_or_else(|| PlistError::MissingKey("Status".to_owned()))?
        .parse()?;
    let command_uuid = opt_string(&dict, "CommandUUID")?;
    if status != CommandStatus::Idle && command_uuid.as_deref().is_none_or(str::is_empty) {
        return Err(PlistError::MissingKey("CommandUUID".to_owned()));
    }
    let error_chain = match dict.get("ErrorChain") {
        None => None,
        Some(v @ plist::Value::Array(_)) => Some(plist_to_json(v)),
        Some(_) => {
            return Err(PlistError::WrongType {
                key: "ErrorChain".to_owned(),
                expected: "array",
            })
        }
    };
    let request_type = opt_string(&dict, "RequestType")?;
    for key in ROUTING_KEYS {
        dict.remove(key);
    }
    Ok(ConnectRequest {
        ident,
        status,
        command_uuid,
        error_chain,
        result: plist_dict_to_json(&dict),
        request_type,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn xml(body: &str) -> Vec<u8> {
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>{body}</dict></plist>"#)
            .into_bytes()
    }

    #[test]
    fn idle() {
        let r = parse_connect(&xml(
            "<key>UDID</key><string>U</string><key>Status</key><string>Idle</string>",
        ))
        .unwrap();
        assert_eq!(r.status, CommandStatus::Idle);
        assert_eq!(r.command_uuid, None);
        assert_eq!(r.result, json!({}));
        assert_eq!(r.ident.device_key(), Some("U"));
    }

    #[test]
    fn acknowledged_with_result() {
        let r = parse_connect(&xml("<key>UDID</key><string>U</string>
             <key>Status</key><string>Acknowledged</string>
             <key>CommandUUID</key><string>C-1</string>
             <key>RequestType</key><string>DeviceInformation</string>
             <key>QueryResponses</key><dict>
               <key>SerialNumber</key><string>S</string>
               <key>BatteryLevel</key><real>0.5</real>
               <key>Blob</key><data>AAEC</data>
             </dict>"))
        .unwrap();
        assert_eq!(r.status, CommandStatus::Acknowledged);
        assert_eq!(r.command_uuid.as_deref(), Some("C-1"));
        assert_eq!(r.request_type.as_deref(), Some("DeviceInformation"));
        assert_eq!(
            r.result,
            json!({"RequestType": "DeviceInformation",
                   "QueryResponses": {"SerialNumber": "S", "BatteryLevel": 0.5, "Blob": "AAEC"}})
        );
    }

    #[test]
    fn error_chain() {
        let r = parse_connect(&xml("<key>EnrollmentID</key><string>E</string>
             <key>Status</key><string>Error</string>
             <key>CommandUUID</key><string>C-2</string>
             <key>ErrorChain</key><array><dict>
               <key>ErrorCode</key><integer>12021</integer>
               <key>ErrorDomain</key><string>MCMDMErrorDomain</string>
             </dict></array>"))
        .unwrap();
        assert_eq!(r.status, CommandStatus::Error);
        assert_eq!(r.ident.device_key(), Some("E"));
        assert_eq!(r.error_chain.unwrap()[0]["ErrorCode"], 12021);
        assert_eq!(r.result, json!({}));
    }

    #[test]
    fn errors() {
        let e = parse_connect(&xml(
            "<key>UDID</key><string>U</string><key>Status</key><string>Maybe</string>",
        ))
        .unwrap_err();
        assert!(matches!(e, PlistError::UnknownStatus(ref s) if s == "Maybe"));
        let e = parse_connect(&xml(
            "<key>UDID</key><string>U</string><key>Status</key><string>NotNow</string>",
        ))
        .unwrap_err();
        assert!(matches!(e, PlistError::MissingKey(ref k) if k == "CommandUUID"));
        let e = parse_connect(&xml("<key>UDID</key><string>U</string>")).unwrap_err();
        assert!(matches!(e, PlistError::MissingKey(ref k) if k == "Status"));
        let e = parse_connect(&xml("<key>Status</key><string>Idle</string>")).unwrap_err();
        assert!(e.to_string().contains("UDID or EnrollmentID"));
        let e = parse_connect(&xml(
            "<key>UDID</key><string>U</string><key>Status</key><true/>",
        ))
        .unwrap_err();
        assert_eq!(e.to_string(), "key Status: expected string");
    }

    #[test]
    fn status_roundtrip() {
        for s in [
            CommandStatus::Idle,
            CommandStatus::Acknowledged,
            CommandStatus::Error,
            CommandStatus::CommandFormatError,
            CommandStatus::NotNow,
        ] {
            assert_eq!(s.as_str().parse::<CommandStatus>().unwrap(), s);
        }
    }
}
