//! Loading the embedded YAML (the file lists come from `build.rs`) into
//! the command, check-in and profile registries, parsed once on first use,
//! and the public look-ups.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::types::{CommandSchema, KeySchema, RangeValue, SchemaError, ValueType};

// `COMMAND_YAMLS`, `CHECKIN_YAMLS`, `PROFILE_YAMLS`: (file name, text) of every
// `.yaml` file under `apple-schema/mdm/{commands,checkin,profiles}`, sorted.
include!(concat!(env!("OUT_DIR"), "/schema_yamls.rs"));

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
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    default: Option<serde_yaml_ng::Value>,
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
        title: raw.title.clone().unwrap_or_default(),
        description: raw.content.clone().unwrap_or_default(),
        default: raw.default.as_ref().and_then(RangeValue::from_yaml),
    })
}

pub(super) fn parse_doc(
    file: &'static str,
    text: &str,
    profile: bool,
) -> Result<CommandSchema, String> {
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

pub(super) struct Registry {
    pub(super) commands: BTreeMap<String, CommandSchema>,
    pub(super) checkin: BTreeMap<String, CommandSchema>,
    pub(super) profiles: BTreeMap<String, CommandSchema>,
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

pub(super) fn registry() -> Result<&'static Registry, SchemaError> {
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
