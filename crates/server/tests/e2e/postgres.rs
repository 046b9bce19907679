//! The server on PostgreSQL (`MAMORI_DATABASE_URL`): devices enroll and
//! answer commands, administrators work, personal data stays sealed, the
//! audit chain verifies, and everything is still there after a restart.
//! The database lives in the test binary's throwaway cluster.

use crate::common::{client_trusting, role_token, spawn_on_postgres, test_config_on};
use mamori::app;
use mamori_sim::{DeviceKind, SimOptions};
use mamori_testkit::pg;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgres_enrolls_runs_commands_and_keeps_everything_across_a_restart() {
    let (app, mut config) = spawn_on_postgres().await;
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mut mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let (phone_id, mac_id) = (phone.udid().to_owned(), mac.udid().to_owned());
    let queued = app
        .enqueue(
            &[&phone_id, &mac_id],
            json!({"RequestType": "DeviceInformation", "Queries": ["DeviceName", "OSVersion"]}),
        )
        .await;
    assert_eq!(queued.len(), 2);
    for dev in [&mut phone, &mut mac] {
        let cmd = dev
            .connect_idle()
            .await
            .unwrap()
            .expect("the queued command");
        let answer = dev.builtin_response(&cmd);
        assert!(dev.respond(&cmd, answer).await.unwrap().is_none());
    }
    for (_, uuid) in &queued {
        assert_eq!(app.command(uuid).await["status"], "Acknowledged");
    }
    // A person, whose name and address are sealed in the database.
    let (st, person) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/people",
            Some(json!({"name": "Hanako Yamada", "user_id": "hyamada",
                        "email": "hanako.yamada@example.jp", "department": "Sales"})),
        )
        .await;
    assert_eq!(st, 201, "{person}");
    let person_id = person["id"].as_str().unwrap().to_owned();
    let (st, _) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/devices/{phone_id}/person"),
            Some(json!({"person_id": person["id"]})),
        )
        .await;
    assert_eq!(st, 204);
    let mamori::config::Database::Postgres(url) = &config.database else {
        panic!("the server is not on PostgreSQL");
    };
    let dump = pg::shared().dump(pg::Cluster::database_of(url));
    let dump = String::from_utf8_lossy(&dump);
    assert!(dump.contains(&phone_id), "the dump is of this installation");
    for secret in ["Hanako", "Yamada", "hanako.yamada@example.jp", "hyamada"] {
        assert!(!dump.contains(secret), "{secret} is stored in the clear");
    }
    let before = app.running.services.verify_audit().await.unwrap();
    assert!(before.fault.is_none(), "{:?}", before.fault);
    assert!(before.records > 5, "{before:?}");

    // Stopped and started again on the same database, data directory and
    // addresses.
    let _dir = app.dir;
    config.device_addr = app.running.device_addr;
    config.public_url = Some(app.running.public_url.clone());
    app.running.stop(Duration::from_secs(5)).await;
    let running = app::start(&config).await.unwrap();
    let token = role_token(&running.services, "after-restart", "owner").await;
    let http = client_trusting(&std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap());
    let devices: serde_json::Value = http
        .get(format!("https://{}/api/v1/devices", running.admin_addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut listed: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["udid"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut expected = vec![phone_id.as_str(), mac_id.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    // The person is read back (unsealed) by a security officer.
    let officer = role_token(&running.services, "officer", "security_officer").await;
    let person: serde_json::Value = http
        .get(format!(
            "https://{}/api/v1/people/{person_id}/personal-data",
            running.admin_addr
        ))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(person["email"], "hanako.yamada@example.jp", "{person}");
    // The device goes on checking in with the identity it enrolled with.
    assert!(phone.connect_idle().await.unwrap().is_none());
    let after = running.services.verify_audit().await.unwrap();
    assert!(after.fault.is_none(), "{:?}", after.fault);
    assert!(after.records > before.records);
    running.stop(Duration::from_secs(5)).await;
}

/// Two servers on one PostgreSQL database are refused for now, even with
/// the same keys (a copy of the data directory): the second says another
/// server runs there, before it listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_postgres_database_is_refused() {
    let (first, first_config) = spawn_on_postgres().await;
    let other = tempfile::tempdir().unwrap();
    let mut config = test_config_on(other.path(), false);
    config.database = first_config.database.clone();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    for f in std::fs::read_dir(&first_config.data_dir).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() && f.file_name() != app::LOCK_FILE {
            std::fs::copy(f.path(), config.data_dir.join(f.file_name())).unwrap();
        }
    }
    let err = match app::start(&config).await {
        Ok(_) => panic!("a second server started on the same database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("another mamori server"), "{err}");
    assert!(
        !err.contains("mamori@"),
        "no credentials in the message: {err}"
    );
    // Once the first stops, the database is free again.
    first.running.stop(Duration::from_secs(5)).await;
    let second = app::start(&config).await.unwrap();
    second.stop(Duration::from_secs(5)).await;
}
