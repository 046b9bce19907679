//! Leases of the background jobs: each job that must run once across the
//! servers on one database runs only on the server holding its lease
//! (`LeaseStore`). A server takes a free lease for `ttl`, renews it every
//! `renew_every`, and stops the job (aborts its task) `margin` before the
//! lease would end if it could not renew: the database hands the lease to
//! another server only once it has ended, so a server that lost its
//! database, or stalled, has stopped the job before another starts it.
//! Servers look for free leases every `poll`, so a job whose server died
//! moves to another within `ttl + poll`; a server that stops gracefully
//! releases its leases at once. On SQLite (one server) the server takes
//! every lease at start.

use mamori_ports::{LeaseStore, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A job's work, started afresh each time this server takes its lease.
pub type JobFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A job that runs only while this server holds its lease.
#[derive(Clone)]
pub struct LeasedJob {
    name: String,
    start: Arc<dyn Fn() -> JobFuture + Send + Sync>,
}

impl LeasedJob {
    /// The job `name` (its lease's name), whose work `start` begins. The
    /// work may be stopped at any await and started again later, here or
    /// on another server.
    pub fn new<F, Fut>(name: impl Into<String>, start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name: name.into(),
            start: Arc::new(move || Box::pin(start()) as JobFuture),
        }
    }

    /// The job's (and its lease's) name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for LeasedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedJob")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How leases are held (tests shorten every period).
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// How long a lease lasts unless renewed.
    pub ttl: Duration,
    /// How often the holder renews (well before `ttl - margin`).
    pub renew_every: Duration,
    /// How long before its lease would end a holder that could not renew
    /// stops the job: time for the job's last statement to finish.
    pub margin: Duration,
    /// How often a server looks for free leases.
    pub poll: Duration,
    /// This server is the database's only one (SQLite: the data
    /// directory's lock), so a lease another holder has is a dead
    /// process's: freed at start.
    pub sole: bool,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            margin: Duration::from_secs(10),
            poll: Duration::from_secs(10),
            sole: false,
        }
    }
}

impl LeaseOptions {
    /// When a job must stop if the renewal sent at `sent` is the last.
    fn deadline(&self, sent: Instant) -> Instant {
        sent + self.ttl.saturating_sub(self.margin)
    }

    fn check(&self) -> anyhow::Result<()> {
        let hold = self.ttl.saturating_sub(self.margin);
        anyhow::ensure!(
            !self.renew_every.is_zero() && !self.poll.is_zero() && self.renew_every < hold,
            "a lease must be renewed before its holder would stop the job \
             (renew_every < ttl - margin, both periods above zero)"
        );
        Ok(())
    }
}

/// How long a graceful stop waits for the jobs to stop and their leases to
/// be released.
const STOP_BOUND: Duration = Duration::from_secs(5);

/// This process's holder identity: the host name and process id, for the
/// operator reading the leases, and a random part, unique per process.
pub fn holder_identity() -> anyhow::Result<String> {
    let random = mamori_crypto::try_random_bytes(8).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        hex::encode(random)
    ))
}

/// The host's name, reduced to letters, digits, `.`, `-` and `_`.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    if name.is_empty() {
        "host".into()
    } else {
        name
    }
}

/// The leased jobs of a running server. Dropped, it stops them and
/// releases their leases as [`Leases::stop`] does, without waiting.
pub struct Leases {
    holder: String,
    drivers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("holder", &self.holder)
            .field("jobs", &self.drivers.len())
            .finish()
    }
}

impl Leases {
    /// Runs each of `jobs` while `holder` holds its lease in `store`.
    pub async fn start(
        store: Arc<dyn LeaseStore>,
        holder: String,
        opts: LeaseOptions,
        jobs: Vec<LeasedJob>,
    ) -> anyhow::Result<Self> {
        opts.check()?;
        if opts.sole {
            for l in store.leases().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                if l.holder != holder {
                    store
                        .release_lease(&l.name, &l.holder)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            }
        }
        let (stop, stopped) = watch::channel(false);
        let drivers = jobs
            .into_iter()
            .map(|job| {
                let driver = Driver {
                    store: Arc::clone(&store),
                    holder: holder.clone(),
                    opts: opts.clone(),
                    job,
                    held: None,
                };
                tokio::spawn(driver.run(stopped.clone()))
            })
            .collect();
        Ok(Self {
            holder,
            drivers,
            stop,
        })
    }

