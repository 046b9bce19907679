//! The server's background tasks: the jobs that run once across the
//! servers on one database, each while this server holds its lease (the
//! hourly jobs, anomaly detection, the reconciler, the inventory refresh,
//! one per audit sink), and on every server: the people key ring followed
//! (`keys::ring::follow`: its own `people.key`, the key the database names,
//! its report) and the stored push certificate followed.

use super::leases::{holder_identity, LeaseOptions, LeasedJob, Leases};
use super::{sink_options, sink_targets, Keyring};
use crate::config::Config;
use crate::keys;
use mamori_core::access::{Job, Operator};
use mamori_core::device::push::PushFollower;
use mamori_core::Services;
use mamori_ports::LeaseStore;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Commands one reconciliation pass queues at most (the rest wait for the
/// next pass: no command storms).
pub const RECONCILE_BATCH: usize = 5000;

pub use crate::keys::ring::KEY_POLL;

/// How often a server looks for a push certificate installed or renewed
/// through another server (or the command line): a row read by its key,
/// the certificate loaded only when it changed.
pub const PUSH_POLL: std::time::Duration = std::time::Duration::from_secs(3);

/// The leased jobs every server has (each audit sink adds `sink:NAME`).
pub const JOBS: [&str; 4] = [
    "hygiene",
    "anomaly-detection",
    "reconciler",
    "inventory-refresh",
];

/// Who this server is to the others on the database (its holder identity
/// in the jobs' leases and the people key reports), and what it follows.
pub(super) struct Joined {
    /// The holder identity.
    pub holder: String,
    /// The push certificate as loaded at start.
    pub push: PushFollower,
}

/// Starts every background task of a running server: the per-server ones
/// as tasks, the others under their leases. `sole`: this server is the
/// database's only one (SQLite).
pub(super) async fn spawn(
    services: &Services,
    config: &Config,
    public_url: &str,
    keyring: &Keyring,
    sole: bool,
    joined: Joined,
) -> anyhow::Result<(Vec<JoinHandle<()>>, Leases)> {
    let store: Arc<dyn LeaseStore> = Arc::clone(&services.store) as Arc<dyn LeaseStore>;
    let opts = LeaseOptions {
        sole,
        ..LeaseOptions::default()
    };
    let leases = Leases::start(
        store,
        joined.holder.clone(),
        opts,
        leased_jobs(services, config, public_url)?,
    )
    .await?;
    tracing::info!(holder = %leases.holder(), "background jobs run under leases");
    let dir = (keyring.source == keys::KeySource::File).then(|| config.data_dir.clone());
    let tasks = vec![
        tokio::spawn(keys::ring::follow(
            Arc::clone(&services.store),
            Arc::clone(&keyring.ring),
            dir,
            joined.holder,
        )),
        tokio::spawn(follow_push_certificate(services.clone(), joined.push)),
    ];
    Ok((tasks, leases))
}

/// A new holder identity for this server.
pub(super) fn new_holder() -> anyhow::Result<String> {
    holder_identity()
}

/// Follows the stored push certificate: one installed or renewed through
/// another server is loaded here within [`PUSH_POLL`], so a command queued
/// through this server wakes its devices with it.
async fn follow_push_certificate(services: Services, mut follower: PushFollower) {
    let mut tick = tokio::time::interval(PUSH_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match services.follow_push_certificate(&mut follower).await {
            Ok(Some(topic)) => {
                tracing::info!(topic = %topic, "push certificate loaded from the database");
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "the stored push certificate cannot be loaded"),
        }
    }
}

/// The jobs that run on one server at a time. Each starts afresh when a
/// server takes its lease, and may be stopped at any await: what it must
/// remember is in the database (the sinks' cursors; the hourly jobs and
/// the reconciler recompute what is due on each pass), and anomaly
/// detection learns its profiles again from the audit log.
fn leased_jobs(
    services: &Services,
    config: &Config,
    public_url: &str,
) -> anyhow::Result<Vec<LeasedJob>> {
    let [hygiene_job, detection, reconciler, inventory] = JOBS;
    let s = services.clone();
    let days = config.audit_retention_days;
    let mut jobs = vec![LeasedJob::new(hygiene_job, move || {
        hygiene(s.clone(), days)
    })];
    let s = services.clone();
    jobs.push(LeasedJob::new(detection, move || {
        s.clone()
            .run_anomaly_detection(Operator::Job(Job::Detection))
    }));
    let (s, every) = (services.clone(), config.reconcile_every);
    jobs.push(LeasedJob::new(reconciler, move || {
        s.clone()
            .run_reconciler(Operator::Job(Job::Fleet), every, RECONCILE_BATCH)
    }));
    // Inventory: a pass every 5 minutes (new devices within minutes of
    // enrolling), each device once a day unless configured otherwise.
    if let Some(every) = config.inventory_refresh {
        let s = services.clone();
        jobs.push(LeasedJob::new(inventory, move || {
            s.clone().run_inventory_refresh(
                Operator::Job(Job::Fleet),
                std::time::Duration::from_secs(300),
                every,
            )
        }));
    }
    if !config.audit_sinks.is_empty() {
        let opts = sink_options(config, public_url)?;
        for (name, target) in sink_targets(config)? {
            let (store, opts) = (Arc::clone(&services.store), opts.clone());
            jobs.push(LeasedJob::new(format!("sink:{name}"), move || {
                mamori_sinks::run(
                    Arc::clone(&store),
                    name.clone(),
                    target.clone(),
                    opts.clone(),
                )
            }));
        }
    }
    Ok(jobs)
}

/// The hourly jobs (also at start): account hygiene — administrator
/// accounts unused for too long are reported and, by policy, disabled — and
/// retention — departed people past the retention period are purged, audit
/// records past `--audit-retention-days` removed behind a signed mark.
async fn hygiene(services: Services, audit_retention_days: Option<u32>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let ctx = mamori_core::access::ClientContext::default();
        if let Err(e) = services
            .purge_due_people(&Operator::Job(Job::Retention), &ctx)
            .await
        {
            tracing::error!(error = %e, "retention job failed");
        }
        if let Err(e) = services
            .retire_overdue_devices(&Operator::Job(Job::Offboarding))
            .await
        {
            tracing::error!(error = %e, "offboarding job failed");
        }
        if let Err(e) = services.audit_checkpoint(&Operator::Job(Job::Audit)).await {
            tracing::error!(error = %e, "audit checkpoint failed");
        }
        if let Some(days) = audit_retention_days {
            if let Err(e) = services
                .apply_audit_retention(&Operator::Job(Job::Audit), days)
                .await
            {
                tracing::error!(error = %e, "audit retention failed");
            }
        }
        match services
            .sweep_stale_admins(&Operator::Job(Job::Accounts))
            .await
        {
            Ok(names) if !names.is_empty() => {
                tracing::warn!(accounts = ?names, "stale administrator accounts");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "administrator hygiene job failed"),
        }
    }
}
