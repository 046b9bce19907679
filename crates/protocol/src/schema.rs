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

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::plistjson::{decode_base64, number_to_plist, rfc3339_to_date, untyped_json_to_plist};

/// Schema validation errors. Paths look like `Command.Queries[2]`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// The `RequestType` is not in Apple's schema.
    #[error("unknown RequestType {0:?}")]
    UnknownRequestType(String),
    /// A required key is missing.
    #[error("{path}: required key missing")]
    MissingKey {
        /// Path of the missing key.
        path: String,
    },
    /// A value has the wrong type.
    #[error("{path}: expected {expected}")]
    WrongType {
        /// Path of the value.
        path: String,
        /// Expected type, e.g. `string` or `data (base64 string)`.
        expected: &'static str,
    },
    /// A key that the schema does not define.
    #[error("{path}: unknown key")]
    UnknownKey {
        /// Path of the unexpected key.
        path: String,
    },
    /// A value outside the schema's `rangelist`.
    #[error("{path}: value {value} is not one of [{allowed}]")]
    NotAllowed {
        /// Path of the value.
        path: String,
        /// The offending value.
        value: String,
        /// The allowed values, comma separated.
        allowed: String,
    },
    /// Any other invalid value.
    #[error("{path}: {message}")]
    Invalid {
        /// Path of the value.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The embedded schema could not be loaded (a build defect).
    #[error("embedded schema failed to load: {0}")]
    Load(String),
}

impl SchemaError {
    /// The key path the error refers to, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            SchemaError::MissingKey { path }
            | SchemaError::WrongType { path, .. }
            | SchemaError::UnknownKey { path }
            | SchemaError::NotAllowed { path, .. }
            | SchemaError::Invalid { path, .. } => Some(path),
            SchemaError::UnknownRequestType(_) | SchemaError::Load(_) => None,
        }
    }
}

/// A schema value type (`type:` in the YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `<string>`
    String,
    /// `<integer>`
    Integer,
    /// `<real>`
    Real,
    /// `<boolean>`
    Boolean,
    /// `<date>`
    Date,
    /// `<data>`
    Data,
    /// `<array>`
    Array,
    /// `<dictionary>`
    Dictionary,
    /// `<any>`
    Any,
}

impl ValueType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "<string>" => Self::String,
            "<integer>" => Self::Integer,
            "<real>" => Self::Real,
            "<boolean>" => Self::Boolean,
            "<date>" => Self::Date,
            "<data>" => Self::Data,
            "<array>" => Self::Array,
            "<dictionary>" => Self::Dictionary,
            "<any>" => Self::Any,
            _ => return None,
        })
    }

    /// Expected-type description for JSON input.
    fn json_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Real => "real",
            Self::Boolean => "boolean",
            Self::Date => "date (RFC 3339 string)",
            Self::Data => "data (base64 string)",
            Self::Array => "array",
            Self::Dictionary => "dictionary",
            Self::Any => "any value",
        }
    }

    /// Expected-type description for plist input.
    fn plist_name(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::Data => "data",
            other => other.json_name(),
        }
    }
}

/// One allowed value from a `rangelist`.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeValue {
    /// A string value.
    String(String),
    /// An integer value.
    Integer(i64),
    /// A real value.
    Real(f64),
    /// A boolean value.
    Boolean(bool),
}

impl RangeValue {
    fn from_yaml(v: &serde_yaml_ng::Value) -> Option<Self> {
        match v {
            serde_yaml_ng::Value::String(s) => Some(Self::String(s.clone())),
            serde_yaml_ng::Value::Bool(b) => Some(Self::Boolean(*b)),
            serde_yaml_ng::Value::Number(n) => n
                .as_i64()
                .map(Self::Integer)
                .or_else(|| n.as_f64().map(Self::Real)),
            _ => None,
        }
    }

    fn matches_str(&self, s: &str) -> bool {
        match self {
            Self::String(v) => v == s,
            Self::Integer(i) => i.to_string() == s,
            Self::Real(r) => r.to_string() == s,
            Self::Boolean(b) => b.to_string() == s,
        }
    }

    fn matches_int(&self, i: i128) -> bool {
        match self {
            Self::Integer(v) => i128::from(*v) == i,
            Self::String(s) => s.parse::<i128>().ok() == Some(i),
            Self::Real(r) => r.fract() == 0.0 && (*r as i128) == i,
            Self::Boolean(_) => false,
        }
    }
}

impl std::fmt::Display for RangeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String(s) => write!(f, "{s:?}"),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Real(r) => write!(f, "{r}"),
            Self::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// Schema of one key (a `payloadkeys` / `subkeys` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct KeySchema {
    /// Key name (`ANY` stands for "any key").
    pub name: String,
    /// Declared type.
    pub value_type: ValueType,
    /// `presence: required`.
    pub required: bool,
    /// The key declares its own `supportedOS` (its presence may depend on the
    /// platform, channel or enrollment type).
    pub os_dependent: bool,
    /// Allowed values (empty: unrestricted).
    pub rangelist: Vec<RangeValue>,
    /// Allowed numeric range, inclusive (`range: {min, max}`).
    pub range: (Option<f64>, Option<f64>),
    /// Platforms where the key does not exist (`supportedOS: {P:
    /// {introduced: n/a}}`).
    pub unsupported_on: Vec<String>,
    /// Nested keys (dictionary members, array item type, or documented values).
    pub subkeys: Vec<KeySchema>,
}

impl KeySchema {
    fn is_any_key(&self) -> bool {
        self.name == "ANY"
    }
}

/// Schema of one command, check-in message or profile payload.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSchema {
    /// `payload.requesttype` (commands, check-in) or `payload.payloadtype`
    /// (profiles).
    pub request_type: String,
    /// Human title from the YAML.
    pub title: String,
    /// Source file name inside `apple-schema/mdm/…`.
    pub file: &'static str,
    /// Request keys (`payloadkeys`).
    pub keys: Vec<KeySchema>,
    /// Response keys (`responsekeys`).
    pub response_keys: Vec<KeySchema>,
    /// Platforms the whole payload does not exist on.
    pub unsupported_on: Vec<String>,
}

