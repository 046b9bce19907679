//! The background jobs run once across the servers on one database: each
//! only on the server holding its lease. Two servers over one PostgreSQL
//! database (two lease runners, each over its own `PgStore`): a job runs
//! on exactly one at a time, and moves to the other when its server stops
//! renewing (its database hangs or fails) or stops gracefully. On SQLite
//! the one server takes every lease at start, even one a dead process
//! left. Periods are shortened through the runner's options; the bounds
//! are generous, and only what ran where is asserted.

use crate::common::{capture_log, test_config_on};
use mamori::app::leases::{holder_identity, LeaseOptions, LeasedJob, Leases};
use mamori::app::{self, JOBS};
use mamori_ports::{Lease, LeaseStore, StoreResult};
use mamori_store_pg::PgStore;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;

/// Which servers run the probe job now, how often each started it, and
/// whether two ever ran it at once.
#[derive(Default)]
struct Probe(Mutex<ProbeState>);

#[derive(Default, Debug)]
struct ProbeState {
    running: Vec<&'static str>,
    starts: HashMap<&'static str, usize>,
    overlaps: usize,
}

/// Marks `who` as running the job until dropped (when the job's task is
/// aborted).
struct Running(Arc<Probe>, &'static str);

impl Drop for Running {
    fn drop(&mut self) {
        let mut s = self.0 .0.lock().unwrap_or_else(PoisonError::into_inner);
        s.running.retain(|w| *w != self.1);
    }
}

impl Probe {
    fn job(self: &Arc<Self>, who: &'static str) -> LeasedJob {
        let probe = Arc::clone(self);
        LeasedJob::new("probe", move || {
            let probe = Arc::clone(&probe);
            async move {
                {
                    let mut s = probe.0.lock().unwrap();
                    if !s.running.is_empty() {
                        s.overlaps += 1;
                    }
                    s.running.push(who);
                    *s.starts.entry(who).or_default() += 1;
                }
                let _running = Running(probe, who);
                std::future::pending::<()>().await;
            }
        })
    }

    fn running(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().running.clone()
    }

    /// Waits (at most `bound`) until exactly one server runs the job.
    async fn wait_for_one(&self, bound: Duration) -> &'static str {
        let end = tokio::time::Instant::now() + bound;
        loop {
            if let [one] = self.running()[..] {
                return one;
            }
            assert!(tokio::time::Instant::now() < end, "{:?}", self.check());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn check(&self) -> std::sync::MutexGuard<'_, ProbeState> {
        let s = self.0.lock().unwrap();
        assert_eq!(s.overlaps, 0, "two servers ran the job at once: {s:?}");
        s
    }
}

/// A server's way to its database, which the test can make hang (every
/// call waits forever, a partition) or fail (the database is gone).
struct Link {
    db: PgStore,
    state: AtomicU8,
}

const UP: u8 = 0;
const HANGS: u8 = 1;
const FAILS: u8 = 2;

type Call<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

impl Link {
    fn new(db: PgStore) -> Arc<Self> {
        Arc::new(Self {
            db,
            state: AtomicU8::new(UP),
        })
    }

    async fn through<T>(&self, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        match self.state.load(Ordering::SeqCst) {
            HANGS => std::future::pending().await,
            FAILS => Err(mamori_ports::StoreError::new("the database is unreachable")),
            _ => call.await,
        }
    }
}

impl LeaseStore for Link {
    fn acquire_lease<'a, 'b, 'c, 'f>(
        &'a self,
        name: &'b str,
        holder: &'c str,
        ttl: Duration,
    ) -> Call<'f, Option<OffsetDateTime>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        Box::pin(self.through(self.db.acquire_lease(name, holder, ttl)))
    }

    fn release_lease<'a, 'b, 'c, 'f>(&'a self, name: &'b str, holder: &'c str) -> Call<'f, bool>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        Box::pin(self.through(self.db.release_lease(name, holder)))
    }

    fn leases<'a, 'f>(&'a self) -> Call<'f, Vec<Lease>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.through(self.db.leases()))
    }
}

/// Two servers' lease runners over one fresh PostgreSQL database, each
/// with the probe job; and a third view of the database.
async fn two_servers(
    probe: &Arc<Probe>,
    opts: &LeaseOptions,
) -> (HashMap<&'static str, (Arc<Link>, Leases)>, PgStore) {
    let url = mamori_testkit::pg::shared().fresh_database();
    let mut servers = HashMap::new();
    for who in ["a", "b"] {
        let link = Link::new(PgStore::connect(&url).await.unwrap());
        let leases = Leases::start(
            Arc::clone(&link) as Arc<dyn LeaseStore>,
            holder_identity().unwrap(),
            opts.clone(),
            vec![probe.job(who)],
        )
        .await
        .unwrap();
        servers.insert(who, (link, leases));
    }
    (servers, PgStore::connect(&url).await.unwrap())
}

/// The probe's lease as the database holds it.
async fn holder_of_probe(db: &PgStore) -> Option<String> {
    let leases = db.leases().await.unwrap();
    leases
        .into_iter()
        .find(|l| l.name == "probe")
        .map(|l| l.holder)
}

