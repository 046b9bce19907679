//! The people directory: employees and their devices. Every personal field
//! lives only encrypted (see `mamori-core::people`); what the domain hands
//! around without the personal-data permission is the pseudonymous view.

use crate::ids::{DeviceKey, PersonId};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Employment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmploymentStatus {
    /// Employed.
    Active,
    /// Employed, away (leave, secondment).
    OnLeave,
    /// Left the company; purged after the retention period.
    Departed,
}

impl EmploymentStatus {
    /// Wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EmploymentStatus::Active => "active",
            EmploymentStatus::OnLeave => "on_leave",
            EmploymentStatus::Departed => "departed",
        }
    }

    /// Parses a wire or stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(EmploymentStatus::Active),
            "on_leave" => Some(EmploymentStatus::OnLeave),
            "departed" => Some(EmploymentStatus::Departed),
            _ => None,
        }
    }
}

impl fmt::Display for EmploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's personal fields, in plaintext: held only in memory, zeroed
/// when dropped, never stored or logged as such.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PersonalFields {
    /// Full name.
    pub name: String,
    /// Company user ID.
    pub user_id: String,
    /// Company e-mail.
    pub email: String,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Phone.
    #[serde(default)]
    pub phone: Option<String>,
}

impl fmt::Debug for PersonalFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonalFields(<redacted>)")
    }
}

/// A person as stored: pseudonymous columns in the clear, personal fields
/// sealed under the person's data key, the data key wrapped by a master
/// key, and keyed blind indexes for exact-match lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonRecord {
    /// Random pseudonymous identifier.
    pub id: PersonId,
    /// Employment status.
    pub status: EmploymentStatus,
    /// When the person left (status departed).
    pub departed_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// ID of the master key that wraps the data key.
    pub key_id: String,
    /// The person's data key, wrapped (AES-256-GCM) by that master key.
    pub wrapped_key: Vec<u8>,
    /// The personal fields (JSON), sealed (AES-256-GCM) by the data key.
    pub sealed: Vec<u8>,
    /// HMAC blind index of the normalised e-mail.
    pub email_index: String,
    /// HMAC blind index of the normalised user ID.
    pub user_id_index: String,
    /// HMAC blind index of the normalised department (for dynamic device
    /// groups); None when there is none, or not indexed yet.
    pub department_index: Option<String>,
}

/// What anyone with device access may see of a person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonView {
    /// Pseudonymous identifier.
    pub id: PersonId,
    /// Employment status.
    pub status: EmploymentStatus,
    /// When the person left.
    #[serde(with = "time::serde::rfc3339::option")]
    pub departed_at: Option<OffsetDateTime>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Assigned devices.
    pub devices: Vec<DeviceKey>,
}
