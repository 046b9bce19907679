//! Device actions with their Apple commands: lost mode round trip with a
//! location result, a Mac locked with a PIN shown once, the passcode
//! cleared with the UnlockToken only Mamori holds, a restart — each with
//! its progress and result visible per device.

use crate::common::{role_token, spawn_app, TestApp};
use mamori_sim::{DeviceKind, SimOptions};
use serde_json::{json, Value};

async fn queue(app: &TestApp, udid: &str, command: Value) -> Value {
    let r = app
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udid], "command": command}),
        )
        .await;
    let st = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(st, 200, "{body}");
    body["commands"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_mode_round_trip_reports_where_the_device_is() {
    let app = spawn_app().await;
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = phone.udid().to_owned();
    // Locating a device that is not lost is refused by the device.
    let early = queue(&app, &udid, json!({"RequestType": "DeviceLocation"})).await;
    phone.run_queue().await.unwrap();
    let st = app.command(early["command_uuid"].as_str().unwrap()).await;
    assert_eq!(st["status"], "Error", "{st}");

    let enable = queue(
        &app,
        &udid,
        json!({"RequestType": "EnableLostMode", "Message": "This phone is lost", "PhoneNumber": "+81-3-0000-0000"}),
    )
    .await;
    let locate = queue(&app, &udid, json!({"RequestType": "DeviceLocation"})).await;
    let sound = queue(&app, &udid, json!({"RequestType": "PlayLostModeSound"})).await;
    let handled = phone.run_queue().await.unwrap();
    assert_eq!(handled.len(), 3);
    assert!(phone.state().lost_mode);
    assert_eq!(
        phone.state().lost_message.as_deref(),
        Some("This phone is lost")
    );
    assert_eq!(phone.state().lost_sounds, 1);
    let loc = app.command(locate["command_uuid"].as_str().unwrap()).await;
    assert_eq!(loc["status"], "Acknowledged", "{loc}");
    // The location is personal data: withheld from the owner, shown to a
    // security officer (device_privacy.rs).
    assert!(loc["result"]["Latitude"].is_null(), "{loc}");
    let officer = role_token(&app.running.services, "officer", "security_officer").await;
    let loc: Value = app
        .http
        .get(app.admin_url(&format!(
            "/api/v1/commands/{}",
            locate["command_uuid"].as_str().unwrap()
        )))
        .bearer_auth(officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(loc["result"]["Latitude"], 35.6812);
    assert_eq!(loc["result"]["Longitude"], 139.7671);
    let disable = queue(&app, &udid, json!({"RequestType": "DisableLostMode"})).await;
    phone.run_queue().await.unwrap();
    assert!(!phone.state().lost_mode);

    // The device's commands, newest first, each with its state.
    let (st, list) = app.get(&format!("/api/v1/devices/{udid}/commands")).await;
    assert_eq!(st, 200);
    let cmds = list["commands"].as_array().unwrap();
    let of = |c: &Value| {
        cmds.iter()
            .find(|x| x["command_uuid"] == c["command_uuid"])
            .unwrap()
            .clone()
    };
    for (c, rt) in [
        (&enable, "EnableLostMode"),
        (&locate, "DeviceLocation"),
        (&sound, "PlayLostModeSound"),
        (&disable, "DisableLostMode"),
    ] {
        let x = of(c);
        assert_eq!(x["request_type"], rt);
        assert_eq!(x["state"], "Acknowledged");
        assert!(x["result"].is_null(), "results are read one at a time");
    }
    // The location is personal data: sealed at rest.
    for (name, bytes) in crate::people::db_files(&app) {
        assert!(
            !bytes.windows(7).any(|w| w == b"35.6812"),
            "{name} holds the location"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mac_is_locked_with_a_pin_shown_once_and_a_passcode_cleared_with_the_unlock_token() {
    let app = spawn_app().await;
    let mut mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let mac_udid = mac.udid().to_owned();
    let lock = queue(
        &app,
        &mac_udid,
        json!({"RequestType": "DeviceLock", "Message": "Locked by IT"}),
    )
    .await;
    let pin = lock["pin"].as_str().unwrap().to_owned();
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    mac.run_queue().await.unwrap();
    assert!(mac.state().locked);
    assert_eq!(mac.state().lock_pin.as_deref(), Some(pin.as_str()));
    // Shown once: not in the command's status, nor in the database.
    let st = app.command(lock["command_uuid"].as_str().unwrap()).await;
    assert!(!st.to_string().contains(&pin), "{st}");
    // (Six digits could occur by chance in binary data; the phrase cannot.)
    let phrase = format!("<string>{pin}</string>");
    for (name, bytes) in crate::people::db_files(&app) {
        assert!(
            !bytes.windows(phrase.len()).any(|w| w == phrase.as_bytes()),
            "{name} holds the PIN"
        );
    }

    // ClearPasscode: the UnlockToken is Mamori's to add.
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = phone.udid().to_owned();
    let e = app
        .running
        .services
        .enqueue_command(
            &crate::common::authorized(),
            &mamori_core::access::ClientContext::default(),
            std::slice::from_ref(&udid),
            &json!({"RequestType": "ClearPasscode", "UnlockToken": "AAAA"}),
            false,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("filled in by Mamori"), "{e}");
    // The route needs a step-up; the owner token cannot: done in-process
    // as an approved administrator would.
    let q = app
        .running
        .services
        .enqueue_command(
            &crate::common::authorized(),
            &mamori_core::access::ClientContext::default(),
            std::slice::from_ref(&udid),
            &json!({"RequestType": "ClearPasscode"}),
            false,
        )
        .await
        .unwrap();
    phone.run_queue().await.unwrap();
    assert_eq!(phone.state().passcode_clears, 1);
    let mamori_core::device::commands::Enqueued::Queued(q) = q else {
        panic!("the command line queues directly");
    };
    let st = app.command(q[0].command_uuid.as_str()).await;
    assert_eq!(st["status"], "Acknowledged");
    // A Mac sent no UnlockToken: refused before anything is queued.
    let e = app
        .running
        .services
        .enqueue_command(
            &crate::common::authorized(),
            &mamori_core::access::ClientContext::default(),
            std::slice::from_ref(&mac_udid),
            &json!({"RequestType": "ClearPasscode"}),
            false,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UnlockToken"), "{e}");

    // Restart.
    let restart = queue(&app, &udid, json!({"RequestType": "RestartDevice"})).await;
    phone.run_queue().await.unwrap();
    assert_eq!(phone.state().restarts, 1);
    let st = app.command(restart["command_uuid"].as_str().unwrap()).await;
    assert_eq!(st["status"], "Acknowledged");
}