async fn a_job_moves_when_its_server_stops_renewing(state: u8) {
    let probe = Arc::new(Probe::default());
    let opts = LeaseOptions {
        ttl: Duration::from_secs(6),
        renew_every: Duration::from_millis(500),
        margin: Duration::from_secs(3),
        poll: Duration::from_millis(250),
        sole: false,
    };
    let (servers, db) = two_servers(&probe, &opts).await;
    let first = probe.wait_for_one(Duration::from_secs(30)).await;
    // Renewed well past one lease's length: still on the same server alone.
    let end = tokio::time::Instant::now() + opts.ttl + Duration::from_secs(2);
    while tokio::time::Instant::now() < end {
        assert_eq!(probe.running(), vec![first], "{:?}", probe.check());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        holder_of_probe(&db).await.as_deref(),
        Some(servers[first].1.holder())
    );
    // Its server loses the database: it stops the job before its lease
    // ends, and the other server takes it over.
    servers[first].0.state.store(state, Ordering::SeqCst);
    let second = if first == "a" { "b" } else { "a" };
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while probe.running() != vec![second] {
        drop(probe.check());
        assert!(tokio::time::Instant::now() < end, "{:?}", probe.check());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let s = probe.check();
        assert_eq!((s.starts[first], s.starts[second]), (1, 1), "{s:?}");
    }
    assert_eq!(
        holder_of_probe(&db).await.as_deref(),
        Some(servers[second].1.holder())
    );
    for (_, (_, leases)) in servers {
        leases.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_moves_to_the_other_server_when_its_database_hangs() {
    a_job_moves_when_its_server_stops_renewing(HANGS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_moves_to_the_other_server_when_its_database_fails() {
    a_job_moves_when_its_server_stops_renewing(FAILS).await;
}

/// A graceful stop releases the lease: the other server takes the job at
/// its next look, long before the lease would have run out. Start and
/// stop are logged with the job and the holder. (A current-thread runtime,
/// so the log capture sees the runners' tasks.)
#[tokio::test]
async fn a_graceful_stop_hands_the_job_over_at_once() {
    let (log, _guard) = capture_log(tracing::Level::INFO);
    let probe = Arc::new(Probe::default());
    let opts = LeaseOptions {
        ttl: Duration::from_secs(3600),
        renew_every: Duration::from_secs(1),
        margin: Duration::from_secs(60),
        poll: Duration::from_millis(200),
        sole: false,
    };
    let (mut servers, db) = two_servers(&probe, &opts).await;
    let first = probe.wait_for_one(Duration::from_secs(30)).await;
    let second = if first == "a" { "b" } else { "a" };
    let (_, leases) = servers.remove(first).unwrap();
    let gone = leases.holder().to_owned();
    leases.stop().await;
    assert_eq!(probe.wait_for_one(Duration::from_secs(60)).await, second);
    drop(probe.check());
    let (_, other) = servers.remove(second).unwrap();
    assert_eq!(holder_of_probe(&db).await.as_deref(), Some(other.holder()));
    let text = log.text();
    for (what, holder) in [
        ("background job started", &gone),
        ("background job stopped", &gone),
        ("lease released", &gone),
        ("background job started", &other.holder().to_owned()),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(what) && l.contains("job=probe") && l.contains(holder)),
            "{what} {holder}:\n{text}"
        );
    }
    other.abort();
}

/// On SQLite the server takes every job's lease at start, even one a dead
/// server left for an hour more, and releases them when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_server_takes_every_lease_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config_on(dir.path(), false);
    let running = app::start(&config).await.unwrap();
    let first = running.job_holder().to_owned();
    assert!(
        first.contains(&format!(":{}:", std::process::id())),
        "{first}"
    );
    every_job_held_by(&running, &first).await;
    running.stop(Duration::from_secs(5)).await;
    // Released at stop; then a server dies holding the reconciler's lease.
    let store = app::open_store(&config.data_dir).await.unwrap();
    assert_eq!(store.leases().await.unwrap(), vec![], "released at stop");
    let hour = Duration::from_secs(3600);
    assert!(store
        .acquire_lease("reconciler", "dead:1:00", hour)
        .await
        .unwrap()
        .is_some());
    store.close().await;
    let running = app::start(&config).await.unwrap();
    let me = running.job_holder().to_owned();
    assert_ne!(me, first, "one holder per process start");
    every_job_held_by(&running, &me).await;
    running.shutdown();
}

/// Waits (at most 30 s) until `holder` holds every job's lease.
async fn every_job_held_by(running: &app::Running, holder: &str) {
    let mut want: Vec<(String, String)> = JOBS
        .iter()
        .map(|j| ((*j).to_owned(), holder.to_owned()))
        .collect();
    want.sort();
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let held: Vec<(String, String)> = running
            .services
            .store
            .leases()
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.name, l.holder))
            .collect();
        if held == want {
            return;
        }
        assert!(tokio::time::Instant::now() < end, "{held:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
