//! Mamori's PostgreSQL backend: the same ports as the SQLite backend
//! (`mamori-store`), for installations that outgrow one machine. Several
//! servers may share one database; everything that must happen once (the
//! audit chain's next link, a challenge's last use) is decided inside
//! PostgreSQL, never in one server's memory.
//!
//! # Execution model
//!
//! `tokio-postgres` with a `deadpool-postgres` pool: every statement is an
//! async round trip on the calling task (no blocking thread), and every
//! connection caches its prepared statements.
//!
//! # Concurrency
//!
//! SQLite runs one writer at a time, so a transaction there may read and
//! then write on what it read. PostgreSQL runs writers at once (READ
//! COMMITTED), so a transaction here that decides on what it read first
//! takes the advisory locks of the [`Area`]s it decides on
//! ([`lock`], held to its commit), from every server alike. A single
//! statement that checks and changes at once (`UPDATE … WHERE uses <
//! max_uses`) needs none.

mod admins;
mod approvals;
mod audit;
mod audit_retention;
mod certs;
mod compliance;
mod control;
mod copy;
mod departments;
mod devices;
mod ephemeral;
mod groups;
mod identity;
mod incidents;
mod inventory;
mod keyring;
mod leases;
mod people;
mod policies;
mod queue;
mod reads;
mod reenroll;
mod schema;
mod sinks;
mod snapshot;
mod tls;
mod tokens;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use mamori_ports::{StoreError, StoreResult};
use time::OffsetDateTime;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;

pub use deadpool_postgres::Transaction;
pub use snapshot::PgSnapshot;

/// How long a request waits for a pooled connection.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long opening a connection may take, unless the URL says otherwise
/// (`connect_timeout`).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bounds what a lost database can make a server wait for: connecting,
/// and a connection whose peer vanished (a partition, a failover): TCP
/// keep-alives and a user timeout end it within about 30 s, so its
/// request fails, the pool opens a new one, and the identity watch
/// reports itself lost instead of listening to nothing. What the URL sets
/// is kept.
fn bound_waits(config: &mut tokio_postgres::Config) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives(true);
    config.keepalives_idle(std::time::Duration::from_secs(10));
    config.keepalives_interval(std::time::Duration::from_secs(5));
    config.keepalives_retries(3);
    #[cfg(target_os = "linux")]
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(std::time::Duration::from_secs(30));
    }
}

/// Connections in each server's pool, unless the URL says otherwise
/// (`pool_max_size`).
const POOL_SIZE: usize = 16;

/// The PostgreSQL backend.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Where the database is (for connections outside the pool: a watch).
    config: std::sync::Arc<tokio_postgres::Config>,
    /// How every connection, the pool's and a watch's, reaches it.
    tls: std::sync::Arc<tls::Tls>,
    /// Tasks that live as long as the store (watches), stopped by `close`.
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// Where this store's last append left the audit chain: the next
    /// append tries it first (`audit.rs`).
    chain_end: std::sync::Arc<std::sync::Mutex<Option<mamori_domain::chain::ChainLink>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .finish()
    }
}

impl PgStore {
    /// Connects to the database named by `url` (`postgres://…`, or a
    /// libpq key=value string) and brings its schema up to date. Several
    /// servers starting at once migrate one after another. TLS follows
    /// libpq's `sslmode` and `sslrootcert` (module `tls`: over TCP to
    /// another machine, verified TLS unless `sslmode=disable`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let (url, pool_size) = split_pool_size(url)?;
        let (mut config, tls) = tls::Tls::from_url(&url)?;
        bound_waits(&mut config);
        let manager = Manager::from_config(
            config.clone(),
            tls.connector(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            // A request waits this long for a free connection, then fails
            // (500) instead of hanging.
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(StoreError::from_cause)?;
        let store = Self {
            pool,
            config: std::sync::Arc::new(config),
            tls: std::sync::Arc::new(tls),
            tasks: Default::default(),
            chain_end: Default::default(),
        };
        let mut c = store.conn().await?;
        schema::migrate(&mut c).await?;
        Ok(store)
    }

    /// Closes the pool: connections in use end when returned, later calls
    /// fail with a `StoreError`.
    pub fn close(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
        self.pool.close();
    }

    /// A pooled connection.
    pub(crate) async fn conn(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => self.tls.connect_error(e),
            e => StoreError::from_cause(e),
        })
    }
}

