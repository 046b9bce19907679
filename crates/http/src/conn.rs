//! Bounds on what one connection, one address and all connections together
//! may hold on a listener: connection caps (total and per source address),
//! timeouts for every phase of a connection (TLS handshake, request headers,
//! request body, idle keep-alive), back-off on accept errors and
//! rate-limited logging of refusals, so that neither idle nor trickling
//! clients nor a full descriptor table can stop a listener. A full
//! listener makes way for a newcomer by evicting a connection that has not
//! authenticated, from the network holding the most (see
//! [`Tracker::try_acquire`]): connections held half-open cannot lock the
//! administrators out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Limits of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest a client may take to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// Longest a client may take to send a request's headers once it
    /// started (HTTP/1; on HTTP/2 an incomplete request is not in flight,
    /// so `idle_timeout` bounds it).
    pub header_timeout: Duration,
    /// Time a request body may take beyond what `body_min_rate` allows for
    /// the bytes received so far: a body must arrive within
    /// `body_timeout + received / body_min_rate`.
    pub body_timeout: Duration,
    /// Slowest sustained body rate (bytes per second) earning more time.
    pub body_min_rate: u64,
    /// A connection with no request in flight for this long is closed
    /// (HTTP/1.1 keep-alive and HTTP/2 alike).
    pub idle_timeout: Duration,
    /// Once a connection is asked to close (idle, slow body, shutdown),
    /// the time it has to finish before it is dropped.
    pub close_grace: Duration,
    /// Connections held at once on the listener.
    pub max_connections: usize,
    /// Connections held at once from one source address (IPv4 address or
    /// IPv6 /64).
    pub max_connections_per_ip: usize,
}

impl Limits {
    /// The device listener: many devices may sit behind one corporate NAT,
    /// but a device session lasts seconds (a push wakes it, it connects,
    /// fetches commands and goes away), so a few hundred connections at
    /// once from one address is a very large site; one address still
    /// cannot take more than a sixteenth of the listener.
    pub fn device() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: 256,
            ..Self::common()
        }
    }

    /// The admin listener: a handful of administrators and automation.
    pub fn admin() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_ip: 64,
            ..Self::common()
        }
    }

    fn common() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 16 * 1024,
            idle_timeout: Duration::from_secs(30),
            close_grace: Duration::from_secs(10),
            max_connections: 256,
            max_connections_per_ip: 64,
        }
    }
}

/// Descriptors kept out of the listeners' reach for everything else the
/// server opens (database, WAL, logs, APNs and sink connections, key files)
/// and for evicted connections still closing (at most [`MAX_EVICTING`] per
/// listener).
pub const RESERVED_DESCRIPTORS: u64 = 128;

/// Lowers the two listeners' connection caps so that together they fit in
/// `open_files` descriptors (less [`RESERVED_DESCRIPTORS`]), sharing what
/// there is in proportion to the caps: a cap the descriptor table cannot
/// hold would let connections exhaust it, and then neither listener can
/// accept anything. Returns whether anything changed.
pub fn fit_to_descriptors(device: &mut Limits, admin: &mut Limits, open_files: u64) -> bool {
    let wanted = (device.max_connections + admin.max_connections) as u64;
    let room = open_files.saturating_sub(RESERVED_DESCRIPTORS).max(16);
    if wanted <= room {
        return false;
    }
    let admin_share = (room * admin.max_connections as u64 / wanted).max(4);
    let device_share = room.saturating_sub(admin_share).max(4);
    admin.max_connections = usize::try_from(admin_share).unwrap_or(usize::MAX);
    device.max_connections = usize::try_from(device_share).unwrap_or(usize::MAX);
    for l in [device, admin] {
        l.max_connections_per_ip = l.max_connections_per_ip.min(l.max_connections);
    }
    true
}

/// The key a connection counts against: the IPv4 address, or the /64 of an
/// IPv6 address (one subscriber usually holds a whole /64).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The network a connection belongs to when a full listener chooses whom
/// to evict: the IPv4 /24, or the IPv6 /48 (a home subscriber is often
/// given a /56: 256 sources of its own at /64).
pub fn network_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, 0))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds `max_connections`, and no held connection may
    /// make way (see [`Tracker::try_acquire`]).
    Total,
    /// The source holds `max_connections_per_ip`.
    PerSource,
}

/// Connections told to make way that may still hold their descriptor:
/// beyond this many, a full listener refuses rather than evicts, so its
/// open sockets never exceed its cap by more than this.
pub const MAX_EVICTING: usize = 16;

/// How one connection stands with its listener: whether a request on it
/// authenticated (such a connection is never evicted) and whether it was
/// told to make way for a newer one.
#[derive(Debug, Default)]
pub struct Standing {
    trusted: AtomicBool,
    evicted: AtomicBool,
    evict: Notify,
}

impl Standing {
    /// A request on this connection presented valid credentials (an
    /// administrator's session or token, a device's identity).
    pub fn trust(&self) {
        self.trusted.store(true, Ordering::SeqCst);
    }

