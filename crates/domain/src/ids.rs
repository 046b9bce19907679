//! Newtype identifiers. Each is validated when it is built, so code past the
//! edge never sees an empty, oversized or control-character identifier.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Empty identifier.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// Longer than the limit.
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    /// A character outside the allowed set.
    #[error("{0} contains a character that is not allowed")]
    BadChar(&'static str),
}

fn check(kind: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty(kind));
    }
    if s.len() > max {
        return Err(IdError::TooLong(kind, max));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(IdError::BadChar(kind));
    }
    // "." and ".." would be path segments, not names, in any URL built
    // from the identifier.
    if s.bytes().all(|b| b == b'.') {
        return Err(IdError::BadChar(kind));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$m:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the identifier.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check($kind, s, $max)?;
                Ok(Self(s.to_owned()))
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check($kind, &s, $max)?;
                Ok(Self(s))
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// The identity of an enrollment: a device's UDID, or the EnrollmentID of a
    /// user enrollment (which has no UDID).
    DeviceKey,
    "device identifier",
    128
);
string_id!(
    /// A command's UUID, chosen by the server and echoed by the device.
    CommandUuid,
    "command UUID",
    128
);
string_id!(
    /// The public identifier of an API token (the part before the secret).
    TokenId,
    "token id",
    64
);
string_id!(
    /// The identifier of an administrator account (random, never reused).
    AdminId,
    "administrator id",
    64
);
string_id!(
    /// A person's pseudonymous identifier (random; reveals nothing).
    PersonId,
    "person id",
    64
);
string_id!(
    /// The public identifier of an administrator session (not its secret).
    SessionId,
    "session id",
    64
);

string_id!(
    /// A device group's identifier (random hex, chosen by the server).
    GroupId,
    "group id",
    64
);
string_id!(
    /// A policy's identifier (random hex, chosen by the server).
    PolicyId,
    "policy id",
    64
);
string_id!(
    /// An incident's identifier (random hex, chosen by the server).
    IncidentId,
    "incident id",
    64
);
string_id!(
    /// The identifier of a request waiting for a second administrator
    /// (two-person rule; random hex, chosen by the server).
    ApprovalId,
    "approval id",
    64
);

impl CommandUuid {
    /// A fresh random (v4) command UUID in Apple's upper-case form.
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().to_string().to_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_udids_and_enrollment_ids() {
        assert!(DeviceKey::parse("00008030-001A2B3C4D5E802E").is_ok());
        assert!(DeviceKey::parse("A1B2C3D4E5F60718293A4B5C6D7E8F9012345678").is_ok());
    }

    #[test]
    fn refuses_bad_identifiers() {
        assert_eq!(
            DeviceKey::parse(""),
            Err(IdError::Empty("device identifier"))
        );
        assert!(DeviceKey::parse("a b").is_err());
        assert!(DeviceKey::parse("x'; DROP TABLE devices;--").is_err());
        assert!(DeviceKey::parse(&"a".repeat(129)).is_err());
        assert!(CommandUuid::parse("\n").is_err());
    }

    /// The server makes group, policy, incident and approval identifiers
    /// of 12 random bytes in hex (24 characters); each kind accepts them.
    #[test]
    fn accepts_server_record_ids() {
        let id = "0123456789abcdef01234567";
        assert_eq!(GroupId::parse(id).map(|g| g.to_string()), Ok(id.to_owned()));
        assert_eq!(
            PolicyId::parse(id).map(|p| p.to_string()),
            Ok(id.to_owned())
        );
        assert_eq!(
            IncidentId::parse(id).map(|i| i.to_string()),
            Ok(id.to_owned())
        );
        assert_eq!(
            ApprovalId::parse(id).map(|a| a.to_string()),
            Ok(id.to_owned())
        );
    }

    #[test]
    fn refuses_bad_record_ids() {
        assert_eq!(GroupId::parse(""), Err(IdError::Empty("group id")));
        assert_eq!(
            PolicyId::parse(&"a".repeat(65)),
            Err(IdError::TooLong("policy id", 64))
        );
        assert_eq!(
            IncidentId::parse("a/b"),
            Err(IdError::BadChar("incident id"))
        );
        assert!(ApprovalId::parse("x\n").is_err());
        assert!(ApprovalId::parse(&"f".repeat(64)).is_ok());
    }

    #[test]
    fn random_command_uuid_is_valid() {
        let u = CommandUuid::new_random();
        assert!(CommandUuid::parse(u.as_str()).is_ok());
    }
}
