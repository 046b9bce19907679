//! MDM commands as types, and their encoding for delivery in a
//! `/mdm/connect` response.
//!
//! A command an administrator sends arrives as JSON and is checked against
//! Apple's schema into a [`CommandDict`]; the commands Mamori makes itself
//! are [`Command`] values. Either way the service layer handles types and
//! this module writes the property list.

use crate::schema::{check_command_dict, validate_command, SchemaError};

/// The request types the server reasons about itself (whom a command
/// needs, what it destroys, what it installs); any other type Apple's
/// schema knows is [`RequestType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// `DeviceLock`: lock the screen (a Mac needs a PIN).
    DeviceLock,
    /// `EnableLostMode`.
    EnableLostMode,
    /// `DisableLostMode`.
    DisableLostMode,
    /// `PlayLostModeSound`.
    PlayLostModeSound,
    /// `DeviceLocation`.
    DeviceLocation,
    /// `EraseDevice`.
    EraseDevice,
    /// `DeleteUser`: deletes a user (or every user) and their data from a
    /// Shared iPad or a Mac.
    DeleteUser,
    /// `ClearPasscode` (needs the device's unlock token).
    ClearPasscode,
    /// `ClearRestrictionsPassword`.
    ClearRestrictionsPassword,
    /// `InstallProfile`.
    InstallProfile,
    /// `RemoveProfile`.
    RemoveProfile,
    /// Any other request type of Apple's schema.
    Other(String),
}

impl RequestType {
    /// The type named `name`.
    pub fn parse(name: &str) -> Self {
        match name {
            "DeviceLock" => Self::DeviceLock,
            "EnableLostMode" => Self::EnableLostMode,
            "DisableLostMode" => Self::DisableLostMode,
            "PlayLostModeSound" => Self::PlayLostModeSound,
            "DeviceLocation" => Self::DeviceLocation,
            "EraseDevice" => Self::EraseDevice,
            "DeleteUser" => Self::DeleteUser,
            "ClearPasscode" => Self::ClearPasscode,
            "ClearRestrictionsPassword" => Self::ClearRestrictionsPassword,
            "InstallProfile" => Self::InstallProfile,
            "RemoveProfile" => Self::RemoveProfile,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Its name in a command.
    pub fn as_str(&self) -> &str {
        match self {
            Self::DeviceLock => "DeviceLock",
            Self::EnableLostMode => "EnableLostMode",
            Self::DisableLostMode => "DisableLostMode",
            Self::PlayLostModeSound => "PlayLostModeSound",
            Self::DeviceLocation => "DeviceLocation",
            Self::EraseDevice => "EraseDevice",
            Self::DeleteUser => "DeleteUser",
            Self::ClearPasscode => "ClearPasscode",
            Self::ClearRestrictionsPassword => "ClearRestrictionsPassword",
            Self::InstallProfile => "InstallProfile",
            Self::RemoveProfile => "RemoveProfile",
            Self::Other(name) => name,
        }
    }

    /// What a helpdesk may send: lock, lost mode, sound, locate.
    pub fn is_helpdesk_action(&self) -> bool {
        matches!(
            self,
            Self::DeviceLock
                | Self::EnableLostMode
                | Self::DisableLostMode
                | Self::PlayLostModeSound
                | Self::DeviceLocation
        )
    }

    /// Destroys data or removes a protection.
    pub fn is_destructive(&self) -> bool {
        self.wipes_data() || matches!(self, Self::ClearPasscode | Self::ClearRestrictionsPassword)
    }

    /// Wipes what people stored, beyond recovery: the device, or its
    /// users. One administrator may send these only within a budget.
    pub fn wipes_data(&self) -> bool {
        matches!(self, Self::EraseDevice | Self::DeleteUser)
    }
}

impl std::fmt::Display for RequestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command the server makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Install a configuration profile (the signed or plain profile bytes).
    InstallProfile {
        /// The profile.
        payload: Vec<u8>,
    },
    /// Remove the profile with this `PayloadIdentifier`.
    RemoveProfile {
        /// Its identifier.
        identifier: String,
    },
}

impl Command {
    /// Its request type.
    pub fn request_type(&self) -> RequestType {
        match self {
            Self::InstallProfile { .. } => RequestType::InstallProfile,
            Self::RemoveProfile { .. } => RequestType::RemoveProfile,
        }
    }

    /// The command dictionary, checked against Apple's schema.
    pub fn into_dict(self) -> Result<CommandDict, SchemaError> {
        let rt = self.request_type();
        let mut d = plist::Dictionary::new();
        d.insert(
            "RequestType".into(),
            plist::Value::String(rt.as_str().into()),
        );
        match self {
            Self::InstallProfile { payload } => {
                d.insert("Payload".into(), plist::Value::Data(payload));
            }
            Self::RemoveProfile { identifier } => {
                d.insert("Identifier".into(), plist::Value::String(identifier));
            }
        }
        check_command_dict(&d)?;
        Ok(CommandDict(d))
    }
}

/// A command dictionary that Apple's schema accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandDict(plist::Dictionary);

impl CommandDict {
    /// An administrator's command (JSON with `RequestType`), checked against
    /// Apple's schema.
    pub fn from_json(json: &serde_json::Value) -> Result<Self, SchemaError> {
        validate_command(json).map(Self)
    }

    /// Its request type.
    pub fn request_type(&self) -> RequestType {
        RequestType::parse(
            self.0
                .get("RequestType")
                .and_then(plist::Value::as_string)
                .unwrap_or_default(),
        )
    }

