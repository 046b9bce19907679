//! The server's background tasks: the hourly jobs, the reconciler, the
//! inventory refresh, the audit sinks and the watch on `people.key`.

use super::{sink_options, sink_targets, Keyring};
use crate::config::Config;
use crate::keys;
use mamori_core::access::{Job, Operator};
use mamori_core::Services;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Commands one reconciliation pass queues at most (the rest wait for the
/// next pass: no command storms).
pub const RECONCILE_BATCH: usize = 5000;

/// How often the server looks at `people.key` for a rotation.
pub const KEY_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Starts every background task of a running server.
pub(super) fn spawn(
    services: &Services,
    config: &Config,
    public_url: &str,
    keyring: &Keyring,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = vec![
        tokio::spawn(hygiene(services.clone(), config.audit_retention_days)),
        tokio::spawn(
            services
                .clone()
                .run_anomaly_detection(Operator::Job(Job::Detection)),
        ),
        tokio::spawn(services.clone().run_reconciler(
            Operator::Job(Job::Fleet),
            config.reconcile_every,
            RECONCILE_BATCH,
        )),
        // Inventory: a pass every 5 minutes (new devices within minutes of
        // enrolling), each device once a day.
        tokio::spawn(services.clone().run_inventory_refresh(
            Operator::Job(Job::Fleet),
            std::time::Duration::from_secs(300),
            time::Duration::hours(24),
        )),
    ];
    if !config.audit_sinks.is_empty() {
        let opts = sink_options(config, public_url)?;
        for (name, target) in sink_targets(config)? {
            tasks.push(tokio::spawn(mamori_sinks::run(
                Arc::clone(&services.store),
                name,
                target,
                opts.clone(),
            )));
        }
    }
    if keyring.source == keys::KeySource::File {
        tasks.push(tokio::spawn(watch_people_keys(
            config.data_dir.clone(),
            Arc::clone(&keyring.ring),
        )));
    }
    Ok(tasks)
}

/// Follows `people.key`: when a rotation rewrites it, the running server
/// loads the new ring within seconds (no restart, no downtime).
async fn watch_people_keys(dir: PathBuf, ring: Arc<mamori_core::people::vault::LocalKeyring>) {
    let path = dir.join(keys::PEOPLE_KEY_FILE);
    let stamp = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = stamp(&path);
    let mut tick = tokio::time::interval(KEY_POLL);
    loop {
        tick.tick().await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        match keys::read_people_key_file(&dir) {
            Ok(Some(k)) => match ring.replace(&k) {
                Ok(()) => {
                    seen = now;
                    tracing::info!(keys = ?ring.ids(), "people key ring reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "people.key is invalid; keeping the loaded keys");
                }
            },
            Ok(None) => tracing::error!("people.key disappeared; keeping the loaded keys"),
            Err(e) => {
                tracing::error!(error = %e, "people.key is unreadable; keeping the loaded keys");
            }
        }
    }
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
