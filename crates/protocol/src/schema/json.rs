//! JSON → plist, guided by the schema: commands and profile payloads
//! written as JSON are validated and converted.

use serde_json::Value as Json;

use super::registry::registry;
use super::rules::{
    alternatives_error, check_int_range, check_min_max, check_str_range, join, pick_alternative,
};
use super::types::{KeySchema, SchemaError, ValueType};
use crate::plistjson::{decode_base64, number_to_plist, rfc3339_to_date, untyped_json_to_plist};

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