    /// Whether it carries a `PIN`.
    pub fn has_pin(&self) -> bool {
        self.0.contains_key("PIN")
    }

    /// Sets the six-digit `PIN` a Mac's `DeviceLock` needs.
    pub fn set_pin(&mut self, pin: &str) {
        self.0
            .insert("PIN".into(), plist::Value::String(pin.to_owned()));
    }

    /// Sets the device's `UnlockToken` (`ClearPasscode`).
    pub fn set_unlock_token(&mut self, token: Vec<u8>) {
        self.0
            .insert("UnlockToken".into(), plist::Value::Data(token));
    }

    /// The `{CommandUUID, Command}` plist for delivery (see
    /// [`encode_command`]).
    pub fn encode(self, command_uuid: &str) -> Vec<u8> {
        encode_command(command_uuid, self.0)
    }
}

/// Encode `{CommandUUID, Command}` as the XML plist Apple devices expect.
///
/// `command` is the `Command` dictionary (including `RequestType`), e.g. the
/// output of [`crate::schema::validate_command`]. Plist UIDs (which XML plists
/// cannot carry and which never occur in MDM commands) are written as
/// integers, so encoding cannot fail.
pub fn encode_command(command_uuid: &str, command: plist::Dictionary) -> Vec<u8> {
    let mut root = plist::Dictionary::new();
    root.insert(
        "CommandUUID".to_owned(),
        plist::Value::String(command_uuid.to_owned()),
    );
    root.insert(
        "Command".to_owned(),
        strip_uids(plist::Value::Dictionary(command)),
    );
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail with I/O errors and UIDs were replaced
    // above, so this only errs on a plist-crate defect; the partial buffer is
    // then discarded rather than panicking.
    if plist::Value::Dictionary(root)
        .to_writer_xml(&mut buf)
        .is_err()
    {
        buf.clear();
    }
    buf
}

fn strip_uids(value: plist::Value) -> plist::Value {
    match value {
        plist::Value::Uid(u) => plist::Value::Integer(u.get().into()),
        plist::Value::Array(items) => {
            plist::Value::Array(items.into_iter().map(strip_uids).collect())
        }
        plist::Value::Dictionary(d) => {
            plist::Value::Dictionary(d.into_iter().map(|(k, v)| (k, strip_uids(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_types_read_back_and_sort_into_their_kinds() {
        for name in [
            "DeviceLock",
            "EraseDevice",
            "DeleteUser",
            "InstallProfile",
            "ProfileList",
        ] {
            assert_eq!(RequestType::parse(name).as_str(), name);
        }
        assert!(RequestType::parse("DeviceLocation").is_helpdesk_action());
        assert!(!RequestType::parse("EraseDevice").is_helpdesk_action());
        assert!(RequestType::parse("ClearPasscode").is_destructive());
        assert!(!RequestType::parse("ProfileList").is_destructive());
        for wipes in ["EraseDevice", "DeleteUser"] {
            let kind = RequestType::parse(wipes);
            assert!(kind.wipes_data() && kind.is_destructive(), "{wipes}");
        }
        assert!(!RequestType::parse("ClearPasscode").wipes_data());
    }

    #[test]
    fn commands_the_server_makes_pass_the_schema() {
        let d = Command::RemoveProfile {
            identifier: "com.example.wifi".into(),
        }
        .into_dict()
        .unwrap();
        assert_eq!(d.request_type(), RequestType::RemoveProfile);
        let bytes = d.encode("u-1");
        let v = plist::Value::from_reader_xml(&bytes[..]).unwrap();
        let c = v.as_dictionary().unwrap()["Command"]
            .as_dictionary()
            .unwrap();
        assert_eq!(
            c.get("Identifier").and_then(plist::Value::as_string),
            Some("com.example.wifi")
        );
        let mut lock = CommandDict::from_json(&json!({"RequestType": "DeviceLock"})).unwrap();
        assert!(!lock.has_pin());
        lock.set_pin("123456");
        assert!(lock.has_pin());
    }

    #[test]
    fn encodes_command_plist() {
        let cmd = validate_command(&json!({
            "RequestType": "InstallProfile", "Payload": "AAEC"
        }))
        .unwrap();
        let bytes = encode_command("1234-abcd", cmd);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("<?xml"));
        assert!(text.contains("<key>CommandUUID</key>"));
        assert!(text.contains("<data>") && text.contains("AAEC"));
        let v = plist::Value::from_reader_xml(&bytes[..]).unwrap();
        let d = v.as_dictionary().unwrap();
        assert_eq!(
            d.get("CommandUUID").and_then(plist::Value::as_string),
            Some("1234-abcd")
        );
        let c = d.get("Command").unwrap().as_dictionary().unwrap();
        assert_eq!(
            c.get("RequestType").and_then(plist::Value::as_string),
            Some("InstallProfile")
        );
        assert_eq!(
            c.get("Payload").and_then(plist::Value::as_data),
            Some(&[0u8, 1, 2][..])
        );
    }

    #[test]
    fn uids_do_not_break_encoding() {
        let mut cmd = plist::Dictionary::new();
        cmd.insert("RequestType".into(), "X".into());
        cmd.insert("U".into(), plist::Value::Uid(plist::Uid::new(7)));
        let bytes = encode_command("u", cmd);
        assert!(String::from_utf8(bytes)
            .unwrap()
            .contains("<integer>7</integer>"));
    }
}
