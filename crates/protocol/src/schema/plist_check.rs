//! Validation of plist dictionaries (commands built as plist, check-in
//! messages, profiles) against the schema.

use super::registry::registry;
use super::rules::{alternatives_error, check_int_range, check_str_range, join, pick_alternative};
use super::types::{KeySchema, SchemaError, ValueType};

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
