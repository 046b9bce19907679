//! Encoding MDM commands for delivery in a `/mdm/connect` response.

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
    fn encodes_command_plist() {
        let cmd = crate::schema::validate_command(&json!({
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
