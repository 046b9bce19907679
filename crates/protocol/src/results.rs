//! Command results the server reads, parsed once here: the inventory
//! answers (`DeviceInformation`, `SecurityInfo`, `InstalledApplicationList`)
//! and `ProfileList`. A result arrives as JSON (the device's plist,
//! converted); the service layer gets types, or [`Malformed`] when a
//! device answered without what the command asks for (then the last good
//! answer is kept).

use serde_json::Value;

/// An answer that lacks what its command asks for; the text says what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// What `DeviceInformation` answers about the device (the fields the
/// server indexes; the whole answer is kept as well).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `Model`.
    pub model: Option<String>,
    /// `ModelName`.
    pub model_name: Option<String>,
    /// `ProductName`.
    pub product_name: Option<String>,
    /// `DeviceName` (the user's name for it: personal data).
    pub device_name: Option<String>,
    /// `OSVersion`.
    pub os_version: Option<String>,
    /// `BuildVersion`.
    pub build_version: Option<String>,
}

/// One application of `InstalledApplicationList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledApplication {
    /// `Identifier` (never empty).
    pub identifier: String,
    /// `Name`.
    pub name: Option<String>,
    /// `ShortVersion`, else `Version`.
    pub version: Option<String>,
}

/// A result the server reads.
#[derive(Debug, Clone, PartialEq)]
pub enum InventoryResult {
    /// `DeviceInformation`: the indexed fields and the whole
    /// `QueryResponses` dictionary.
    DeviceInformation(DeviceInformation, Value),
    /// `SecurityInfo`: the whole `SecurityInfo` dictionary.
    SecurityInfo(Value),
    /// `InstalledApplicationList`.
    Applications(Vec<InstalledApplication>),
    /// `ProfileList`: the `PayloadIdentifier` of each profile that has a
    /// `PayloadUUID`.
    Profiles(Vec<String>),
}

/// Longest text kept from an inventory answer; a longer value counts as
/// absent. Identifiers and serial numbers are stored in indexes, where
/// PostgreSQL refuses an entry over about 2.7 KB (the outside attack's
/// finding: one device's 4 KB app identifier failed its inventory write),
/// and no real one comes near.
pub const MAX_TEXT: usize = 512;

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| s.len() <= MAX_TEXT)
        .map(str::to_owned)
}

/// Parses the result of a `request_type` command; `None` for a type the
/// server does not read.
pub fn parse(request_type: &str, result: &Value) -> Option<Result<InventoryResult, Malformed>> {
    Some(match request_type {
        "DeviceInformation" => device_information(result),
        "SecurityInfo" => match result.get("SecurityInfo") {
            Some(v) if v.is_object() => Ok(InventoryResult::SecurityInfo(v.clone())),
            _ => Err(Malformed("SecurityInfo without its dictionary")),
        },
        "InstalledApplicationList" => applications(result),
        "ProfileList" => profiles(result),
        _ => return None,
    })
}

fn device_information(result: &Value) -> Result<InventoryResult, Malformed> {
    let raw = result
        .get("QueryResponses")
        .filter(|v| v.is_object())
        .ok_or(Malformed("DeviceInformation without its QueryResponses"))?;
    let info = DeviceInformation {
        serial_number: text(raw, "SerialNumber"),
        model: text(raw, "Model"),
        model_name: text(raw, "ModelName"),
        product_name: text(raw, "ProductName"),
        device_name: text(raw, "DeviceName"),
        os_version: text(raw, "OSVersion"),
        build_version: text(raw, "BuildVersion"),
    };
    Ok(InventoryResult::DeviceInformation(info, raw.clone()))
}

fn applications(result: &Value) -> Result<InventoryResult, Malformed> {
    let list = result
        .get("InstalledApplicationList")
        .and_then(Value::as_array)
        .ok_or(Malformed("InstalledApplicationList without its list"))?;
    list.iter()
        .map(|a| {
            Some(InstalledApplication {
                identifier: text(a, "Identifier").filter(|i| !i.is_empty())?,
                name: text(a, "Name"),
                version: text(a, "ShortVersion").or_else(|| text(a, "Version")),
            })
        })
        .collect::<Option<Vec<_>>>()
        .map(InventoryResult::Applications)
        .ok_or(Malformed(
            "an InstalledApplicationList item without an Identifier of at most 512 bytes",
        ))
}

fn profiles(result: &Value) -> Result<InventoryResult, Malformed> {
    let list = result
        .get("ProfileList")
        .and_then(Value::as_array)
        .ok_or(Malformed("ProfileList without its list"))?;
    // Entries count when they carry both an identifier and a UUID.
    Ok(InventoryResult::Profiles(
        list.iter()
            .filter(|p| p.get("PayloadUUID").and_then(Value::as_str).is_some())
            .filter_map(|p| text(p, "PayloadIdentifier"))
            .collect(),
    ))
}

/// `IsSupervised` of a stored `DeviceInformation` answer.
pub fn is_supervised(query_responses: &Value) -> Option<bool> {
    query_responses.get("IsSupervised").and_then(Value::as_bool)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inventory_answers_become_types_and_gaps_are_named() {
        let info = parse(
            "DeviceInformation",
            &json!({"QueryResponses": {"SerialNumber": "C02X", "OSVersion": "17.5", "IsSupervised": true}}),
        )
        .unwrap()
        .unwrap();
        let InventoryResult::DeviceInformation(fields, raw) = info else {
            panic!("{info:?}");
        };
        assert_eq!(fields.serial_number.as_deref(), Some("C02X"));
        assert_eq!(fields.os_version.as_deref(), Some("17.5"));
        assert_eq!(is_supervised(&raw), Some(true));
        assert_eq!(
            parse("DeviceInformation", &json!({})).unwrap(),
            Err(Malformed("DeviceInformation without its QueryResponses"))
        );
        let apps = parse(
            "InstalledApplicationList",
            &json!({"InstalledApplicationList": [{"Identifier": "a.b", "Version": "2"}]}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            apps,
            InventoryResult::Applications(vec![InstalledApplication {
                identifier: "a.b".into(),
                name: None,
                version: Some("2".into()),
            }])
        );
        assert!(parse(
            "InstalledApplicationList",
            &json!({"InstalledApplicationList": [{"Name": "no id"}]})
        )
        .unwrap()
        .is_err());
        let profiles = parse(
            "ProfileList",
            &json!({"ProfileList": [
                {"PayloadIdentifier": "p.one", "PayloadUUID": "U1"},
                {"PayloadIdentifier": "p.two"}
            ]}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(profiles, InventoryResult::Profiles(vec!["p.one".into()]));
        assert!(parse("DeviceLock", &json!({})).is_none());
    }
}
