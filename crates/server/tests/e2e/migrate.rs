//! `mamori migrate`: an installation on SQLite (enrolled devices, a
//! command answered, a person on a device, administrators, the audit log)
//! moved to PostgreSQL with the server stopped, then served from there
//! with the same data directory: devices go on checking in with their
//! identities, the queue numbers on, personal data opens, the audit chain
//! verifies. A move while the server runs, or into a database that holds
//! rows, is refused with nothing written, and the database's password is
//! never shown.

use crate::common::{client_trusting, role_token, test_config_on, TestApp};
use mamori::{app, migrate};
use mamori_sim::{DeviceKind, SimOptions};
use mamori_testkit::pg;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mamori");

/// A password in the destination's URL (the test cluster trusts its
/// socket, so any will do): it must never be printed.
const PASSWORD: &str = "Walrus-Pepper-4471";

/// `url` with [`PASSWORD`] for its user.
fn with_password(url: &str) -> String {
    url.replacen(
        "postgres://mamori@",
        &format!("postgres://mamori:{PASSWORD}@"),
        1,
    )
}

/// Runs `mamori migrate --from sqlite:DIR --to URL`: exit code and
/// everything it printed.
fn migrate_command(dir: &std::path::Path, url: &str) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .arg("migrate")
        .arg("--from")
        .arg(format!("sqlite:{}", dir.display()))
        .arg("--to")
        .arg(url)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Rows of `table` in the destination, read beneath the ports.
fn rows_in(url: &str, table: &str) -> i64 {
    pg::shared()
        .psql(
            pg::Cluster::database_of(url),
            &format!("SELECT count(*) FROM {table}"),
        )
        .unwrap()
        .parse()
        .unwrap()
}