// ---------------------------------------------------------------------------
// Loading

#[derive(Deserialize)]
struct RawDoc {
    #[serde(default)]
    title: Option<String>,
    payload: RawPayload,
    #[serde(default)]
    payloadkeys: Vec<RawKey>,
    #[serde(default)]
    responsekeys: Vec<RawKey>,
}

#[derive(Deserialize)]
struct RawPayload {
    #[serde(default)]
    requesttype: Option<String>,
    #[serde(default)]
    payloadtype: Option<String>,
    #[serde(default, rename = "supportedOS")]
    supported_os: Option<serde_yaml_ng::Value>,
}

/// Platforms a `supportedOS` map marks `introduced: n/a`.
fn unsupported_platforms(v: Option<&serde_yaml_ng::Value>) -> Vec<String> {
    let Some(serde_yaml_ng::Value::Mapping(m)) = v else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let platform = k.as_str()?;
            let introduced = v.get("introduced")?.as_str()?;
            (introduced == "n/a").then(|| platform.to_owned())
        })
        .collect()
}

#[derive(Deserialize)]
struct RawKey {
    key: serde_yaml_ng::Value,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    presence: Option<String>,
    #[serde(default)]
    rangelist: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    range: Option<RawRange>,
    #[serde(default)]
    subkeys: Vec<RawKey>,
    #[serde(default, rename = "supportedOS")]
    supported_os: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
}

fn convert_key(raw: &RawKey, path: &str) -> Result<KeySchema, String> {
    let name = match &raw.key {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        other => return Err(format!("{path}: unsupported key name {other:?}")),
    };
    let here = format!("{path}.{name}");
    let value_type =
        ValueType::parse(&raw.ty).ok_or_else(|| format!("{here}: unknown type {:?}", raw.ty))?;
    let rangelist = raw
        .rangelist
        .iter()
        .map(|v| RangeValue::from_yaml(v).ok_or_else(|| format!("{here}: bad rangelist value")))
        .collect::<Result<_, _>>()?;
    let subkeys = raw
        .subkeys
        .iter()
        .map(|k| convert_key(k, &here))
        .collect::<Result<_, _>>()?;
    Ok(KeySchema {
        name,
        value_type,
        required: raw.presence.as_deref() == Some("required"),
        os_dependent: raw.supported_os.is_some(),
        unsupported_on: unsupported_platforms(raw.supported_os.as_ref()),
        rangelist,
        range: raw.range.as_ref().map_or((None, None), |r| (r.min, r.max)),
        subkeys,
    })
}

fn parse_doc(file: &'static str, text: &str, profile: bool) -> Result<CommandSchema, String> {
    let raw: RawDoc = serde_yaml_ng::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let name = if profile {
        raw.payload.payloadtype
    } else {
        raw.payload.requesttype
    }
    .ok_or_else(|| format!("{file}: payload has no request/payload type"))?;
    let convert = |keys: &[RawKey]| -> Result<Vec<KeySchema>, String> {
        keys.iter().map(|k| convert_key(k, file)).collect()
    };
    Ok(CommandSchema {
        request_type: name,
        title: raw.title.unwrap_or_default(),
        file,
        keys: convert(&raw.payloadkeys)?,
        response_keys: convert(&raw.responsekeys)?,
        unsupported_on: unsupported_platforms(raw.payload.supported_os.as_ref()),
    })
}

/// Check-in keys that the YAML marks `required` but that real devices omit in
/// part of the flow: the first `UserAuthenticate` request carries no
/// `DigestResponse` (the server answers with a `DigestChallenge`).
const CHECKIN_NOT_REQUIRED: &[(&str, &str)] = &[("UserAuthenticate", "DigestResponse")];

struct Registry {
    commands: BTreeMap<String, CommandSchema>,
    checkin: BTreeMap<String, CommandSchema>,
    profiles: BTreeMap<String, CommandSchema>,
}

fn load_set(
    files: &[(&'static str, &'static str)],
    profile: bool,
) -> Result<BTreeMap<String, CommandSchema>, String> {
    let mut map = BTreeMap::new();
    for (file, text) in files {
        let schema = parse_doc(file, text, profile)?;
        if let Some(prev) = map.insert(schema.request_type.clone(), schema) {
            return Err(format!("{file}: duplicate type {}", prev.request_type));
        }
    }
    Ok(map)
}

fn load() -> Result<Registry, String> {
    let mut checkin = load_set(CHECKIN_YAMLS, false)?;
    for (msg, key) in CHECKIN_NOT_REQUIRED {
        if let Some(k) = checkin
            .get_mut(*msg)
            .and_then(|s| s.keys.iter_mut().find(|k| k.name == *key))
        {
            k.required = false;
        }
    }
    Ok(Registry {
        commands: load_set(COMMAND_YAMLS, false)?,
        checkin,
        profiles: load_set(PROFILE_YAMLS, true)?,
    })
}

fn registry() -> Result<&'static Registry, SchemaError> {
    static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(load)
        .as_ref()
        .map_err(|e| SchemaError::Load(e.clone()))
}

/// Make sure the embedded schema loads; returns the load error otherwise.
pub fn ensure_loaded() -> Result<(), SchemaError> {
    registry().map(|_| ())
}

/// All MDM command request types known to the schema, sorted.
pub fn request_types() -> impl Iterator<Item = &'static str> {
    registry()
        .ok()
        .into_iter()
        .flat_map(|r| r.commands.keys().map(String::as_str))
}

/// All check-in `MessageType`s known to the schema, sorted.
pub fn checkin_message_types() -> impl Iterator<Item = &'static str> {
    registry()
        .ok()
        .into_iter()
        .flat_map(|r| r.checkin.keys().map(String::as_str))
}

/// Schema of a command, by `RequestType`.
pub fn command_schema(request_type: &str) -> Option<&'static CommandSchema> {
    registry().ok()?.commands.get(request_type)
}

/// Schema of a check-in message, by `MessageType`.
pub fn checkin_schema(message_type: &str) -> Option<&'static CommandSchema> {
    registry().ok()?.checkin.get(message_type)
}

