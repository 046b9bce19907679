//! Budgets of commands queued without a second administrator (the erases
//! one person may queue alone): on both backends, and across four handles
//! on one database (four servers).
#![allow(clippy::unwrap_used)]

use backends::Backend;
use mamori_domain::{CommandUuid, DeviceKey};
use mamori_ports::{AuthenticateRecord, InventoryFields, NewCommand, QueueBudget, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod backends;
mod linker;

/// `enqueue_within`, with the audit record an erase writes.
async fn within(
    s: &dyn Store,
    commands: &[NewCommand],
    budget: QueueBudget<'_>,
    now: OffsetDateTime,
) -> mamori_ports::StoreResult<Option<u64>> {
    let event = mamori_domain::AuditEvent {
        at: now,
        actor: "admin:dana".into(),
        source: None,
        action: "command.queue".into(),
        target: Some("EraseDevice".into()),
        outcome: "success".into(),
        request_id: None,
        detail: Some(format!("devices={}", commands.len())),
    };
    s.enqueue_within(commands, budget, &event, &linker::Linker::default(), now)
        .await
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn erase(at_most: u64) -> QueueBudget<'static> {
    QueueBudget {
        name: "erase",
        window: Duration::hours(24),
        at_most,
    }
}

async fn enroll(s: &dyn Store, n: usize) -> Vec<DeviceKey> {
    let mut keys = Vec::new();
    for i in 0..n {
        let device = DeviceKey::parse(&format!("BUDGET{i}")).unwrap();
        s.authenticate(&AuthenticateRecord {
            device: device.clone(),
            enrollment_id: None,
            topic: "topic".into(),
            fields: InventoryFields::default(),
            now: t0(),
        })
        .await
        .unwrap();
        keys.push(device);
    }
    keys
}

fn erase_of(device: &DeviceKey) -> NewCommand {
    let uuid = CommandUuid::new_random();
    NewCommand {
        payload: uuid.as_str().as_bytes().to_vec(),
        command_uuid: uuid,
        device: device.clone(),
        request_type: "EraseDevice".into(),
    }
}

async fn queued(s: &dyn Store, device: &DeviceKey) -> usize {
    s.device_commands(device, 100).await.unwrap().len()
}

async fn commands_past_the_budget_are_refused_whole_and_nothing_spent(b: Backend) {
    let (s, _d) = b.open().await;
    let d = enroll(&*s, 6).await;
    assert_eq!(
        within(&*s, &[erase_of(&d[0]), erase_of(&d[1])], erase(3), t0())
            .await
            .unwrap(),
        None
    );
    // Two more would make 4: neither is queued, nothing is spent.
    let late = t0() + Duration::hours(1);
    assert_eq!(
        within(&*s, &[erase_of(&d[2]), erase_of(&d[3])], erase(3), late)
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(queued(&*s, &d[2]).await + queued(&*s, &d[3]).await, 0);
    // Exactly the budget is allowed, and then it is spent.
    assert_eq!(
        within(&*s, &[erase_of(&d[2])], erase(3), late)
            .await
            .unwrap(),
        None
    );
    assert_eq!(queued(&*s, &d[2]).await, 1);
    assert_eq!(
        within(&*s, &[erase_of(&d[3])], erase(3), late)
            .await
            .unwrap(),
        Some(3)
    );
    // Another budget's name spends nothing of this one.
    let other = QueueBudget {
        name: "other",
        ..erase(3)
    };
    assert_eq!(
        within(&*s, &[erase_of(&d[3])], other, late).await.unwrap(),
        None
    );
    // One record for each request queued (three so far), none for those
    // refused.
    assert_eq!(_d.raw_i64("SELECT COUNT(*) FROM audit_log"), 3);
    // A window after the first two, they no longer count; the third does.
    let next_day = t0() + Duration::hours(24);
    assert_eq!(
        within(
            &*s,
            &[erase_of(&d[4]), erase_of(&d[5]), erase_of(&d[5])],
            erase(3),
            next_day
        )
        .await
        .unwrap(),
        Some(1)
    );
    assert_eq!(
        within(&*s, &[erase_of(&d[4]), erase_of(&d[5])], erase(3), next_day)
            .await
            .unwrap(),
        None
    );
}

/// Retiring the devices does not give their erases back: the budget is
/// kept apart from the queue.
async fn a_spent_budget_outlives_its_commands(b: Backend) {
    let (s, db) = b.open().await;
    let d = enroll(&*s, 2).await;
    assert_eq!(
        within(&*s, &[erase_of(&d[0])], erase(1), t0())
            .await
            .unwrap(),
        None
    );
    db.raw("DELETE FROM commands").unwrap();
    assert_eq!(
        within(&*s, &[erase_of(&d[1])], erase(1), t0())
            .await
            .unwrap(),
        Some(1)
    );
}

/// A server whose clock runs a day ahead counts only its own window, but
/// cannot remove what the others spent: theirs still count for them.
async fn a_server_ahead_of_time_takes_nothing_away(b: Backend) {
    let (s, db) = b.open().await;
    let ahead = db.another().await;
    let d = enroll(&*s, 4).await;
    for device in &d[..2] {
        assert_eq!(
            within(&*s, &[erase_of(device)], erase(3), t0())
                .await
                .unwrap(),
            None
        );
    }
    let tomorrow = t0() + Duration::hours(25);
    assert_eq!(
        within(&*ahead, &[erase_of(&d[2])], erase(3), tomorrow)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        within(&*s, &[erase_of(&d[3])], erase(3), t0() + Duration::hours(1))
            .await
            .unwrap(),
        Some(3)
    );
}

/// Four handles (four servers) queueing one erase at a time, all at once,
/// under a budget of 10: exactly 10 are queued, whichever handle each
/// came through.
async fn servers_at_once_never_overspend_a_budget(b: Backend) {
    let (s, db) = b.open().await;
    let devices = enroll(&*s, 32).await;
    let mut handles = vec![s];
    for _ in 0..3 {
        handles.push(db.another().await);
    }
    let spent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let spent = Arc::clone(&spent);
        let mine = devices[i * 8..(i + 1) * 8].to_vec();
        tasks.push(tokio::spawn(async move {
            for device in &mine {
                let verdict = within(&*h, &[erase_of(device)], erase(10), t0())
                    .await
                    .unwrap();
                if verdict.is_none() {
                    spent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(spent.load(Ordering::Relaxed), 10);
    assert_eq!(db.raw_i64("SELECT COUNT(*) FROM commands"), 10);
}

on_both_backends!(
    commands_past_the_budget_are_refused_whole_and_nothing_spent,
    a_spent_budget_outlives_its_commands,
    a_server_ahead_of_time_takes_nothing_away,
    servers_at_once_never_overspend_a_budget,
);