    /// This server's holder identity.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Stops every job and releases its lease, so another server takes it
    /// over at its next look (waits at most a few seconds, then aborts).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut drivers = self.drivers;
        let done = tokio::time::timeout(STOP_BOUND, async {
            for d in &mut drivers {
                let _ = d.await;
            }
        })
        .await;
        if done.is_err() {
            tracing::warn!("background jobs still stopping at the end of the bound; aborted");
            for d in &drivers {
                d.abort();
            }
        }
    }

    /// Stops every job at once, releasing nothing (the leases run out).
    pub fn abort(self) {
        for d in &self.drivers {
            d.abort();
        }
    }
}

/// A job's running task, aborted when dropped (so aborting its driver
/// stops the job too).
struct Held {
    task: JoinHandle<()>,
    /// When the job must have stopped unless the lease is renewed.
    deadline: Instant,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Holds one job's lease and runs the job while it is held.
struct Driver {
    store: Arc<dyn LeaseStore>,
    holder: String,
    opts: LeaseOptions,
    job: LeasedJob,
    held: Option<Held>,
}

impl Driver {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut next = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                _ = stopped.changed() => break,
            }
            next = tokio::select! {
                n = self.step() => n,
                _ = stopped.changed() => break,
            };
        }
        self.stop_job("the server is stopping").await;
        // Released even when not held here: a request cut short by the stop
        // may have been granted.
        match self.store.release_lease(&self.job.name, &self.holder).await {
            Ok(true) => {
                tracing::info!(job = %self.job.name, holder = %self.holder, "lease released");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job = %self.job.name, error = %e, "lease not released; it will run out");
            }
        }
    }

    /// Takes or renews the lease once; when to try next.
    async fn step(&mut self) -> Instant {
        let sent = Instant::now();
        let attempt = self
            .store
            .acquire_lease(&self.job.name, &self.holder, self.opts.ttl);
        let outcome = match self.held.as_ref() {
            // The job never runs past its deadline, however long the
            // database takes to answer.
            Some(h) => tokio::time::timeout_at(h.deadline, attempt)
                .await
                .unwrap_or_else(|_| Err(StoreError::new("the renewal was not answered in time"))),
            None => attempt.await,
        };
        let now = Instant::now();
        match outcome {
            Ok(Some(_)) => {
                let deadline = self.opts.deadline(sent);
                match self.held.as_mut() {
                    Some(h) => {
                        h.deadline = deadline;
                        if h.task.is_finished() {
                            tracing::error!(job = %self.job.name, "background job ended by itself; started again");
                            h.task = tokio::spawn((self.job.start)());
                        }
                    }
                    None => {
                        tracing::info!(job = %self.job.name, holder = %self.holder, "background job started");
                        self.held = Some(Held {
                            task: tokio::spawn((self.job.start)()),
                            deadline,
                        });
                    }
                }
                sent + self.opts.renew_every
            }
            Ok(None) => {
                self.stop_job("another server holds its lease").await;
                now + self.opts.poll
            }
            Err(e) => match self.held.as_ref().map(|h| h.deadline) {
                Some(deadline) if now < deadline => {
                    tracing::warn!(job = %self.job.name, error = %e, "lease not renewed; retrying");
                    (now + (self.opts.renew_every / 4).max(Duration::from_millis(50))).min(deadline)
                }
                Some(_) => {
                    tracing::warn!(job = %self.job.name, error = %e, "lease not renewed in time");
                    self.stop_job("its lease could not be renewed").await;
                    now + self.opts.poll
                }
                None => {
                    tracing::warn!(job = %self.job.name, error = %e, "cannot take the lease");
                    now + self.opts.poll
                }
            },
        }
    }

    /// Stops the job if it runs here, and waits until it has.
    async fn stop_job(&mut self, reason: &str) {
        if let Some(mut h) = self.held.take() {
            h.task.abort();
            let _ = (&mut h.task).await;
            tracing::info!(job = %self.job.name, holder = %self.holder, reason, "background job stopped");
        }
    }
}