/// Schema of a profile payload, by `PayloadType` (only the embedded subset:
/// `TopLevel`, `CommonPayloadKeys`, `com.apple.mdm`, `com.apple.security.scep`,
/// `com.apple.security.root`).
pub fn profile_schema(payload_type: &str) -> Option<&'static CommandSchema> {
    registry().ok()?.profiles.get(payload_type)
}

// ---------------------------------------------------------------------------
// Shared helpers

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn allowed_list(range: &[RangeValue]) -> String {
    range
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_str_range(s: &str, schema: &KeySchema, path: &str) -> Result<(), SchemaError> {
    if schema.rangelist.is_empty() || schema.rangelist.iter().any(|r| r.matches_str(s)) {
        Ok(())
    } else {
        Err(SchemaError::NotAllowed {
            path: path.to_owned(),
            value: format!("{s:?}"),
            allowed: allowed_list(&schema.rangelist),
        })
    }
}

/// `range: {min, max}` (inclusive).
fn check_min_max(v: f64, schema: &KeySchema, path: &str) -> Result<(), SchemaError> {
    let (min, max) = schema.range;
    if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
        let show = |b: Option<f64>| b.map_or_else(|| "…".to_owned(), |x| x.to_string());
        return Err(SchemaError::Invalid {
            path: path.to_owned(),
            message: format!("{v} is out of range ({}–{})", show(min), show(max)),
        });
    }
    Ok(())
}

fn check_int_range(i: i128, schema: &KeySchema, path: &str) -> Result<(), SchemaError> {
    #[allow(clippy::cast_precision_loss)]
    check_min_max(i as f64, schema, path)?;
    if schema.rangelist.is_empty() || schema.rangelist.iter().any(|r| r.matches_int(i)) {
        Ok(())
    } else {
        Err(SchemaError::NotAllowed {
            path: path.to_owned(),
            value: i.to_string(),
            allowed: allowed_list(&schema.rangelist),
        })
    }
}

/// For arrays whose items may be one of several dictionary shapes, pick the
/// alternative whose single-valued `rangelist` key (e.g. `Item`) matches.
fn pick_alternative(
    alternatives: &[KeySchema],
    discriminator: impl Fn(&str) -> Option<String>,
) -> Option<&KeySchema> {
    alternatives.iter().find(|alt| {
        alt.value_type == ValueType::Dictionary
            && alt.subkeys.iter().any(|k| {
                k.rangelist.len() == 1
                    && discriminator(&k.name).is_some_and(|v| k.rangelist[0].matches_str(&v))
            })
    })
}

