//! The form generated from Apple's schema, rendered and read back.

#![allow(clippy::unwrap_used)]
use super::*;
use axum::http::HeaderMap;
use mamori_protocol::schema::profile_schema;

fn ctx() -> PageCtx {
    super::super::signin::page_ctx(&Default::default(), &HeaderMap::new(), "/", None)
}

#[test]
fn every_policy_kind_has_a_form_and_reads_back_what_it_shows() {
    let ctx = ctx();
    for kind in mamori_domain::PolicyKind::ALL {
        let schema = profile_schema(kind.payload_type()).unwrap();
        let none = BTreeMap::new();
        let shown = Shown {
            settings: &Json::Object(Map::new()),
            secrets: &[],
            errors: &none,
        };
        let html = fields(&ctx, &schema.keys, &shown).into_string();
        assert!(html.contains("name=\"s."), "{kind:?}");
        // The largest form (restrictions) stays well inside the
        // console's page budget (150 KB with the stylesheet).
        // The largest form (restrictions) stays inside the console's
        // page budget (150 KB with the page around it).
        assert!(html.len() < 135_000, "{kind:?}: {} bytes", html.len());
        assert!(!html.contains("name=\"s.PayloadType\""));
        // An empty form is an empty policy.
        let read = read(&ctx, &schema.keys, &HashMap::new(), &[]);
        assert!(read.errors.is_empty());
        assert_eq!(read.settings, serde_json::json!({}));
    }
}

#[test]
fn values_are_typed_by_the_schema_and_bad_ones_are_named() {
    let ctx = ctx();
    let schema = profile_schema("com.apple.mobiledevice.passwordpolicy").unwrap();
    let form: HashMap<&str, &str> = [
        ("s.minLength", "8"),
        ("s.allowSimple", "false"),
        ("s.maxPINAgeInDays", "soon"),
    ]
    .into_iter()
    .collect();
    let r = read(&ctx, &schema.keys, &form, &[]);
    assert_eq!(r.settings["minLength"], 8);
    assert_eq!(r.settings["allowSimple"], false);
    assert!(r.errors.contains_key("s.maxPINAgeInDays"), "{:?}", r.errors);

    let wifi = profile_schema("com.apple.wifi.managed").unwrap();
    let form: HashMap<&str, &str> = [
        ("s.SSID_STR", "Office"),
        ("s.EAPClientConfiguration.UserName", "kenji"),
    ]
    .into_iter()
    .collect();
    let r = read(&ctx, &wifi.keys, &form, &[]);
    assert_eq!(r.settings["EAPClientConfiguration"]["UserName"], "kenji");
    // A kept secret keeps its dictionary; a cleared one is null.
    let kept = vec!["/Password".to_owned()];
    let form: HashMap<&str, &str> = [("s.SSID_STR", "Office"), ("clear.s.Password", "1")]
        .into_iter()
        .collect();
    let r = read(&ctx, &wifi.keys, &form, &kept);
    assert_eq!(r.settings["Password"], Json::Null);
    assert_eq!(with_kept_secrets(&r.settings, &kept).get("Password"), None);
    let r = read(&ctx, &wifi.keys, &[("s.SSID_STR", "Office")].into(), &kept);
    assert_eq!(with_kept_secrets(&r.settings, &kept)["Password"], "kept");

    // A dictionary holding only a secret: kept with it, gone when the
    // secret is cleared.
    let vpn = profile_schema("com.apple.vpn.managed").unwrap();
    let kept = vec!["/IPSec/SharedSecret".to_owned()];
    let r = read(&ctx, &vpn.keys, &HashMap::new(), &kept);
    assert_eq!(r.settings["IPSec"], serde_json::json!({}));
    let clear: HashMap<&str, &str> = [("clear.s.IPSec.SharedSecret", "1")].into();
    let r = read(&ctx, &vpn.keys, &clear, &kept);
    assert_eq!(r.settings.get("IPSec"), None);
}

#[test]
fn what_a_form_shows_reads_back_unchanged() {
    let ctx = ctx();
    let vpn = profile_schema("com.apple.vpn.managed").unwrap();
    let settings = serde_json::json!({
        "UserDefinedName": "Office",
        "VPNType": "IKEv2",
        "IKEv2": {"RemoteAddress": "vpn.example.jp", "LocalIdentifier": "x", "RemoteIdentifier": "y"},
    });
    let none = BTreeMap::new();
    let shown = Shown {
        settings: &settings,
        secrets: &[],
        errors: &none,
    };
    let html = fields(&ctx, &vpn.keys, &shown).into_string();
    // Every field's value as the browser would post it back.
    let mut pairs = Vec::new();
    for part in html.split("name=\"s.").skip(1) {
        let name = format!("s.{}", part.split('"').next().unwrap());
        let head = part.split('>').next().unwrap();
        let v = if let Some(v) = head.split("value=\"").nth(1) {
            v.split('"').next().unwrap().to_owned()
        } else if let Some(o) = part
            .split("</select>")
            .next()
            .unwrap()
            .split("<option value=\"")
            .find(|o| o.contains("selected"))
        {
            o.split('"').next().unwrap().to_owned()
        } else {
            String::new()
        };
        pairs.push((name, v));
    }
    let form: HashMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = read(&ctx, &vpn.keys, &form, &[]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.settings, settings);
}

#[test]
fn a_secret_of_any_type_gets_the_secret_field() {
    let vpn = profile_schema("com.apple.vpn.managed").unwrap();
    let ipsec = vpn.keys.iter().find(|k| k.name == "IPSec").unwrap();
    let shared = ipsec
        .subkeys
        .iter()
        .find(|k| k.name == "SharedSecret")
        .unwrap();
    assert_eq!(shared.value_type, ValueType::Data);
    assert_eq!(widget(shared), Widget::Secret);
}

#[test]
fn a_schema_error_names_its_field() {
    let e = SchemaError::NotAllowed {
        path: "com.apple.wifi.managed.EncryptionType".into(),
        value: "x".into(),
        allowed: "WPA".into(),
    };
    assert_eq!(
        error_field("com.apple.wifi.managed", &e).as_deref(),
        Some("s.EncryptionType")
    );
    let e = SchemaError::WrongType {
        path: "com.apple.vpn.managed.IKEv2.RemoteAddress[0]".into(),
        expected: "string",
    };
    assert_eq!(
        error_field("com.apple.vpn.managed", &e).as_deref(),
        Some("s.IKEv2.RemoteAddress")
    );
}
