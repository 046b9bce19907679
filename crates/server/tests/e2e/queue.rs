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