// Length: one installation's whole story, before and after the move, each
// step depending on the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_moves_from_sqlite_to_postgres_and_runs_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_on(dir.path(), false);
    let running = app::start(&config).await.unwrap();
    let token = role_token(&running.services, "e2e-owner", "owner").await;
    let tls_ca_pem = std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap();
    let app = TestApp {
        http: client_trusting(&tls_ca_pem),
        running,
        dir,
        token,
        tls_ca_pem,
    };
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let (phone_id, mac_id) = (phone.udid().to_owned(), mac.udid().to_owned());
    let queued = app
        .enqueue(
            &[&phone_id],
            json!({"RequestType": "DeviceInformation", "Queries": ["DeviceName", "OSVersion"]}),
        )
        .await;
    let cmd = phone.connect_idle().await.unwrap().expect("the command");
    let answer = phone.builtin_response(&cmd);
    assert!(phone.respond(&cmd, answer).await.unwrap().is_none());
    assert_eq!(app.command(&queued[0].1).await["status"], "Acknowledged");
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
            Some(json!({"person_id": person_id})),
        )
        .await;
    assert_eq!(st, 204);
    let officer = role_token(&app.running.services, "officer", "security_officer").await;
    let before = app.running.services.verify_audit().await.unwrap();
    assert!(before.fault.is_none() && before.records > 5, "{before:?}");

    // While the server runs, the move is refused, in-process and from the
    // command line, before the destination is touched.
    let url = pg::shared().fresh_database();
    let data_dir = config.data_dir.clone();
    let err = migrate::migrate(&data_dir, &url).await.unwrap_err();
    assert!(format!("{err:#}").contains("stop the server"), "{err:#}");
    let (code, text) = migrate_command(&data_dir, &with_password(&url));
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("another mamori server"), "{text}");
    assert!(!text.contains(PASSWORD), "the password is shown: {text}");
    let schema = pg::shared().psql(
        pg::Cluster::database_of(&url),
        "SELECT count(*) FROM pg_tables WHERE tablename = 'audit_log'",
    );
    assert_eq!(schema.unwrap(), "0", "the destination was touched");

    // Stopped, then moved.
    config.device_addr = app.running.device_addr;
    config.public_url = Some(app.running.public_url.clone());
    let (owner_token, dir) = (app.token.clone(), app.dir);
    app.running.stop(Duration::from_secs(5)).await;
    let report = migrate::migrate(&data_dir, &url).await.unwrap();
    assert!(report.is_faithful(), "{report:?}");
    assert_eq!(report.tables.len(), mamori_ports::COPY_TABLES.len());
    let rows = |name: &str| {
        report
            .tables
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .destination_rows
    };
    assert_eq!(rows("devices"), 2);
    assert!(rows("commands") >= 1);
    assert_eq!(rows("people"), 1);
    assert!(rows("admins") >= 2 && rows("api_tokens") >= 2);
    assert!(report.audit.fault.is_none(), "{:?}", report.audit);
    assert!(report.audit.records >= before.records, "{:?}", report.audit);
    assert!(
        !report.destination.contains("mamori@"),
        "{}",
        report.destination
    );

    // Served from PostgreSQL with the same data directory.
    config.database = mamori::config::Database::Postgres(url.clone());
    let running = app::start(&config).await.unwrap();
    let http = client_trusting(&std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap());
    let admin = |path: &str| format!("https://{}{path}", running.admin_addr);
    let devices: serde_json::Value = http
        .get(admin("/api/v1/devices"))
        .bearer_auth(&owner_token)
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
    let personal: serde_json::Value = http
        .get(admin(&format!("/api/v1/people/{person_id}/personal-data")))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(personal["email"], "hanako.yamada@example.jp", "{personal}");
    // The phone checks in with the identity it enrolled with, and a new
    // command is numbered after the copied one and delivered.
    assert!(phone.connect_idle().await.unwrap().is_none());
    let r = http
        .post(admin("/api/v1/commands?push=false"))
        .bearer_auth(&owner_token)
        .json(
            &json!({"devices": [phone_id], "command": {"RequestType": "DeviceInformation",
                      "Queries": ["OSVersion"]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let cmd = phone
        .connect_idle()
        .await
        .unwrap()
        .expect("the new command");
    let answer = phone.builtin_response(&cmd);
    assert!(phone.respond(&cmd, answer).await.unwrap().is_none());
    let after = running.services.verify_audit().await.unwrap();
    assert!(after.fault.is_none(), "{:?}", after.fault);
    assert!(after.records > report.audit.records, "{after:?}");
    running.stop(Duration::from_secs(5)).await;

    // A second move into the database, which now holds rows, is refused
    // and changes nothing.
    let audit_rows = rows_in(&url, "audit_log");
    let (code, text) = migrate_command(&data_dir, &with_password(&url));
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("is not empty"), "{text}");
    assert!(!text.contains(PASSWORD), "the password is shown: {text}");
    assert_eq!(rows_in(&url, "audit_log"), audit_rows);
    assert_eq!(rows_in(&url, "devices"), 2);
    drop(dir);
}

/// The command line's own summary: every table with its rows, the audit
/// chain verified, where to go next; the URL's password nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_prints_what_it_moved_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config_on(dir.path(), false);
    let running = app::start(&config).await.unwrap();
    role_token(&running.services, "e2e-owner", "owner").await;
    running.stop(Duration::from_secs(5)).await;
    let url = pg::shared().fresh_database();
    let db = config.data_dir.join("mamori.db");
    let (code, text) = migrate_command(&db, &with_password(&url));
    assert_eq!(code, Some(0), "{text}");
    for table in mamori_ports::COPY_TABLES {
        assert!(text.contains(table.name), "{} is not in {text}", table.name);
    }
    assert!(text.contains("identical"), "{text}");
    assert!(text.contains("audit log intact on PostgreSQL"), "{text}");
    assert!(text.contains("MAMORI_DATABASE_URL"), "{text}");
    assert!(!text.contains(PASSWORD), "the password is shown: {text}");
    assert!(rows_in(&url, "admins") >= 1);
    // Not a data directory: refused before anything is locked or opened.
    let empty = tempfile::tempdir().unwrap();
    let (code, text) = migrate_command(empty.path(), &url);
    assert_ne!(code, Some(0));
    assert!(text.contains("no Mamori installation"), "{text}");
    assert!(!empty.path().join(app::LOCK_FILE).exists());
}
