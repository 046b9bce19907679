//! Bad input of every class gets a clear 4xx, never a 5xx, and changes nothing.

use crate::common::spawn_app;
use mamori_sim::{DeviceKind, SimOptions};
use serde_json::{json, Value};

fn plist_bytes(d: plist::Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &plist::Value::Dictionary(d)).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_device_messages() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let q = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;

    let garbage = dev
        .checkin_raw(b"<plist><dict><key>".to_vec(), None)
        .await
        .unwrap();
    assert_eq!(garbage.status, 400);
    let not_xml = dev.connect_raw_bytes(vec![0xff; 64], None).await.unwrap();
    assert_eq!(not_xml.status, 400);
    let mut no_status = plist::Dictionary::new();
    no_status.insert("UDID".into(), udid.clone().into());
    assert_eq!(dev.connect_raw(no_status).await.unwrap().status, 400);
    let mut bad_status = plist::Dictionary::new();
    bad_status.insert("UDID".into(), udid.clone().into());
    bad_status.insert("Status".into(), "Exploded".into());
    assert_eq!(dev.connect_raw(bad_status).await.unwrap().status, 400);
    let huge = vec![b'a'; 300 * 1024];
    assert_eq!(dev.checkin_raw(huge, None).await.unwrap().status, 413);
    let mut wrong_type = plist::Dictionary::new();
    wrong_type.insert("MessageType".into(), "TokenUpdate".into());
    wrong_type.insert("UDID".into(), udid.clone().into());
    wrong_type.insert("Topic".into(), "t".into());
    wrong_type.insert("Token".into(), "not data".into());
    wrong_type.insert("PushMagic".into(), "m".into());
    let r = dev
        .checkin_raw(plist_bytes(wrong_type), None)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("Token"));

    // Nothing changed: still enrolled, push credentials intact, command queued.
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(d["status"], "enrolled");
    assert_eq!(d["push_ready"], true);
    assert_eq!(app.command(&q[0].1).await["status"], "Queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_user_check_in_messages_are_answered_as_documented() {
    let app = spawn_app().await;
    let mut dev = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let udid = dev.udid().to_owned();
    let mut unknown = plist::Dictionary::new();
    unknown.insert("MessageType".into(), "NoSuchMessage".into());
    unknown.insert("UDID".into(), udid.clone().into());
    let r = dev.checkin_raw(plist_bytes(unknown), None).await.unwrap();
    assert_eq!(r.status, 400);

    let mut ua = plist::Dictionary::new();
    ua.insert("MessageType".into(), "UserAuthenticate".into());
    ua.insert("UDID".into(), udid.clone().into());
    ua.insert(
        "UserID".into(),
        "A1B2C3D4-0000-0000-0000-000000000001".into(),
    );
    ua.insert("UserShortName".into(), "taro".into());
    ua.insert("UserLongName".into(), "Taro".into());
    let r = dev.checkin_raw(plist_bytes(ua), None).await.unwrap();
    assert_eq!(r.status, 200);
    let v = plist::Value::from_reader(std::io::Cursor::new(&r.body)).unwrap();
    assert_eq!(
        v.as_dictionary().unwrap()["DigestChallenge"].as_string(),
        Some("")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_scep_requests() {
    let app = spawn_app().await;
    let post = |q: &'static str, body: Vec<u8>| {
        let http = app.http.clone();
        let url = app.device_url(&format!("/scep?{q}"));
        async move {
            http.post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post("operation=PKIOperation", b"garbage".to_vec()).await,
        400
    );
    assert_eq!(post("operation=PKIOperation", Vec::new()).await, 400);
    assert_eq!(post("operation=Explode", Vec::new()).await, 400);
    assert_eq!(
        post("operation=PKIOperation&message=!!!", Vec::new()).await,
        400
    );
    // A long query string (clients put the whole message there) is read, not
    // cut off at the request line: 16 KB of base64 garbage is a clear 400.
    let long = format!(
        "/scep?operation=PKIOperation&message={}",
        "QUFB".repeat(4 * 1024)
    );
    let r = app.http.get(app.device_url(&long)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Over the cap: answered 413 before the body is read, and the
    // connection closed; a client still writing the body may see its
    // write cut off before it reads the answer.
    match app
        .http
        .post(app.device_url("/scep?operation=PKIOperation"))
        .body(vec![0x30; 70 * 1024])
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request() && !e.is_timeout(), "{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_commands_are_refused_and_queue_nothing() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"devices": [udid], "command": {"RequestType": "SelfDestruct"}}),
            400,
            "SelfDestruct",
        ),
        (
            json!({"devices": [udid], "command": {"RequestType": "DeviceInformation", "Queries": "OSVersion"}}),
            400,
            "Queries",
        ),
        (
            json!({"devices": [udid], "command": {"RequestType": "DeviceLock", "Frobnicate": 1}}),
            400,
            "Frobnicate",
        ),
        (
            json!({"devices": [udid], "command": {"Queries": ["OSVersion"]}}),
            400,
            "RequestType",
        ),
        (
            json!({"devices": [], "command": {"RequestType": "ProfileList"}}),
            400,
            "devices",
        ),
        (
            json!({"devices": ["NOT-ENROLLED-DEVICE"], "command": {"RequestType": "ProfileList"}}),
            404,
            "NOT-ENROLLED-DEVICE",
        ),
        (
            json!({"devices": [udid, "bad udid!"], "command": {"RequestType": "ProfileList"}}),
            400,
            "bad udid",
        ),
        (
            json!({"devices": [udid, udid], "command": {"RequestType": "ProfileList"}}),
            400,
            "twice",
        ),
        (
            json!({"devices": [udid], "command": {"RequestType": "ProfileList"}, "extra": 1}),
            400,
            "extra",
        ),
    ];
    for (body, status, needle) in cases {
        let r = app.post("/api/v1/commands?push=false", body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        let err: Value = r.json().await.unwrap();
        assert!(
            err["error"].as_str().unwrap().contains(needle),
            "{err} lacks {needle}"
        );
    }
    let raw = |ct: &'static str, body: &'static str| {
        let http = app.http.clone();
        let url = app.admin_url("/api/v1/commands");
        let token = app.token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(raw("application/json", "{not json").await, 400);
    assert_eq!(raw("text/plain", "{}").await, 415);
    let r = app
        .http
        .post(app.admin_url("/api/v1/commands"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await;
    // The server answers 413 without reading the rest; the client may see
    // the answer or, still writing, the closed connection. Either way the
    // body was refused (accepted, it would have given 400).
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
    }
    // Nothing was queued by any of it.
    assert!(dev.connect_idle().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_profile_requests_and_unknown_resources() {
    let app = spawn_app().await;
    for body in [
        json!({"max_uses": 0}),
        json!({"max_uses": 100001}),
        json!({"ttl_hours": 0}),
        json!({"ttl_hours": 100000}),
        json!({"signed": "yes"}),
        json!({"colour": "blue"}),
    ] {
        let r = app.post("/api/v1/enrollment-profiles", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(app.get("/api/v1/devices/UNKNOWN-UDID").await.0, 404);
    assert_eq!(app.get("/api/v1/devices/bad%20udid").await.0, 400);
    assert_eq!(
        app.get("/api/v1/commands/00000000-0000-0000-0000-000000000000")
            .await
            .0,
        404
    );
    assert_eq!(app.get("/api/v1/nothing-here").await.0, 404);
    let (status, _) = app.get("/api/v1/devices?limit=abc").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_bodies_that_are_not_property_lists_are_refused_by_type() {
    let app = spawn_app().await;
    let dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mut idle = plist::Dictionary::new();
    idle.insert("UDID".into(), dev.udid().to_owned().into());
    idle.insert("Status".into(), "Idle".into());
    let body = plist_bytes(idle);
    let sig = dev
        .mdm_signature(&body, mamori_sim::DigestAlg::Sha256)
        .unwrap();
    let send = |ct: Option<&'static str>| {
        let req = app
            .http
            .put(app.device_url("/mdm/connect"))
            .header("Mdm-Signature", sig.clone())
            .body(body.clone());
        let req = match ct {
            Some(ct) => req.header("content-type", ct),
            None => req,
        };
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(Some("application/json")).await, 415);
    assert_eq!(send(Some("application/x-www-form-urlencoded")).await, 415);
    for ok in [
        None,
        Some("application/x-apple-aspen-mdm"),
        Some("application/xml"),
    ] {
        assert_eq!(send(ok).await, 200, "{ok:?}");
    }
}

/// Mutated and random device messages: every one gets a 4xx, none a 5xx, and
/// the device still works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_device_messages_never_get_a_server_error() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mut idle = plist::Dictionary::new();
    idle.insert("UDID".into(), dev.udid().to_owned().into());
    idle.insert("Status".into(), "Idle".into());
    let valid = plist_bytes(idle);
    let sig = dev
        .mdm_signature(&valid, mamori_sim::DigestAlg::Sha256)
        .unwrap();
    let random = mamori_crypto::random_bytes(4 * 300);
    for i in 0..300 {
        let r = &random[i * 4..i * 4 + 4];
        let mut body = valid.clone();
        let pos = usize::from(u16::from_le_bytes([r[0], r[1]])) % body.len();
        body[pos] ^= r[2] | 1;
        if r[3].is_multiple_of(3) {
            body.truncate(pos.max(1));
        }
        let path = [
            "/mdm/connect",
            "/mdm/checkin",
            "/scep?operation=PKIOperation",
        ][i % 3];
        let mut req = app.http.put(app.device_url(path)).body(body.clone());
        if i % 2 == 0 {
            req = req.header("Mdm-Signature", sig.clone());
        }
        if path.starts_with("/scep") {
            req = app.http.post(app.device_url(path)).body(body);
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    assert!(dev.connect_idle().await.unwrap().is_none());
}
