//! The command queue: results, NotNow, errors, CheckOut.

use crate::common::spawn_app;
use mamori_sim::{CommandStatus, DeviceKind, ErrorChainItem, Response, SimOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_now_is_redelivered_on_the_next_idle() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let first = app
        .enqueue(&[&udid], json!({"RequestType": "InstalledApplicationList"}))
        .await;
    let second = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;

    // NotNow to the first: the server moves on to the second, not the first.
    let cmd = dev.connect_idle().await.unwrap().expect("a command");
    assert_eq!(cmd.command_uuid, first[0].1);
    let next = dev
        .respond(&cmd, Response::NotNow)
        .await
        .unwrap()
        .expect("next");
    assert_eq!(next.command_uuid, second[0].1);
    assert_eq!(app.command(&first[0].1).await["status"], "NotNow");
    let answer = dev.builtin_response(&next);
    let none = dev.respond(&next, answer).await.unwrap();
    assert!(none.is_none(), "NotNow waits for the next Idle");

    // The next Idle gets it again.
    let again = dev.connect_idle().await.unwrap().expect("redelivered");
    assert_eq!(again.command_uuid, first[0].1);
    let resp = dev.builtin_response(&again);
    assert!(dev.respond(&again, resp).await.unwrap().is_none());
    let done = app.command(&first[0].1).await;
    assert_eq!(done["status"], "Acknowledged");
    assert!(done["result"]["InstalledApplicationList"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_with_error_chain_is_stored() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let q = app
        .enqueue(&[&udid], json!({"RequestType": "RestartDevice"}))
        .await;
    let cmd = dev.connect_idle().await.unwrap().unwrap();
    let chain = vec![ErrorChainItem {
        error_code: 12081,
        error_domain: "MCMDMErrorDomain".into(),
        localized_description: "Not supported".into(),
        us_english_description: Some("Not supported".into()),
    }];
    dev.respond(&cmd, Response::Error(chain)).await.unwrap();
    let c = app.command(&q[0].1).await;
    assert_eq!(c["status"], "Error");
    assert_eq!(c["error_chain"][0]["ErrorCode"], 12081);
    assert_eq!(c["error_chain"][0]["ErrorDomain"], "MCMDMErrorDomain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_format_error_is_final() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let q = app
        .enqueue(
            &[&udid],
            json!({"RequestType": "DeviceLock", "Message": "Lost"}),
        )
        .await;
    let cmd = dev.connect_idle().await.unwrap().unwrap();
    assert!(dev
        .respond(&cmd, Response::CommandFormatError)
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.command(&q[0].1).await["status"], "CommandFormatError");
    assert!(
        dev.connect_idle().await.unwrap().is_none(),
        "not redelivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_to_many_devices_gets_one_uuid_each() {
    let app = spawn_app().await;
    let mut devs = Vec::new();
    for _ in 0..3 {
        devs.push(
            app.enrolled(DeviceKind::IPhone, SimOptions::default())
                .await,
        );
    }
    let udids: Vec<String> = devs.iter().map(|d| d.udid().to_owned()).collect();
    let refs: Vec<&str> = udids.iter().map(String::as_str).collect();
    let q = app
        .enqueue(
            &refs,
            json!({"RequestType": "DeviceInformation", "Queries": ["OSVersion"]}),
        )
        .await;
    assert_eq!(q.len(), 3);
    let mut uuids: Vec<&String> = q.iter().map(|(_, u)| u).collect();
    uuids.dedup();
    assert_eq!(uuids.len(), 3);
    for d in &mut devs {
        let done = d.run_queue().await.unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].status, CommandStatus::Acknowledged);
    }
    for (udid, uuid) in &q {
        let c = app.command(uuid).await;
        assert_eq!(c["udid"], udid.as_str());
        assert_eq!(c["status"], "Acknowledged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_out_ends_the_enrollment_and_revokes_the_identity() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let pending = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;
    dev.check_out().await.unwrap();
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(d["status"], "checked_out");
    assert_eq!(d["push_ready"], false);
    // Its queue is gone and its certificate no longer opens the door.
    let (status, _) = app.get(&format!("/api/v1/commands/{}", pending[0].1)).await;
    assert_eq!(status, 404);
    let err = dev.connect_idle().await.expect_err("revoked identity");
    assert_eq!(err.status(), Some(401));
    let r = app
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udid], "command": {"RequestType": "ProfileList"}}),
        )
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_profile_then_profile_list_shows_it() {
    use base64::Engine;
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let mut inner = plist::Dictionary::new();
    inner.insert("PayloadType".into(), "Configuration".into());
    inner.insert("PayloadVersion".into(), 1.into());
    inner.insert("PayloadIdentifier".into(), "com.example.wifi".into());
    inner.insert(
        "PayloadUUID".into(),
        "9A1F5F1E-5C3B-4B8E-9E55-0C2B1E7A5D11".into(),
    );
    inner.insert("PayloadDisplayName".into(), "Office Wi-Fi".into());
    inner.insert("PayloadContent".into(), plist::Value::Array(vec![]));
    let mut xml = Vec::new();
    plist::to_writer_xml(&mut xml, &plist::Value::Dictionary(inner)).unwrap();
    let payload = base64::engine::general_purpose::STANDARD.encode(&xml);
    let install = app
        .enqueue(
            &[&udid],
            json!({"RequestType": "InstallProfile", "Payload": payload}),
        )
        .await;
    let list = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;
    dev.run_queue().await.unwrap();
    assert_eq!(app.command(&install[0].1).await["status"], "Acknowledged");
    let listed = app.command(&list[0].1).await;
    let ids: Vec<&str> = listed["result"]["ProfileList"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["PayloadIdentifier"].as_str())
        .collect();
    assert!(ids.contains(&"com.example.wifi"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_token_is_escrowed_sealed_and_only_returned_to_its_device() {
    let app = spawn_app().await;
    let mut mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let mut other = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let udid = mac.udid().to_owned();
    let secret = b"bootstrap-token-0123456789-distinctive".to_vec();
    let msg = |kind: &str, token: Option<Vec<u8>>| {
        let mut d = plist::Dictionary::new();
        d.insert("MessageType".into(), kind.into());
        d.insert("UDID".into(), udid.clone().into());
        if let Some(t) = token {
            d.insert("BootstrapToken".into(), plist::Value::Data(t));
        }
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, &plist::Value::Dictionary(d)).unwrap();
        out
    };
    let get = msg("GetBootstrapToken", None);
    let r = mac.checkin_raw(get.clone(), None).await.unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0), "nothing escrowed yet");
    let r = mac
        .checkin_raw(msg("SetBootstrapToken", Some(secret.clone())), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = mac.checkin_raw(get.clone(), None).await.unwrap();
    assert_eq!(r.status, 200);
    let v = plist::Value::from_reader(std::io::Cursor::new(&r.body)).unwrap();
    assert_eq!(
        v.as_dictionary().unwrap()["BootstrapToken"].as_data(),
        Some(secret.as_slice())
    );
    // Another device asking in this device's name is refused.
    other.claim_udid(Some(udid.clone()));
    let r = other.checkin_raw(get, None).await.unwrap();
    assert_eq!(r.status, 403);
    // At rest it is sealed: the raw database does not contain it.
    for f in ["mamori.db", "mamori.db-wal"] {
        let raw = std::fs::read(app.dir.path().join("data").join(f)).unwrap_or_default();
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_slice()),
            "{f}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_command_is_sealed_at_rest_and_arrives_intact() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let phone = "+81-3-5550-8642";
    let message = "Found? Call Quillfeather at";
    app.enqueue(
        &[&udid],
        json!({"RequestType": "DeviceLock", "Message": message, "PhoneNumber": phone}),
    )
    .await;
    for (name, bytes) in crate::people::db_files(&app) {
        for needle in [phone, message] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{name} holds {needle:?}"
            );
        }
    }
    let cmd = dev.connect_idle().await.unwrap().unwrap();
    assert_eq!(cmd.request_type, "DeviceLock");
    let got = cmd.command.get("PhoneNumber").and_then(|v| v.as_string());
    assert_eq!(got, Some(phone));
}
