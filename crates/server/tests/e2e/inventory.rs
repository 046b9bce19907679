//! Inventory: a newly enrolled device is asked for its inventory (device
//! information, security, apps, profiles) and not again until it is due;
//! the answers become typed, searchable fields.

use crate::common::spawn_app;
use mamori_sim::{DeviceKind, SimOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_is_refreshed_when_due_and_devices_are_found_by_it() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mut mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let day = time::Duration::hours(24);
    assert_eq!(
        s.refresh_inventory_once(&crate::common::operator(), 100, day)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.refresh_inventory_once(&crate::common::operator(), 100, day)
            .await
            .unwrap(),
        0,
        "not due again"
    );
    for d in [&mut phone, &mut mac] {
        let handled = d.run_queue().await.unwrap();
        let kinds: Vec<&str> = handled.iter().map(|h| h.request_type.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "DeviceInformation",
                "SecurityInfo",
                "InstalledApplicationList",
                "ProfileList"
            ]
        );
    }
    let udid = phone.udid().to_owned();
    let (st, apps) = app.get(&format!("/api/v1/devices/{udid}/apps")).await;
    assert_eq!(st, 200);
    let first = apps["apps"][0]["bundle_id"].as_str().unwrap().to_owned();
    assert!(!first.is_empty(), "{apps}");
    // Search: by app, serial, model, OS version; filters combine.
    let find = |q: String| {
        let app = &app;
        async move {
            let (st, v) = app.get(&format!("/api/v1/devices/search?{q}")).await;
            assert_eq!(st, 200, "{v}");
            let mut u: Vec<String> = v["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["udid"].as_str().unwrap().to_owned())
                .collect();
            u.sort();
            u
        }
    };
    assert!(find(format!("app={first}")).await.contains(&udid));
    assert_eq!(
        find(format!("serial={}", phone.serial_number())).await,
        vec![udid.clone()]
    );
    assert_eq!(find("model=mac".into()).await, vec![mac.udid().to_owned()]);
    assert_eq!(find("os_version=18.".into()).await, vec![udid.clone()]);
    assert!(find("model=mac&os_version=18.".into()).await.is_empty());
    assert!(find("app=no.such.app".into()).await.is_empty());
    let (st, _) = app.get("/api/v1/devices/search?color=red").await;
    assert_eq!(st, 400, "unknown filter");
    let key = mamori_domain::DeviceKey::parse(&udid).unwrap();
    let dev = s
        .device(&crate::common::operator(), &key)
        .await
        .unwrap()
        .unwrap();
    assert!(dev.security_info.is_some(), "SecurityInfo stored");
}