fn alternatives_error(path: &str, alternatives: &[KeySchema]) -> SchemaError {
    SchemaError::Invalid {
        path: path.to_owned(),
        message: format!(
            "item matches none of the allowed item types ({})",
            alternatives
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ---------------------------------------------------------------------------
// JSON → plist, guided by the schema

/// Validate a JSON command against Apple's schema and build the plist
/// `Command` dictionary (with `RequestType` first).
///
/// Input: an object with a string `RequestType` plus the command's keys.
/// `<data>` values are base64 strings, `<date>` values RFC 3339 strings;
/// they become plist data/date values in the output.
pub fn validate_command(json: &Json) -> Result<plist::Dictionary, SchemaError> {
    let obj = json.as_object().ok_or_else(|| SchemaError::WrongType {
        path: "Command".to_owned(),
        expected: "dictionary",
    })?;
    let request_type = match obj.get("RequestType") {
        None => {
            return Err(SchemaError::MissingKey {
                path: "Command.RequestType".to_owned(),
            })
        }
        Some(Json::String(s)) => s.as_str(),
        Some(_) => {
            return Err(SchemaError::WrongType {
                path: "Command.RequestType".to_owned(),
                expected: "string",
            })
        }
    };
    let schema = registry()?
        .commands
        .get(request_type)
        .ok_or_else(|| SchemaError::UnknownRequestType(request_type.to_owned()))?;
    let mut out = plist::Dictionary::new();
    out.insert(
        "RequestType".to_owned(),
        plist::Value::String(request_type.to_owned()),
    );
    let rest = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "RequestType")
        .map(|(k, v)| (k.as_str(), v));
    for (k, v) in json_dict_to_plist(rest, &schema.keys, "Command", false)? {
        out.insert(k, v);
    }
    Ok(out)
}

/// The keys the profile builder sets on every payload itself.
pub const BUILDER_KEYS: &[&str] = &[
    "PayloadType",
    "PayloadVersion",
    "PayloadIdentifier",
    "PayloadUUID",
    "PayloadDisplayName",
    "PayloadDescription",
    "PayloadOrganization",
];

/// Validate a profile payload's own keys (JSON, without the `Payload…`
/// keys the builder adds) against Apple's schema for `payload_type`, and
/// convert them to plist values. Errors name the key
/// (`com.apple.wifi.managed.SSID_STR: required key missing`).
pub fn validate_payload(payload_type: &str, json: &Json) -> Result<plist::Dictionary, SchemaError> {
    let obj = json.as_object().ok_or_else(|| SchemaError::WrongType {
        path: payload_type.to_owned(),
        expected: "dictionary",
    })?;
    if let Some(k) = obj.keys().find(|k| BUILDER_KEYS.contains(&k.as_str())) {
        return Err(SchemaError::Invalid {
            path: join(payload_type, k),
            message: "set by Mamori, not by the policy".into(),
        });
    }
    let schema = registry()?.profiles.get(payload_type).ok_or_else(|| {
        SchemaError::Load(format!("no embedded profile schema for {payload_type}"))
    })?;
    let keys: Vec<KeySchema> = schema
        .keys
        .iter()
        .filter(|k| !BUILDER_KEYS.contains(&k.name.as_str()))
        .cloned()
        .collect();
    json_dict_to_plist(
        obj.iter().map(|(k, v)| (k.as_str(), v)),
        &keys,
        payload_type,
        false,
    )
}

/// Refuses a payload, or a key of it, that does not exist on `platform`
/// (`iOS`, `macOS`, `tvOS`, `visionOS`, `watchOS`), naming the key.
pub fn check_payload_platform(
    payload_type: &str,
    json: &Json,
    platform: &str,
) -> Result<(), SchemaError> {
    let schema = registry()?.profiles.get(payload_type).ok_or_else(|| {
        SchemaError::Load(format!("no embedded profile schema for {payload_type}"))
    })?;
    if schema.unsupported_on.iter().any(|p| p == platform) {
        return Err(SchemaError::Invalid {
            path: payload_type.to_owned(),
            message: format!("not supported on {platform}"),
        });
    }
    if let Some(obj) = json.as_object() {
        for k in obj.keys() {
            if let Some(ks) = schema.keys.iter().find(|s| s.name == *k) {
                if ks.unsupported_on.iter().any(|p| p == platform) {
                    return Err(SchemaError::Invalid {
                        path: join(payload_type, k),
                        message: format!("not supported on {platform}"),
                    });
                }
            }
        }
    }
    Ok(())
}

/// `open_if_unspecified`: an empty key list means "anything goes" (nested
/// dictionaries) rather than "no keys allowed" (commands without payloadkeys).
fn json_dict_to_plist<'a>(
    entries: impl Iterator<Item = (&'a str, &'a Json)> + Clone,
    keys: &[KeySchema],
    path: &str,
    open_if_unspecified: bool,
) -> Result<plist::Dictionary, SchemaError> {
    let mut out = plist::Dictionary::new();
    let any = keys.iter().find(|k| k.is_any_key());
    for (name, value) in entries.clone() {
        let here = join(path, name);
        let schema = keys
            .iter()
            .find(|k| !k.is_any_key() && k.name == name)
            .or(any);
        let converted = match schema {
            Some(s) => json_to_typed(value, s, &here)?,
            None if keys.is_empty() && open_if_unspecified => untyped_at(value, &here)?,
            None => return Err(SchemaError::UnknownKey { path: here }),
        };
        out.insert(name.to_owned(), converted);
    }
    for k in keys.iter().filter(|k| k.required && !k.is_any_key()) {
        if !entries.clone().any(|(name, _)| name == k.name) {
            return Err(SchemaError::MissingKey {
                path: join(path, &k.name),
            });
        }
    }
    Ok(out)
}

fn untyped_at(value: &Json, path: &str) -> Result<plist::Value, SchemaError> {
    untyped_json_to_plist(value, path).map_err(|(path, message)| SchemaError::Invalid {
        path,
        message: message.to_owned(),
    })
}

fn json_to_typed(
    value: &Json,
    schema: &KeySchema,
    path: &str,
) -> Result<plist::Value, SchemaError> {
    let wrong = || SchemaError::WrongType {
        path: path.to_owned(),
        expected: schema.value_type.json_name(),
    };
    Ok(match schema.value_type {
        ValueType::String => {
            let s = value.as_str().ok_or_else(wrong)?;
            check_str_range(s, schema, path)?;
            plist::Value::String(s.to_owned())
        }
        ValueType::Integer => {
            let Json::Number(n) = value else {
                return Err(wrong());
            };
            let i = if let Some(i) = n.as_i64() {
                i128::from(i)
            } else if let Some(u) = n.as_u64() {
                i128::from(u)
            } else {
                return Err(wrong());
            };
            check_int_range(i, schema, path)?;
            number_to_plist(n)
        }
        ValueType::Real => {
            let f = value.as_f64().ok_or_else(wrong)?;
            check_min_max(f, schema, path)?;
            plist::Value::Real(f)
        }
        ValueType::Boolean => plist::Value::Boolean(value.as_bool().ok_or_else(wrong)?),
        ValueType::Date => {
            let s = value.as_str().ok_or_else(wrong)?;
            plist::Value::Date(rfc3339_to_date(s).ok_or_else(wrong)?)
        }
        ValueType::Data => {
            let s = value.as_str().ok_or_else(wrong)?;
            plist::Value::Data(decode_base64(s).map_err(|_| wrong())?)
        }
        ValueType::Any => untyped_at(value, path)?,
        ValueType::Dictionary => {
            let map = value.as_object().ok_or_else(wrong)?;
            plist::Value::Dictionary(json_dict_to_plist(
                map.iter().map(|(k, v)| (k.as_str(), v)),
                &schema.subkeys,
                path,
                true,
            )?)
        }
        ValueType::Array => {
            let items = value.as_array().ok_or_else(wrong)?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let here = format!("{path}[{i}]");
                out.push(match schema.subkeys.as_slice() {
                    [] => untyped_at(item, &here)?,
                    [one] => json_to_typed(item, one, &here)?,
                    alternatives => json_alternative(item, alternatives, &here)?,
                });
            }
            plist::Value::Array(out)
        }
    })
}

fn json_alternative(
    item: &Json,
    alternatives: &[KeySchema],
    path: &str,
) -> Result<plist::Value, SchemaError> {
    let picked = pick_alternative(alternatives, |key| {
        item.get(key).and_then(Json::as_str).map(str::to_owned)
    });
    if let Some(alt) = picked {
        return json_to_typed(item, alt, path);
    }
    alternatives
        .iter()
        .find_map(|alt| json_to_typed(item, alt, path).ok())
        .ok_or_else(|| alternatives_error(path, alternatives))
}

// ---------------------------------------------------------------------------
// plist validation (check-in messages, profiles)

/// How [`check_plist_dict`] treats required and unknown keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlistCheck {
    /// Reject keys the schema does not define.
    pub reject_unknown: bool,
    /// Only enforce `required` keys that have no key-level `supportedOS`
    /// (i.e. required on every platform, channel and enrollment type).
    pub unconditional_required_only: bool,
}

impl PlistCheck {
    fn is_required(self, k: &KeySchema) -> bool {
        k.required && !k.is_any_key() && !(self.unconditional_required_only && k.os_dependent)
    }
}

