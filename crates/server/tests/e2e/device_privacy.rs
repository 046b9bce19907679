//! What devices report about their users — the device name, where the
//! device is, its phone number, the accounts on it — is personal data: an
//! administrator without `personal_data_read` (viewer, helpdesk,
//! device_admin, owner) gets it withheld on every route (the value `null`,
//! its place named in `redacted`); a security officer gets it in plaintext
//! and each read is recorded in the audit log (actor, device, fields; never
//! a value) before the answer leaves, or the read fails. None of it reaches
//! the server's log.

use crate::common::{capture_log, role_token, spawn_app, TestApp};
use mamori_sim::{DeviceInfo, DeviceKind, Response, SimDevice, SimOptions};
use serde_json::{json, Value};

/// Strings that only the devices' personal answers contain.
const PERSONAL: &[&str] = &[
    "Quillfeather",
    "Zephyrine",
    "zquill",
    "5550 1234",
    "89810055501234",
    "35.6581",
    "139.7017",
    "Tokyo-Shibuya",
];

fn leaks(text: &str) -> Vec<&'static str> {
    PERSONAL
        .iter()
        .copied()
        .filter(|p| text.contains(p))
        .collect()
}

/// Two devices that have told the server about their user, and the
/// commands whose results say it.
struct Scene {
    app: TestApp,
    phone: String,
    phone_serial: String,
    mac: String,
    /// DeviceLocation.
    location: String,
    /// DeviceInformation with the phone number and subscriptions.
    info: String,
    /// UserList (a RequestType with no open key: withheld whole).
    users: String,
    /// InstalledApplicationList (not personal).
    apps: String,
}

/// Answers `uuid` with `answer` and every other queued command as the
/// simulator would.
async fn answer(dev: &mut SimDevice, uuid: &str, answer: plist::Dictionary) {
    let mut next = dev.connect_idle().await.unwrap();
    let mut answered = false;
    while let Some(cmd) = next {
        let r = if cmd.command_uuid == uuid {
            answered = true;
            Response::Acknowledged(answer.clone())
        } else {
            dev.builtin_response(&cmd)
        };
        next = dev.respond(&cmd, r).await.unwrap();
    }
    assert!(answered, "{uuid} was not delivered");
}

fn dict(v: Value) -> plist::Dictionary {
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &v).unwrap();
    plist::from_bytes(&out).unwrap()
}