    /// Whether a request on this connection authenticated.
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    /// Resolves once the listener evicted this connection.
    pub async fn evicted(&self) {
        loop {
            let notified = self.evict.notified();
            if self.evicted.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        self.evict.notify_waiters();
    }
}

#[derive(Debug)]
struct Held {
    net: IpAddr,
    standing: Arc<Standing>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Connections held, evicted ones that have not let go included.
    total: usize,
    /// Of those, evicted ones (their slot already went to a newer one).
    evicting: usize,
    per_source: HashMap<IpAddr, usize>,
    /// Every held connection, by a number growing with its age.
    held: std::collections::BTreeMap<u64, Held>,
    next: u64,
}

impl Counts {
    /// The connection to evict for a newcomer from network `newcomer`
    /// ([`network_key`]): the oldest connection not yet authenticated from
    /// the network holding the most such connections — provided it holds
    /// more than the newcomer's network does, so a network never loses a
    /// connection to one that holds as many as it does or more.
    fn victim(&self, newcomer: IpAddr) -> Option<u64> {
        let mut unproven: HashMap<IpAddr, (usize, u64)> = HashMap::new();
        let mut own = 0;
        for (&id, h) in &self.held {
            if h.standing.evicted.load(Ordering::SeqCst) {
                continue;
            }
            if h.net == newcomer {
                own += 1;
            }
            if h.standing.is_trusted() {
                continue;
            }
            // Ids ascend: the first one seen per network is its oldest.
            unproven.entry(h.net).or_insert((0, id)).0 += 1;
        }
        unproven
            .into_values()
            .filter(|&(n, _)| n > own)
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, id)| id)
    }
}

/// Counts the connections a listener holds, in total and per source.
#[derive(Debug)]
pub struct Tracker {
    max_total: usize,
    max_per_source: usize,
    counts: Mutex<Counts>,
    drained: Notify,
}

impl Tracker {
    /// A tracker enforcing `limits`' caps.
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            max_total: limits.max_connections.max(1),
            max_per_source: limits.max_connections_per_ip.max(1),
            counts: Mutex::new(Counts::default()),
            drained: Notify::new(),
        })
    }

    /// A slot for a connection from `ip`, or why there is none.
    ///
    /// A full listener makes way rather than refuse when it can: it evicts
    /// the oldest connection on which no request has authenticated yet,
    /// from the network ([`network_key`]: IPv4 /24, IPv6 /48) holding the
    /// most such connections, if that network holds more connections than
    /// `ip`'s does. Connections held half-open from a few networks (a
    /// slow-headers attack, from a handful of addresses or every /64 of a
    /// home /56) therefore cannot keep an administrator from signing in,
    /// nor take an authenticated connection away, while a network holding
    /// as many connections as the evicting one stays untouched. An
    /// attacker spread over more networks than the listener has
    /// connections is beyond this; the admin allow-list is the answer. When nothing can make way (every
    /// connection authenticated, or [`MAX_EVICTING`] still closing) the
    /// newcomer is refused.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let key = source_key(ip);
        let mut c = lock(&self.counts);
        if c.per_source.get(&key).copied().unwrap_or(0) >= self.max_per_source {
            return Err(Refusal::PerSource);
        }
        if c.total - c.evicting >= self.max_total {
            let victim = (c.evicting < MAX_EVICTING)
                .then(|| c.victim(network_key(ip)))
                .flatten()
                .ok_or(Refusal::Total)?;
            if let Some(h) = c.held.get(&victim) {
                h.standing.evict();
            }
            c.evicting += 1;
        }
        *c.per_source.entry(key).or_insert(0) += 1;
        c.total += 1;
        let id = c.next;
        c.next += 1;
        let standing = Arc::new(Standing::default());
        c.held.insert(
            id,
            Held {
                net: network_key(ip),
                standing: Arc::clone(&standing),
            },
        );
        Ok(Permit {
            tracker: Arc::clone(self),
            key,
            id,
            standing,
        })
    }

    /// Connections held now.
    pub fn total(&self) -> usize {
        lock(&self.counts).total
    }

    /// Resolves once no connection is held.
    pub async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            if self.total() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A held connection slot, given back on drop.
#[derive(Debug)]
pub struct Permit {
    tracker: Arc<Tracker>,
    key: IpAddr,
    id: u64,
    standing: Arc<Standing>,
}

impl Permit {
    /// How the connection stands: mark it trusted, learn it was evicted.
    pub fn standing(&self) -> &Arc<Standing> {
        &self.standing
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = lock(&self.tracker.counts);
        c.total = c.total.saturating_sub(1);
        c.held.remove(&self.id);
        if self.standing.evicted.load(Ordering::SeqCst) {
            c.evicting = c.evicting.saturating_sub(1);
        }
        if let Some(n) = c.per_source.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_source.remove(&self.key);
            }
        }
        if c.total == 0 {
            self.tracker.drained.notify_waiters();
        }
    }
}

/// Exponential back-off after failed accepts (e.g. EMFILE: the descriptor
/// table is full, and retrying at once only spins): 10 ms doubling to 1 s,
/// back to nothing after a success.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    delay: Duration,
}

impl AcceptBackoff {
    /// First delay.
    pub const MIN: Duration = Duration::from_millis(10);
    /// Longest delay.
    pub const MAX: Duration = Duration::from_secs(1);

    /// The time to wait after one more failure.
    pub fn failed(&mut self) -> Duration {
        self.delay = if self.delay.is_zero() {
            Self::MIN
        } else {
            (self.delay * 2).min(Self::MAX)
        };
        self.delay
    }

    /// An accept succeeded.
    pub fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
    }
}

/// Lets one log line through per interval, counting what it held back.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    last: Option<std::time::Instant>,
    held: u64,
}

impl LogThrottle {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// One more event at `now`: `Some(n)` when a line may be written now,
    /// covering `n` events (this one and those held back since the last
    /// line).
    pub fn hit(&mut self, now: std::time::Instant) -> Option<u64> {
        self.held += 1;
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

mod activity;
pub use activity::{BodyTimeout, CloseReason, ConnState, InFlight, TimedBody, TrackedBody};

#[cfg(test)]
mod tests;