/// Check a command dictionary built as plist (`RequestType` plus its keys)
/// against Apple's schema for that command.
pub fn check_command_dict(dict: &plist::Dictionary) -> Result<(), SchemaError> {
    let rt = dict
        .get("RequestType")
        .and_then(plist::Value::as_string)
        .ok_or_else(|| SchemaError::MissingKey {
            path: "Command.RequestType".to_owned(),
        })?;
    let schema = registry()?
        .commands
        .get(rt)
        .ok_or_else(|| SchemaError::UnknownRequestType(rt.to_owned()))?;
    let mut rest = dict.clone();
    rest.remove("RequestType");
    check_plist_dict(
        &rest,
        &schema.keys,
        "Command",
        PlistCheck {
            reject_unknown: true,
            unconditional_required_only: false,
        },
    )
}

/// Check a plist dictionary against a key list. `path` prefixes error paths
/// (empty for none).
pub(crate) fn check_plist_dict(
    dict: &plist::Dictionary,
    keys: &[KeySchema],
    path: &str,
    mode: PlistCheck,
) -> Result<(), SchemaError> {
    if keys.is_empty() {
        return Ok(());
    }
    let any = keys.iter().find(|k| k.is_any_key());
    for (name, value) in dict {
        let here = join(path, name);
        match keys
            .iter()
            .find(|k| !k.is_any_key() && k.name == *name)
            .or(any)
        {
            Some(s) => check_plist_value(value, s, &here, mode)?,
            None if mode.reject_unknown => return Err(SchemaError::UnknownKey { path: here }),
            None => {}
        }
    }
    for k in keys.iter().filter(|k| mode.is_required(k)) {
        if !dict.contains_key(&k.name) {
            return Err(SchemaError::MissingKey {
                path: join(path, &k.name),
            });
        }
    }
    Ok(())
}