/// Takes `pool_max_size=N` out of a URL's query (deadpool's setting, not
/// libpq's, which would refuse it).
fn split_pool_size(url: &str) -> StoreResult<(String, usize)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), POOL_SIZE));
    };
    let mut size = POOL_SIZE;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("pool_max_size=") {
            Some(n) => {
                size = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| StoreError::new("pool_max_size must be 1 to 1000"))?;
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, size))
}

/// What a transaction may lock while it decides on what it read. Locks are
/// transaction-scoped advisory locks, shared by every server on the
/// database; [`lock`] takes several in this order, so two transactions
/// never wait on each other crosswise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Area {
    /// Enrollment profiles, links and issued certificates.
    Enrollment = 1,
    /// The command queue.
    Queue = 3,
    /// Administrators, their factors, sessions, tokens and control links.
    Admins = 4,
    /// People and their keys.
    People = 5,
    /// Incidents.
    Incidents = 7,
    /// Policies, groups and what each device was sent.
    Policies = 8,
    /// The audit chain: its next link, checkpoints and truncations.
    Audit = 9,
    /// The bulk-read limit's windows.
    Reads = 10,
}

/// A namespace for Mamori's advisory locks (the high 32 bits of the key),
/// so they never collide with another application's on the same database.
pub(crate) const LOCK_SPACE: i64 = 0x6d61_6d6f << 32;

/// Takes the advisory locks of `areas` (in [`Area`] order), held until the
/// transaction ends.
pub(crate) async fn lock(tx: &Transaction<'_>, areas: &[Area]) -> StoreResult<()> {
    let mut areas = areas.to_vec();
    areas.sort();
    areas.dedup();
    for a in areas {
        let key = LOCK_SPACE | a as i64;
        exec(tx, "SELECT pg_advisory_xact_lock($1)", &[&key]).await?;
    }
    Ok(())
}

/// A PostgreSQL failure. Its text names the server's SQLSTATE and message
/// (tokio-postgres's own says only "db error"), never the error's detail,
/// which may quote stored values.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(d) => format!("PostgreSQL {}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    };
    StoreError::with_cause(text, e)
}

/// Whether `e` is a unique-constraint violation (SQLSTATE 23505).
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|c| *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Parameters of a statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Executes a cached statement; returns the number of rows changed.
pub(crate) async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(db)?;
    c.execute(&stmt, params).await.map_err(db)
}

/// Runs a cached statement; its first row, if any (more are an error).
pub(crate) async fn query_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(db)?;
    c.query_opt(&stmt, params).await.map_err(db)
}

/// Runs a cached statement; every row.
pub(crate) async fn query_all(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(db)?;
    c.query(&stmt, params).await.map_err(db)
}

/// One column of a row by name.
pub(crate) fn col<'a, T: FromSql<'a>>(r: &'a Row, name: &str) -> StoreResult<T> {
    r.try_get(name).map_err(db)
}

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(v: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(v).map_err(StoreError::from_cause)
}

pub(crate) fn from_opt_ts(v: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    v.map(from_ts).transpose()
}

pub(crate) fn json_col(v: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    v.map(|s| serde_json::from_str(&s).map_err(StoreError::from_cause))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_database_cannot_make_a_server_wait_forever() {
        let mut c = "postgres://m@db.example.com/x"
            .parse::<tokio_postgres::Config>()
            .unwrap_or_else(|e| panic!("{e}"));
        bound_waits(&mut c);
        assert_eq!(c.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert!(c.get_keepalives());
        #[cfg(target_os = "linux")]
        assert_eq!(
            c.get_tcp_user_timeout(),
            Some(&std::time::Duration::from_secs(30))
        );
        // What the operator wrote is kept.
        let mut c = "postgres://m@db/x?connect_timeout=3"
            .parse::<tokio_postgres::Config>()
            .unwrap_or_else(|e| panic!("{e}"));
        bound_waits(&mut c);
        assert_eq!(
            c.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
    }

    #[test]
    fn the_pool_size_is_taken_out_of_the_url() {
        let (url, n) = split_pool_size("postgres://m@h/db?pool_max_size=4&sslmode=disable")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((url.as_str(), n), ("postgres://m@h/db?sslmode=disable", 4));
        let (url, n) =
            split_pool_size("postgres://m@/db?pool_max_size=8").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((url.as_str(), n), ("postgres://m@/db", 8));
        let (url, n) = split_pool_size("postgres://m@/db").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((url.as_str(), n), ("postgres://m@/db", POOL_SIZE));
        assert!(split_pool_size("postgres://m@/db?pool_max_size=0").is_err());
        assert!(split_pool_size("postgres://m@/db?pool_max_size=x").is_err());
    }
}
