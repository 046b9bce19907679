//! MDM commands as the device receives them, and the answers it sends back.

use std::io::Cursor;

pub use mamori_protocol::connect::CommandStatus;

use crate::error::{Result, SimError};

/// A command received in a connect response: `{CommandUUID, Command}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// `CommandUUID`.
    pub command_uuid: String,
    /// `Command.RequestType`.
    pub request_type: String,
    /// The `Command` dictionary (including `RequestType`).
    pub command: plist::Dictionary,
}

impl Command {
    /// Parses a connect response body (XML or binary plist).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let value = plist::Value::from_reader(Cursor::new(body))
            .map_err(|e| SimError::BadResponse(format!("command is not a plist: {e}")))?;
        let mut root = value
            .into_dictionary()
            .ok_or_else(|| SimError::BadResponse("command is not a dictionary".into()))?;
        let command_uuid = root
            .get("CommandUUID")
            .and_then(plist::Value::as_string)
            .ok_or_else(|| SimError::BadResponse("command has no CommandUUID".into()))?
            .to_owned();
        let command = root
            .remove("Command")
            .and_then(plist::Value::into_dictionary)
            .ok_or_else(|| SimError::BadResponse("command has no Command dictionary".into()))?;
        let request_type = command
            .get("RequestType")
            .and_then(plist::Value::as_string)
            .ok_or_else(|| SimError::BadResponse("command has no RequestType".into()))?
            .to_owned();
        Ok(Self {
            command_uuid,
            request_type,
            command,
        })
    }

    /// A field of the `Command` dictionary.
    pub fn get(&self, key: &str) -> Option<&plist::Value> {
        self.command.get(key)
    }
}

/// One entry of an `ErrorChain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorChainItem {
    /// `ErrorCode`.
    pub error_code: i64,
    /// `ErrorDomain`, e.g. `MCMDMErrorDomain`.
    pub error_domain: String,
    /// `LocalizedDescription`.
    pub localized_description: String,
    /// `USEnglishDescription`, if different from the localized one.
    pub us_english_description: Option<String>,
}

impl ErrorChainItem {
    /// An entry whose localized and US English descriptions are the same.
    pub fn new(code: i64, domain: &str, description: &str) -> Self {
        Self {
            error_code: code,
            error_domain: domain.to_owned(),
            localized_description: description.to_owned(),
            us_english_description: Some(description.to_owned()),
        }
    }

    fn to_plist(&self) -> plist::Value {
        let mut d = plist::Dictionary::new();
        d.insert(
            "ErrorCode".into(),
            plist::Value::Integer(self.error_code.into()),
        );
        d.insert(
            "ErrorDomain".into(),
            plist::Value::String(self.error_domain.clone()),
        );
        d.insert(
            "LocalizedDescription".into(),
            plist::Value::String(self.localized_description.clone()),
        );
        if let Some(us) = &self.us_english_description {
            d.insert(
                "USEnglishDescription".into(),
                plist::Value::String(us.clone()),
            );
        }
        plist::Value::Dictionary(d)
    }
}

/// The device's answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// `Status: Acknowledged` plus the command's result keys (e.g.
    /// `QueryResponses`), merged into the top level of the response.
    Acknowledged(plist::Dictionary),
    /// `Status: Error` with an `ErrorChain`.
    Error(Vec<ErrorChainItem>),
    /// `Status: NotNow`.
    NotNow,
    /// `Status: CommandFormatError`.
    CommandFormatError,
}

impl Response {
    /// `Acknowledged` without result keys.
    pub fn ack() -> Self {
        Response::Acknowledged(plist::Dictionary::new())
    }

    /// The `Status` value this response sends.
    pub fn status(&self) -> CommandStatus {
        match self {
            Response::Acknowledged(_) => CommandStatus::Acknowledged,
            Response::Error(_) => CommandStatus::Error,
            Response::NotNow => CommandStatus::NotNow,
            Response::CommandFormatError => CommandStatus::CommandFormatError,
        }
    }

    /// The answer to a request type the device does not know:
    /// `MCMDMErrorDomain` 12021.
    pub fn unknown_request_type() -> Self {
        Response::Error(vec![ErrorChainItem::new(
            12021,
            "MCMDMErrorDomain",
            "Unknown request type",
        )])
    }
}

/// The connect request body for `response` to `command_uuid`.
pub(crate) fn response_dict(
    udid: &str,
    command_uuid: &str,
    response: &Response,
) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    if let Response::Acknowledged(keys) = response {
        for (k, v) in keys {
            d.insert(k.clone(), v.clone());
        }
    }
    d.insert("UDID".into(), plist::Value::String(udid.to_owned()));
    d.insert(
        "CommandUUID".into(),
        plist::Value::String(command_uuid.to_owned()),
    );
    d.insert(
        "Status".into(),
        plist::Value::String(response.status().as_str().to_owned()),
    );
    if let Response::Error(chain) = response {
        d.insert(
            "ErrorChain".into(),
            plist::Value::Array(chain.iter().map(ErrorChainItem::to_plist).collect()),
        );
    }
    d
}

/// The `{UDID, Status: Idle}` body.
pub(crate) fn idle_dict(udid: &str) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    d.insert("UDID".into(), plist::Value::String(udid.to_owned()));
    d.insert("Status".into(), plist::Value::String("Idle".into()));
    d
}

/// XML plist encoding of a dictionary.
pub(crate) fn to_xml(dict: plist::Dictionary) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    plist::Value::Dictionary(dict).to_writer_xml(&mut out)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_and_rejects_garbage() {
        let body = mamori_protocol::command::encode_command(
            "C-1",
            std::iter::once((
                "RequestType".to_owned(),
                plist::Value::String("ProfileList".into()),
            ))
            .collect(),
        );
        let c = Command::parse(&body).unwrap();
        assert_eq!(c.command_uuid, "C-1");
        assert_eq!(c.request_type, "ProfileList");
        assert!(Command::parse(b"<plist><dict/></plist>").is_err());
        assert!(Command::parse(b"garbage").is_err());
    }

    #[test]
    fn error_response_has_chain() {
        let d = response_dict("U", "C", &Response::unknown_request_type());
        assert_eq!(d.get("Status").and_then(|v| v.as_string()), Some("Error"));
        let chain = d.get("ErrorChain").and_then(|v| v.as_array()).unwrap();
        let first = chain[0].as_dictionary().unwrap();
        assert_eq!(
            first
                .get("ErrorCode")
                .and_then(plist::Value::as_signed_integer),
            Some(12021)
        );
        assert_eq!(
            first
                .get("USEnglishDescription")
                .and_then(|v| v.as_string()),
            Some("Unknown request type")
        );
    }
}