fn check_plist_value(
    value: &plist::Value,
    schema: &KeySchema,
    path: &str,
    mode: PlistCheck,
) -> Result<(), SchemaError> {
    use plist::Value as P;
    let wrong = || SchemaError::WrongType {
        path: path.to_owned(),
        expected: schema.value_type.plist_name(),
    };
    match (schema.value_type, value) {
        (ValueType::Any, _)
        | (ValueType::Real, P::Real(_) | P::Integer(_))
        | (ValueType::Boolean, P::Boolean(_))
        | (ValueType::Date, P::Date(_))
        | (ValueType::Data, P::Data(_)) => Ok(()),
        (ValueType::String, P::String(s)) => check_str_range(s, schema, path),
        (ValueType::Integer, P::Integer(i)) => {
            let v = i
                .as_signed()
                .map(i128::from)
                .or_else(|| i.as_unsigned().map(i128::from))
                .ok_or_else(wrong)?;
            check_int_range(v, schema, path)
        }
        (ValueType::Dictionary, P::Dictionary(d)) => {
            check_plist_dict(d, &schema.subkeys, path, mode)
        }
        (ValueType::Array, P::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let here = format!("{path}[{i}]");
                match schema.subkeys.as_slice() {
                    [] => {}
                    [one] => check_plist_value(item, one, &here, mode)?,
                    alternatives => {
                        let picked = pick_alternative(alternatives, |key| {
                            item.as_dictionary()
                                .and_then(|d| d.get(key))
                                .and_then(P::as_string)
                                .map(str::to_owned)
                        });
                        match picked {
                            Some(alt) => check_plist_value(item, alt, &here, mode)?,
                            None => {
                                if !alternatives
                                    .iter()
                                    .any(|alt| check_plist_value(item, alt, &here, mode).is_ok())
                                {
                                    return Err(alternatives_error(&here, alternatives));
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        }
        (_, _) => Err(wrong()),
    }
}

/// Embedded MDM command schemas (`mdm/commands/*.yaml`).
const COMMAND_YAMLS: &[(&str, &str)] = &[
    (
        "account.configuration.yaml",
        include_str!("../apple-schema/mdm/commands/account.configuration.yaml"),
    ),
    (
        "application.extensions.listactive.yaml",
        include_str!("../apple-schema/mdm/commands/application.extensions.listactive.yaml"),
    ),
    (
        "application.extensions.mappings.yaml",
        include_str!("../apple-schema/mdm/commands/application.extensions.mappings.yaml"),
    ),
    (
        "application.install.enterprise.yaml",
        include_str!("../apple-schema/mdm/commands/application.install.enterprise.yaml"),
    ),
    (
        "application.install.yaml",
        include_str!("../apple-schema/mdm/commands/application.install.yaml"),
    ),
    (
        "application.installed.list.yaml",
        include_str!("../apple-schema/mdm/commands/application.installed.list.yaml"),
    ),
    (
        "application.invitetoprogram.yaml",
        include_str!("../apple-schema/mdm/commands/application.invitetoprogram.yaml"),
    ),
    (
        "application.managed.list.yaml",
        include_str!("../apple-schema/mdm/commands/application.managed.list.yaml"),
    ),
    (
        "application.redemptioncode.yaml",
        include_str!("../apple-schema/mdm/commands/application.redemptioncode.yaml"),
    ),
    (
        "application.remove.yaml",
        include_str!("../apple-schema/mdm/commands/application.remove.yaml"),
    ),
    (
        "application.validate.yaml",
        include_str!("../apple-schema/mdm/commands/application.validate.yaml"),
    ),
    (
        "certificate.list.yaml",
        include_str!("../apple-schema/mdm/commands/certificate.list.yaml"),
    ),
    (
        "declarativemanagement.yaml",
        include_str!("../apple-schema/mdm/commands/declarativemanagement.yaml"),
    ),
    (
        "device.activationlock.bypasscode.yaml",
        include_str!("../apple-schema/mdm/commands/device.activationlock.bypasscode.yaml"),
    ),
    (
        "device.activationlock.clearbypasscode.yaml",
        include_str!("../apple-schema/mdm/commands/device.activationlock.clearbypasscode.yaml"),
    ),
    (
        "device.configured.yaml",
        include_str!("../apple-schema/mdm/commands/device.configured.yaml"),
    ),
    (
        "device.erase.yaml",
        include_str!("../apple-schema/mdm/commands/device.erase.yaml"),
    ),
    (
        "device.esim.yaml",
        include_str!("../apple-schema/mdm/commands/device.esim.yaml"),
    ),
    (
        "device.lock.yaml",
        include_str!("../apple-schema/mdm/commands/device.lock.yaml"),
    ),
    (
        "device.lostmode.disable.yaml",
        include_str!("../apple-schema/mdm/commands/device.lostmode.disable.yaml"),
    ),
    (
        "device.lostmode.enable.yaml",
        include_str!("../apple-schema/mdm/commands/device.lostmode.enable.yaml"),
    ),
    (
        "device.lostmode.location.yaml",
        include_str!("../apple-schema/mdm/commands/device.lostmode.location.yaml"),
    ),
    (
        "device.lostmode.playsound.yaml",
        include_str!("../apple-schema/mdm/commands/device.lostmode.playsound.yaml"),
    ),
    (
        "device.restart.yaml",
        include_str!("../apple-schema/mdm/commands/device.restart.yaml"),
    ),
    (
        "device.restrictions.clearpassword.yaml",
        include_str!("../apple-schema/mdm/commands/device.restrictions.clearpassword.yaml"),
    ),
    (
        "device.restrictions.list.yaml",
        include_str!("../apple-schema/mdm/commands/device.restrictions.list.yaml"),
    ),
    (
        "device.shutdown.yaml",
        include_str!("../apple-schema/mdm/commands/device.shutdown.yaml"),
    ),
    (
        "information.contentcaching.yaml",
        include_str!("../apple-schema/mdm/commands/information.contentcaching.yaml"),
    ),
    (
        "information.device.yaml",
        include_str!("../apple-schema/mdm/commands/information.device.yaml"),
    ),
    (
        "information.security.yaml",
        include_str!("../apple-schema/mdm/commands/information.security.yaml"),
    ),
    (
        "lom.devicerequest.yaml",
        include_str!("../apple-schema/mdm/commands/lom.devicerequest.yaml"),
    ),
    (
        "lom.setuprequest.yaml",
        include_str!("../apple-schema/mdm/commands/lom.setuprequest.yaml"),
    ),
    (
        "managed.application.attributes.yaml",
        include_str!("../apple-schema/mdm/commands/managed.application.attributes.yaml"),
    ),
    (
        "managed.application.configuration.yaml",
        include_str!("../apple-schema/mdm/commands/managed.application.configuration.yaml"),
    ),
    (
        "managed.application.feedback.yaml",
        include_str!("../apple-schema/mdm/commands/managed.application.feedback.yaml"),
    ),
    (
        "media.install.yaml",
        include_str!("../apple-schema/mdm/commands/media.install.yaml"),
    ),
    (
        "media.managed.list.yaml",
        include_str!("../apple-schema/mdm/commands/media.managed.list.yaml"),
    ),
    (
        "media.remove.yaml",
        include_str!("../apple-schema/mdm/commands/media.remove.yaml"),
    ),
    (
        "mirroring.request.yaml",
        include_str!("../apple-schema/mdm/commands/mirroring.request.yaml"),
    ),
    (
        "mirroring.stop.yaml",
        include_str!("../apple-schema/mdm/commands/mirroring.stop.yaml"),
    ),
    (
        "passcode.clear.yaml",
        include_str!("../apple-schema/mdm/commands/passcode.clear.yaml"),
    ),
    (
        "passcode.firmware.set.yaml",
        include_str!("../apple-schema/mdm/commands/passcode.firmware.set.yaml"),
    ),
    (
        "passcode.firmware.verify.yaml",
        include_str!("../apple-schema/mdm/commands/passcode.firmware.verify.yaml"),
    ),
    (
        "passcode.recovery.set.yaml",
        include_str!("../apple-schema/mdm/commands/passcode.recovery.set.yaml"),
    ),
    (
        "passcode.recovery.verify.yaml",
        include_str!("../apple-schema/mdm/commands/passcode.recovery.verify.yaml"),
    ),
    (
        "passcode.unlocktoken.yaml",
        include_str!("../apple-schema/mdm/commands/passcode.unlocktoken.yaml"),
    ),
    (
        "profile.install.yaml",
        include_str!("../apple-schema/mdm/commands/profile.install.yaml"),
    ),
    (
        "profile.list.yaml",
        include_str!("../apple-schema/mdm/commands/profile.list.yaml"),
    ),
    (
        "profile.provisioning.install.yaml",
        include_str!("../apple-schema/mdm/commands/profile.provisioning.install.yaml"),
    ),
    (
        "profile.provisioning.list.yaml",
        include_str!("../apple-schema/mdm/commands/profile.provisioning.list.yaml"),
    ),
    (
        "profile.provisioning.remove.yaml",
        include_str!("../apple-schema/mdm/commands/profile.provisioning.remove.yaml"),
    ),
    (
        "profile.remove.yaml",
        include_str!("../apple-schema/mdm/commands/profile.remove.yaml"),
    ),
    (
        "remotedesktop.disable.yaml",
        include_str!("../apple-schema/mdm/commands/remotedesktop.disable.yaml"),
    ),
    (
        "remotedesktop.enable.yaml",
        include_str!("../apple-schema/mdm/commands/remotedesktop.enable.yaml"),
    ),
    (
        "rotate.file.vault.key.yaml",
        include_str!("../apple-schema/mdm/commands/rotate.file.vault.key.yaml"),
    ),
    (
        "set.auto.admin.password.yaml",
        include_str!("../apple-schema/mdm/commands/set.auto.admin.password.yaml"),
    ),
    (
        "settings.yaml",
        include_str!("../apple-schema/mdm/commands/settings.yaml"),
    ),
    (
        "system.update.available.yaml",
        include_str!("../apple-schema/mdm/commands/system.update.available.yaml"),
    ),
    (
        "system.update.scan.yaml",
        include_str!("../apple-schema/mdm/commands/system.update.scan.yaml"),
    ),
    (
        "system.update.schedule.yaml",
        include_str!("../apple-schema/mdm/commands/system.update.schedule.yaml"),
    ),
    (
        "system.update.status.yaml",
        include_str!("../apple-schema/mdm/commands/system.update.status.yaml"),
    ),
    (
        "user.configured.yaml",
        include_str!("../apple-schema/mdm/commands/user.configured.yaml"),
    ),
    (
        "user.delete.yaml",
        include_str!("../apple-schema/mdm/commands/user.delete.yaml"),
    ),
    (
        "user.list.yaml",
        include_str!("../apple-schema/mdm/commands/user.list.yaml"),
    ),
    (
        "user.logout.yaml",
        include_str!("../apple-schema/mdm/commands/user.logout.yaml"),
    ),
    (
        "user.unlock.yaml",
        include_str!("../apple-schema/mdm/commands/user.unlock.yaml"),
    ),
];

/// Embedded check-in message schemas (`mdm/checkin/*.yaml`).
const CHECKIN_YAMLS: &[(&str, &str)] = &[
    (
        "authenticate.yaml",
        include_str!("../apple-schema/mdm/checkin/authenticate.yaml"),
    ),
    (
        "checkout.yaml",
        include_str!("../apple-schema/mdm/checkin/checkout.yaml"),
    ),
    (
        "declarativemanagement.yaml",
        include_str!("../apple-schema/mdm/checkin/declarativemanagement.yaml"),
    ),
    (
        "getbootstraptoken.yaml",
        include_str!("../apple-schema/mdm/checkin/getbootstraptoken.yaml"),
    ),
    (
        "gettoken.yaml",
        include_str!("../apple-schema/mdm/checkin/gettoken.yaml"),
    ),
    (
        "setbootstraptoken.yaml",
        include_str!("../apple-schema/mdm/checkin/setbootstraptoken.yaml"),
    ),
    (
        "tokenupdate.yaml",
        include_str!("../apple-schema/mdm/checkin/tokenupdate.yaml"),
    ),
    (
        "userauthenticate.yaml",
        include_str!("../apple-schema/mdm/checkin/userauthenticate.yaml"),
    ),
];

/// Embedded profile payload schemas: those of the enrollment profile, and
/// the payloads policies are built from (passcode, restrictions, Wi-Fi,
/// VPN).
const PROFILE_YAMLS: &[(&str, &str)] = &[
    (
        "CommonPayloadKeys.yaml",
        include_str!("../apple-schema/mdm/profiles/CommonPayloadKeys.yaml"),
    ),
    (
        "TopLevel.yaml",
        include_str!("../apple-schema/mdm/profiles/TopLevel.yaml"),
    ),
    (
        "com.apple.mdm.yaml",
        include_str!("../apple-schema/mdm/profiles/com.apple.mdm.yaml"),
    ),
    (
        "com.apple.security.root.yaml",
        include_str!("../apple-schema/mdm/profiles/com.apple.security.root.yaml"),
    ),
    (
        "com.apple.security.scep.yaml",
        include_str!("../apple-schema/mdm/profiles/com.apple.security.scep.yaml"),
    ),
    (
        "com.apple.mobiledevice.passwordpolicy.yaml",
        include_str!("../apple-schema/mdm/profiles/com.apple.mobiledevice.passwordpolicy.yaml"),
    ),
    (
        "com.apple.applicationaccess.yaml",
        include_str!("../apple-schema/mdm/profiles/com.apple.applicationaccess.yaml"),
    ),
    (
        "com.apple.wifi.managed.yaml",
        include_str!("../apple-schema/mdm/profiles/com.apple.wifi.managed.yaml"),
    ),
    (
        "com.apple.vpn.managed.yaml",
        include_str!("../apple-schema/mdm/profiles/com.apple.vpn.managed.yaml"),
    ),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Json) -> SchemaError {
        validate_command(&v).unwrap_err()
    }

    #[test]
    fn every_yaml_parses() {
        for (file, text) in COMMAND_YAMLS.iter().chain(CHECKIN_YAMLS) {
            parse_doc(file, text, false).unwrap();
        }
        for (file, text) in PROFILE_YAMLS {
            parse_doc(file, text, true).unwrap();
        }
        ensure_loaded().unwrap();
        assert_eq!(request_types().count(), COMMAND_YAMLS.len());
        assert_eq!(checkin_message_types().count(), CHECKIN_YAMLS.len());
        assert!(request_types().any(|t| t == "DeviceInformation"));
        assert!(checkin_message_types().any(|t| t == "TokenUpdate"));
        assert!(profile_schema("com.apple.mdm").is_some());
    }

    #[test]
    fn every_vendored_file_is_embedded() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/apple-schema/mdm");
        for (dir, list) in [
            ("commands", COMMAND_YAMLS),
            ("checkin", CHECKIN_YAMLS),
            ("profiles", PROFILE_YAMLS),
        ] {
            let on_disk = std::fs::read_dir(format!("{root}/{dir}"))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".yaml")
                })
                .count();
            assert_eq!(on_disk, list.len(), "{dir}");
        }
    }

    #[test]
    fn device_information_ok() {
        let d = validate_command(&json!({
            "RequestType": "DeviceInformation",
            "Queries": ["UDID", "SerialNumber", "OSVersion"]
        }))
        .unwrap();
        assert_eq!(
            d.get("RequestType").and_then(plist::Value::as_string),
            Some("DeviceInformation")
        );
        assert_eq!(d.get("Queries").unwrap().as_array().unwrap().len(), 3);
        assert_eq!(d.keys().next().map(String::as_str), Some("RequestType"));
    }

    #[test]
    fn queries_wrong_types() {
        let e = err(json!({"RequestType": "DeviceInformation", "Queries": "UDID"}));
        assert_eq!(e.to_string(), "Command.Queries: expected array");
        let e = err(json!({"RequestType": "DeviceInformation", "Queries": ["a", "b", 3]}));
        assert_eq!(e.to_string(), "Command.Queries[2]: expected string");
        let e = err(json!({"RequestType": "DeviceInformation"}));
        assert_eq!(
            e,
            SchemaError::MissingKey {
                path: "Command.Queries".into()
            }
        );
    }

    #[test]
    fn request_type_problems() {
        assert_eq!(
            err(json!({"RequestType": "MakeCoffee"})),
            SchemaError::UnknownRequestType("MakeCoffee".into())
        );
        assert!(matches!(err(json!({})), SchemaError::MissingKey { .. }));
        assert!(matches!(
            err(json!({"RequestType": 5})),
            SchemaError::WrongType { .. }
        ));
        assert!(matches!(err(json!([1])), SchemaError::WrongType { .. }));
    }

    #[test]
    fn device_lock_ok_and_unknown_key() {
        let d = validate_command(&json!({
            "RequestType": "DeviceLock", "PIN": "123456", "Message": "Lost"
        }))
        .unwrap();
        assert_eq!(
            d.get("PIN").and_then(plist::Value::as_string),
            Some("123456")
        );
        let e = err(json!({"RequestType": "DeviceLock", "Pin": "123456"}));
        assert_eq!(
            e,
            SchemaError::UnknownKey {
                path: "Command.Pin".into()
            }
        );
        let e = err(json!({"RequestType": "DeviceLock", "PIN": 123456}));
        assert_eq!(e.to_string(), "Command.PIN: expected string");
    }

    #[test]
    fn install_profile_payload_becomes_data() {
        let d = validate_command(&json!({
            "RequestType": "InstallProfile", "Payload": "PD94bWw="
        }))
        .unwrap();
        assert_eq!(
            d.get("Payload").and_then(plist::Value::as_data),
            Some(&b"<?xml"[..])
        );
        let e = err(json!({"RequestType": "InstallProfile", "Payload": "not base64!"}));
        assert_eq!(
            e.to_string(),
            "Command.Payload: expected data (base64 string)"
        );
        let e = err(json!({"RequestType": "InstallProfile"}));
        assert!(matches!(e, SchemaError::MissingKey { .. }));
    }

    #[test]
    fn erase_device() {
        let d = validate_command(&json!({
            "RequestType": "EraseDevice", "PIN": "123456", "PreserveDataPlan": true,
            "ReturnToService": {"Enabled": true, "WiFiProfileData": "AAEC"}
        }))
        .unwrap();
        let rts = d.get("ReturnToService").unwrap().as_dictionary().unwrap();
        assert_eq!(
            rts.get("WiFiProfileData").and_then(plist::Value::as_data),
            Some(&[0u8, 1, 2][..])
        );
        let e = err(json!({"RequestType": "EraseDevice", "ReturnToService": {}}));
        assert_eq!(
            e.to_string(),
            "Command.ReturnToService.Enabled: required key missing"
        );
        validate_command(&json!({"RequestType": "EraseDevice"})).unwrap();
    }

    #[test]
    fn rangelist_enforced() {
        let e = err(json!({"RequestType": "InstallMedia", "MediaType": "Video"}));
        assert!(matches!(e, SchemaError::NotAllowed { .. }), "{e}");
        assert!(e
            .to_string()
            .starts_with("Command.MediaType: value \"Video\""));
        let e = err(json!({"RequestType": "Settings", "Settings": [
            {"Item": "Wallpaper", "Image": "AAEC", "Where": 7}
        ]}));
        assert!(
            e.to_string()
                .starts_with("Command.Settings[0].Where: value 7"),
            "{e}"
        );
    }

    #[test]
    fn settings_alternatives() {
        let d = validate_command(&json!({"RequestType": "Settings", "Settings": [
            {"Item": "DeviceName", "DeviceName": "Kiosk 1"},
            {"Item": "Bluetooth", "Enabled": false},
            {"Item": "ApplicationConfiguration", "Identifier": "com.example.app",
             "Configuration": {"anything": [1, {"x": "y"}]}}
        ]}))
        .unwrap();
        assert_eq!(d.get("Settings").unwrap().as_array().unwrap().len(), 3);
        let e = err(json!({"RequestType": "Settings", "Settings": [
            {"Item": "Bluetooth", "Enabled": "yes"}
        ]}));
        assert_eq!(
            e.to_string(),
            "Command.Settings[0].Enabled: expected boolean"
        );
        let e = err(json!({"RequestType": "Settings", "Settings": [{"Item": "Nope"}]}));
        assert!(
            e.to_string()
                .starts_with("Command.Settings[0]: item matches none"),
            "{e}"
        );
    }

    #[test]
    fn no_payloadkeys_command_rejects_extras() {
        validate_command(&json!({"RequestType": "RestartDevice"})).unwrap();
        validate_command(&json!({"RequestType": "SecurityInfo"})).unwrap();
        let e = err(json!({"RequestType": "SecurityInfo", "X": 1}));
        assert_eq!(
            e,
            SchemaError::UnknownKey {
                path: "Command.X".into()
            }
        );
    }

    #[test]
    fn null_rejected() {
        let e = err(json!({"RequestType": "DeviceLock", "Message": null}));
        assert_eq!(e.to_string(), "Command.Message: expected string");
    }

    #[test]
    fn plist_check_modes() {
        let schema = checkin_schema("TokenUpdate").unwrap();
        let mut d = plist::Dictionary::new();
        d.insert("MessageType".into(), "TokenUpdate".into());
        d.insert("Topic".into(), "com.apple.mgmt.x".into());
        d.insert("UDID".into(), "U".into());
        d.insert("PushMagic".into(), "m".into());
        d.insert("Extra".into(), 1.into());
        let lenient = PlistCheck {
            reject_unknown: false,
            unconditional_required_only: true,
        };
        assert_eq!(
            check_plist_dict(&d, &schema.keys, "", lenient),
            Err(SchemaError::MissingKey {
                path: "Token".into()
            })
        );
        d.insert("Token".into(), plist::Value::String("x".into()));
        assert_eq!(
            check_plist_dict(&d, &schema.keys, "", lenient),
            Err(SchemaError::WrongType {
                path: "Token".into(),
                expected: "data"
            })
        );
        d.insert("Token".into(), plist::Value::Data(vec![1]));
        check_plist_dict(&d, &schema.keys, "", lenient).unwrap();
        let strict = PlistCheck {
            reject_unknown: true,
            unconditional_required_only: true,
        };
        assert_eq!(
            check_plist_dict(&d, &schema.keys, "", strict),
            Err(SchemaError::UnknownKey {
                path: "Extra".into()
            })
        );
    }
}