async fn scene() -> Scene {
    let app = spawn_app().await;
    let profile = app.profile(json!({"max_uses": 2})).await;

    let mut info = DeviceInfo::random(DeviceKind::IPhone);
    info.device_name = "Zephyrine Quillfeather's iPhone".into();
    let mut phone = SimDevice::with_info(info, SimOptions::default());
    phone.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    phone.state_mut().location = (35.658_123_4, 139.701_765_4);
    let udid = phone.udid().to_owned();

    let mut info = DeviceInfo::random(DeviceKind::Mac);
    info.device_name = "Zephyrine Quillfeather's Mac".into();
    let mut mac = SimDevice::with_info(info, SimOptions::default());
    mac.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    let mac_udid = mac.udid().to_owned();

    // The phone: lost, located, asked who it is and what it runs.
    let targets = [udid.as_str()];
    let q = |c: Value| app.enqueue(&targets, c);
    q(json!({"RequestType": "EnableLostMode", "Message": "Lost"})).await;
    let location = q(json!({"RequestType": "DeviceLocation"})).await[0]
        .1
        .clone();
    let apps = q(json!({"RequestType": "InstalledApplicationList"})).await[0]
        .1
        .clone();
    phone.run_queue().await.unwrap();
    let info = q(json!({"RequestType": "DeviceInformation",
        "Queries": ["DeviceName", "PhoneNumber", "ServiceSubscriptions", "SerialNumber", "OSVersion", "IMEI", "TimeZone"]}))
    .await[0]
        .1
        .clone();
    let serial = phone.serial_number().to_owned();
    let imei = phone.info().imei.clone().unwrap();
    answer(
        &mut phone,
        &info,
        dict(json!({"QueryResponses": {
            "DeviceName": "Zephyrine Quillfeather's iPhone",
            "PhoneNumber": "+81 90 5550 1234",
            "ServiceSubscriptions": [{"PhoneNumber": "+81 90 5550 1234", "ICCID": "89810055501234", "IMEI": imei}],
            "SerialNumber": serial,
            "OSVersion": "18.1",
            "IMEI": imei,
            "TimeZone": "Asia/Tokyo-Shibuya",
        }})),
    )
    .await;

    // The Mac: its host names carry its name; its users are people.
    app.enqueue(
        &[&mac_udid],
        json!({"RequestType": "DeviceInformation",
               "Queries": ["DeviceName", "HostName", "LocalHostName", "OSVersion", "SerialNumber"]}),
    )
    .await;
    mac.run_queue().await.unwrap();
    let users = app
        .enqueue(&[&mac_udid], json!({"RequestType": "UserList"}))
        .await[0]
        .1
        .clone();
    answer(
        &mut mac,
        &users,
        dict(json!({"Users": [{"UserName": "zquill", "FullName": "Zephyrine Quillfeather", "UID": 501}]})),
    )
    .await;

    Scene {
        app,
        phone: udid,
        phone_serial: serial,
        mac: mac_udid,
        location,
        info,
        users,
        apps,
    }
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let r = app
        .http
        .get(app.admin_url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn redacted(v: &Value) -> Vec<&str> {
    v["redacted"]
        .as_array()
        .unwrap_or_else(|| panic!("no redacted list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

/// Every admin route that answers with something a device reported.
fn routes(s: &Scene) -> Vec<String> {
    let mut r = vec![
        "/api/v1/devices".to_owned(),
        format!("/api/v1/devices/{}", s.phone),
        format!("/api/v1/devices/{}", s.mac),
        "/api/v1/devices/search?os_version=1".to_owned(),
        format!("/api/v1/devices/search?serial={}", s.phone_serial),
        format!("/api/v1/devices/{}/commands", s.phone),
        format!("/api/v1/devices/{}/commands", s.mac),
        format!("/api/v1/devices/{}/apps", s.phone),
        format!("/api/v1/devices/{}/profiles", s.phone),
        "/api/v1/reports/compliance".to_owned(),
        "/api/v1/reenrollments".to_owned(),
        "/api/v1/groups".to_owned(),
        "/api/v1/people".to_owned(),
    ];
    for c in [&s.location, &s.info, &s.users, &s.apps] {
        r.push(format!("/api/v1/commands/{c}"));
    }
    r
}

async fn personal_reads(app: &TestApp) -> Vec<Value> {
    app.audit_records()
        .await
        .into_iter()
        .filter(|r| r["action"] == "device.personal_read")
        .collect()
}

/// Before the fix a viewer token read the device names, the location and
/// the phone number on these routes, and nothing was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_personal_data_read_nothing_a_device_says_about_its_user_is_shown() {
    let s = scene().await;
    let app = &s.app;
    let services = &app.running.services;
    let mut readers = vec![("owner", app.token.clone())];
    for role in ["viewer", "helpdesk", "device_admin"] {
        readers.push((role, role_token(services, &format!("{role}-1"), role).await));
    }
    for (role, token) in &readers {
        for path in routes(&s) {
            let (st, body) = get(app, token, &path).await;
            assert_eq!(st, 200, "{role} {path}: {body}");
            assert!(
                leaks(&body).is_empty(),
                "{role} {path} shows {:?}: {body}",
                leaks(&body)
            );
        }

        // The device: the name withheld, the hardware shown.
        let (_, body) = get(app, token, &format!("/api/v1/devices/{}", s.phone)).await;
        let d = json_of(&body);
        assert!(d["device_name"].is_null(), "{d}");
        let info = &d["device_information"];
        for k in [
            "DeviceName",
            "PhoneNumber",
            "ServiceSubscriptions",
            "TimeZone",
        ] {
            assert!(info[k].is_null(), "{role}: {k} in {d}");
        }
        assert_eq!(info["SerialNumber"], s.phone_serial.as_str());
        assert!(info["IMEI"].is_string(), "{d}");
        assert_eq!(d["serial_number"], s.phone_serial.as_str());
        assert_eq!(
            redacted(&d),
            [
                "device_name",
                "device_information.DeviceName",
                "device_information.PhoneNumber",
                "device_information.ServiceSubscriptions",
                "device_information.TimeZone"
            ]
        );
        let (_, body) = get(app, token, &format!("/api/v1/devices/{}", s.mac)).await;
        let d = json_of(&body);
        assert!(d["device_information"]["LocalHostName"].is_null(), "{d}");
        assert!(redacted(&d).contains(&"device_information.HostName"), "{d}");
        let (_, body) = get(app, token, "/api/v1/devices").await;
        for d in json_of(&body)["devices"].as_array().unwrap() {
            assert!(d["device_name"].is_null(), "{d}");
            assert!(redacted(d).contains(&"device_name"), "{d}");
        }

        // The location: every key withheld, each named.
        let (_, body) = get(app, token, &format!("/api/v1/commands/{}", s.location)).await;
        let c = json_of(&body);
        assert_eq!(c["status"], "Acknowledged");
        assert!(c["result"]["Latitude"].is_null(), "{c}");
        assert!(c["devices"][0]["result"]["Longitude"].is_null(), "{c}");
        let r = redacted(&c);
        for k in ["result.Latitude", "result.Longitude", "result.Altitude"] {
            assert!(r.contains(&k), "{k} not in {r:?}");
        }
        assert_eq!(redacted(&c["devices"][0]), r);
        // A RequestType not known to be safe: withheld whole.
        let (_, body) = get(app, token, &format!("/api/v1/commands/{}", s.users)).await;
        let c = json_of(&body);
        assert!(c["result"]["Users"].is_null(), "{c}");
        assert_eq!(redacted(&c), ["result.Users"]);
        // The app list is not personal.
        let (_, body) = get(app, token, &format!("/api/v1/commands/{}", s.apps)).await;
        let c = json_of(&body);
        assert!(c["result"]["InstalledApplicationList"].is_array(), "{c}");
        assert!(redacted(&c).is_empty(), "{c}");
        let (_, body) = get(app, token, &format!("/api/v1/commands/{}", s.info)).await;
        let c = json_of(&body);
        assert_eq!(
            c["result"]["QueryResponses"]["SerialNumber"],
            s.phone_serial.as_str()
        );
    }
    // Nothing personal left, so nothing was recorded as read.
    assert!(personal_reads(app).await.is_empty());
}

/// A security officer sees it all, and every read that showed something
/// personal is recorded first, naming the reader, the device and the
/// fields. Before the fix nothing was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_officer_reads_it_and_every_read_is_recorded() {
    let s = scene().await;
    let app = &s.app;
    let officer = role_token(&app.running.services, "officer", "security_officer").await;
    assert!(
        mamori_domain::Role::SecurityOfficer.allows(mamori_domain::Permission::PersonalDataRead)
    );
    let (st, _) = get(app, &officer, "/api/v1/people/personal-data").await;
    assert_eq!(st, 200, "the token holds personal_data_read");
    let label = format!("token:{}:officer", officer.split('_').nth(1).unwrap());
    let mut expected = 0;

    let (st, body) = get(app, &officer, &format!("/api/v1/devices/{}", s.phone)).await;
    assert_eq!(st, 200);
    let d = json_of(&body);
    assert_eq!(d["device_name"], "Zephyrine Quillfeather's iPhone");
    assert_eq!(d["device_information"]["PhoneNumber"], "+81 90 5550 1234");
    assert!(redacted(&d).is_empty(), "{d}");
    expected += 1;
    let reads = personal_reads(app).await;
    assert_eq!(reads.len(), expected);
    let r = &reads[0];
    assert_eq!(r["actor"], label.as_str());
    assert_eq!(r["target"], s.phone.as_str());
    assert_eq!(r["outcome"], "success");
    assert_eq!(
        r["detail"],
        "fields=device_information.DeviceName,device_information.PhoneNumber,\
         device_information.ServiceSubscriptions,device_information.TimeZone,device_name"
    );

    let (_, body) = get(app, &officer, &format!("/api/v1/commands/{}", s.location)).await;
    let c = json_of(&body);
    assert_eq!(c["result"]["Latitude"], 35.658_123_4);
    assert_eq!(c["devices"][0]["result"]["Longitude"], 139.701_765_4);
    assert!(redacted(&c).is_empty());
    expected += 1;
    let reads = personal_reads(app).await;
    assert_eq!(reads.len(), expected);
    let r = reads.last().unwrap();
    assert_eq!(r["target"], s.phone.as_str());
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "command={} request_type=DeviceLocation fields=",
            s.location
        )),
        "{detail}"
    );
    for k in ["result.Latitude", "result.Longitude", "result.Timestamp"] {
        assert!(detail.contains(k), "{detail}");
    }

    let (_, body) = get(app, &officer, &format!("/api/v1/commands/{}", s.users)).await;
    assert_eq!(
        json_of(&body)["result"]["Users"][0]["FullName"],
        "Zephyrine Quillfeather"
    );
    expected += 1;
    let (_, body) = get(app, &officer, &format!("/api/v1/commands/{}", s.info)).await;
    assert_eq!(
        json_of(&body)["result"]["QueryResponses"]["DeviceName"],
        "Zephyrine Quillfeather's iPhone"
    );
    expected += 1;
    // Nothing personal in an app list: no record.
    let (_, body) = get(app, &officer, &format!("/api/v1/commands/{}", s.apps)).await;
    assert!(json_of(&body)["result"]["InstalledApplicationList"].is_array());
    // The list and the search: one record per device shown.
    let (_, body) = get(app, &officer, "/api/v1/devices").await;
    let list = json_of(&body);
    let names: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["device_name"].as_str())
        .collect();
    assert!(names.contains(&"Zephyrine Quillfeather's Mac"), "{names:?}");
    assert!(
        names.contains(&"Zephyrine Quillfeather's iPhone"),
        "{names:?}"
    );
    expected += 2;
    let (_, body) = get(
        app,
        &officer,
        &format!("/api/v1/devices/search?serial={}", s.phone_serial),
    )
    .await;
    assert_eq!(
        json_of(&body)["devices"][0]["device_name"],
        "Zephyrine Quillfeather's iPhone"
    );
    expected += 1;

    let reads = personal_reads(app).await;
    assert_eq!(reads.len(), expected, "{reads:#?}");
    let mac_reads: Vec<&Value> = reads
        .iter()
        .filter(|r| r["target"] == s.mac.as_str())
        .collect();
    assert_eq!(mac_reads.len(), 2, "UserList and the list");
    assert!(
        mac_reads.iter().any(|r| r["detail"]
            .as_str()
            .unwrap()
            .ends_with("request_type=UserList fields=result.Users")),
        "{mac_reads:?}"
    );
    for r in &reads {
        assert_eq!(r["actor"], label.as_str());
        let text = r.to_string();
        assert!(leaks(&text).is_empty(), "{text}");
    }
}

