//! Checks shared by the JSON and plist validators: key paths, `rangelist`
//! and `range` checks, and picking one of several array item shapes.

use super::types::{KeySchema, RangeValue, SchemaError, ValueType};

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn allowed_list(range: &[RangeValue]) -> String {
    range
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn check_str_range(s: &str, schema: &KeySchema, path: &str) -> Result<(), SchemaError> {
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
pub(super) fn check_min_max(v: f64, schema: &KeySchema, path: &str) -> Result<(), SchemaError> {
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

pub(super) fn check_int_range(i: i128, schema: &KeySchema, path: &str) -> Result<(), SchemaError> {
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
pub(super) fn pick_alternative(
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

pub(super) fn alternatives_error(path: &str, alternatives: &[KeySchema]) -> SchemaError {
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
