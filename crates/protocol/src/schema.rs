//! Apple's device-management schema (embedded YAML) and command validation.
//!
//! The YAML files under `crates/protocol/apple-schema/` (Apple's
//! `device-management` repository, iOS 18.1 / macOS 15.1 release, MIT) are
//! embedded at compile time and parsed once, on first use.
//!
//! * [`validate_command`] turns a JSON command (`{"RequestType": …, …}`) into
//!   the plist `Command` dictionary, checking every key against the schema.
//! * [`checkin_schema`] / [`profile_schema`] expose the check-in and profile
//!   payload schemas, used by [`crate::checkin`] and [`crate::mobileconfig`].
//!
//! Schema interpretation (see Apple's `docs/schema.md`):
//!
//! * a command's `payloadkeys` are the keys of the `Command` dictionary next to
//!   `RequestType` (no command wraps them in another key);
//! * `<array>` with one subkey: the subkey describes every item; with several
//!   subkeys (e.g. `Settings`): each item must match one of them (picked by a
//!   single-value `rangelist` discriminator such as `Item`, else the first that
//!   validates); with none: items are unchecked;
//! * `<dictionary>` without subkeys accepts anything; a subkey named `ANY`
//!   describes every key not listed explicitly;
//! * subkeys of scalar types (e.g. the `Queries` item list) document possible
//!   values and are not enforced; `rangelist` is enforced.

mod json;
mod plist_check;
mod registry;
mod rules;
mod types;

pub use json::{check_payload_platform, validate_command, validate_payload, BUILDER_KEYS};
pub use plist_check::check_command_dict;
pub(crate) use plist_check::{check_plist_dict, PlistCheck};
pub use registry::{
    checkin_message_types, checkin_schema, command_schema, ensure_loaded, profile_schema,
    request_types,
};
pub use types::{CommandSchema, KeySchema, RangeValue, SchemaError, ValueType};

#[cfg(test)]
mod tests;