/// A read that cannot be recorded shows nothing (fail closed); what holds
/// nothing personal is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personal_read_that_cannot_be_recorded_is_refused() {
    let s = scene().await;
    let app = &s.app;
    let officer = role_token(&app.running.services, "officer", "security_officer").await;
    let viewer = role_token(&app.running.services, "viewer", "viewer").await;
    let c = rusqlite::Connection::open(app.dir.path().join("data").join("mamori.db")).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.execute_batch(
        "CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_log
         BEGIN SELECT RAISE(ABORT, 'audit store unwritable'); END;",
    )
    .unwrap();
    for path in [
        format!("/api/v1/devices/{}", s.phone),
        "/api/v1/devices".to_owned(),
        format!("/api/v1/devices/search?serial={}", s.phone_serial),
        format!("/api/v1/commands/{}", s.location),
    ] {
        let (st, body) = get(app, &officer, &path).await;
        assert_eq!(st, 503, "{path}: {body}");
        assert!(leaks(&body).is_empty(), "{path}: {body}");
        let (st, body) = get(app, &viewer, &path).await;
        assert_eq!(st, 200, "{path}: {body}");
        assert!(leaks(&body).is_empty(), "{path}: {body}");
    }
    let (st, _) = get(app, &officer, &format!("/api/v1/commands/{}", s.apps)).await;
    assert_eq!(st, 200, "nothing personal, nothing to record");
    c.execute_batch("DROP TRIGGER audit_blocked;").unwrap();
    let (st, body) = get(app, &officer, &format!("/api/v1/devices/{}", s.phone)).await;
    assert_eq!(st, 200);
    assert!(!leaks(&body).is_empty());
}

/// The server's log (the text formatter `mamori serve` uses, at debug)
/// while devices report about their users, and readers of every role read
/// every route: none of it holds anything personal.
///
/// Current-thread runtime: the server's tasks run on this thread, so a
/// thread-local subscriber sees their events and no other test's.
#[tokio::test]
async fn nothing_personal_reaches_the_log() {
    let (capture, _log) = capture_log(tracing::Level::DEBUG);

    let s = scene().await;
    let app = &s.app;
    let services = &app.running.services;
    let mut readers = vec![app.token.clone()];
    for role in ["viewer", "helpdesk", "security_officer"] {
        readers.push(role_token(services, &format!("{role}-log"), role).await);
    }
    for token in &readers {
        for path in routes(&s) {
            let (st, body) = get(app, token, &path).await;
            assert_eq!(st, 200, "{path}: {body}");
        }
    }
    assert!(!personal_reads(app).await.is_empty(), "the officer read");
    let log = capture.text();
    assert!(log.contains("command result"), "the log was captured");
    assert!(leaks(&log).is_empty(), "{:?} in the log", leaks(&log));
}
