//! Bounds on what one connection, one address and all connections together
//! may hold on a listener: connection caps (total and per source address),
//! timeouts for every phase of a connection (TLS handshake, request headers,
//! request body, idle keep-alive), back-off on accept errors and
//! rate-limited logging of refusals, so that neither idle nor trickling
//! clients nor a full descriptor table can stop a listener.

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

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
/// server opens (database, WAL, logs, APNs and sink connections, key files).
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds `max_connections`.
    Total,
    /// The source holds `max_connections_per_ip`.
    PerSource,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
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
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let key = source_key(ip);
        let mut c = lock(&self.counts);
        if c.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let n = c.per_source.entry(key).or_insert(0);
        if *n >= self.max_per_source {
            return Err(Refusal::PerSource);
        }
        *n += 1;
        c.total += 1;
        Ok(Permit {
            tracker: Arc::clone(self),
            key,
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
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = lock(&self.tracker.counts);
        c.total = c.total.saturating_sub(1);
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

#[derive(Debug)]
struct Activity {
    in_flight: usize,
    idle_since: Instant,
}

/// What one connection is doing: requests in flight and since when none
/// is, and whether something asked for it to close.
#[derive(Debug)]
pub struct ConnState {
    activity: Mutex<Activity>,
    changed: Notify,
    close: AtomicBool,
}

/// Why a connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No request in flight for the idle timeout.
    Idle,
    /// A request body was too slow.
    SlowBody,
    /// The server is stopping.
    Shutdown,
}

impl ConnState {
    /// A connection that just opened (idle from now).
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            activity: Mutex::new(Activity {
                in_flight: 0,
                idle_since: Instant::now(),
            }),
            changed: Notify::new(),
            close: AtomicBool::new(false),
        })
    }

    /// A request started; it is in flight until the guard drops (hold it
    /// in the response body).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        lock(&self.activity).in_flight += 1;
        self.changed.notify_one();
        InFlight(Arc::clone(self))
    }

    /// Asks the connection to close (after the response in progress).
    pub fn request_close(&self) {
        self.close.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// Resolves when the connection should close: nothing in flight for
    /// `idle`, or a close was requested.
    pub async fn should_close(&self, idle: Duration) -> CloseReason {
        loop {
            let notified = self.changed.notified();
            if self.close.load(Ordering::SeqCst) {
                return CloseReason::SlowBody;
            }
            let (in_flight, since) = {
                let a = lock(&self.activity);
                (a.in_flight, a.idle_since)
            };
            if in_flight == 0 {
                let deadline = since + idle;
                if Instant::now() >= deadline {
                    return CloseReason::Idle;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = notified => {}
                }
            } else {
                notified.await;
            }
        }
    }
}

/// A request in flight on its connection.
#[derive(Debug)]
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut a = lock(&self.0.activity);
            a.in_flight = a.in_flight.saturating_sub(1);
            if a.in_flight == 0 {
                a.idle_since = Instant::now();
            }
        }
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request in flight until it is sent (or
/// dropped).
#[derive(Debug)]
pub struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> TrackedBody<B> {
    /// `inner`, holding `in_flight` until dropped.
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body arrived too slowly.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body timed out")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that must arrive within `body_timeout` plus the time
/// `body_min_rate` allows for the bytes received so far; when it does not,
/// reading it fails and its connection is asked to close.
#[derive(Debug)]
pub struct TimedBody {
    inner: Incoming,
    start: Instant,
    allowance: Duration,
    min_rate: u64,
    received: u64,
    sleep: Pin<Box<Sleep>>,
    expired: bool,
    conn: Arc<ConnState>,
}

impl TimedBody {
    /// Times `inner`, received from now on `conn`.
    pub fn new(inner: Incoming, limits: &Limits, conn: Arc<ConnState>) -> Self {
        let start = Instant::now();
        Self {
            inner,
            start,
            allowance: limits.body_timeout,
            min_rate: limits.body_min_rate.max(1),
            received: 0,
            sleep: Box::pin(tokio::time::sleep_until(start + limits.body_timeout)),
            expired: false,
            conn,
        }
    }

    fn deadline(&self) -> Instant {
        let earned = Duration::from_millis(self.received.saturating_mul(1000) / self.min_rate);
        self.start + self.allowance + earned
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                    let deadline = this.deadline();
                    this.sleep.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired = true;
                    this.conn.request_close();
                    Poll::Ready(Some(Err(BodyTimeout.into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_a_second_and_resets() {
        let mut b = AcceptBackoff::default();
        let delays: Vec<u64> = (0..9).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), AcceptBackoff::MIN);
    }

    #[test]
    fn a_burst_of_errors_logs_once_per_second_with_a_count() {
        let mut t = LogThrottle::new(Duration::from_secs(1));
        let t0 = std::time::Instant::now();
        // 20 failures a second for three seconds (what filled the log).
        let mut lines = Vec::new();
        for i in 0..60u64 {
            if let Some(n) = t.hit(t0 + Duration::from_millis(i * 50)) {
                lines.push(n);
            }
        }
        assert_eq!(lines, [1, 20, 20]);
    }

    #[test]
    fn caps_count_per_source_and_in_total_and_free_on_drop() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::admin()
        };
        let t = Tracker::new(&limits);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = t.try_acquire(a).unwrap();
        let _a2 = t.try_acquire(a).unwrap();
        assert_eq!(t.try_acquire(a).unwrap_err(), Refusal::PerSource);
        let _b1 = t.try_acquire(b).unwrap();
        assert_eq!(t.try_acquire(b).unwrap_err(), Refusal::Total);
        drop(a1);
        assert_eq!(t.total(), 2);
        let _a3 = t.try_acquire(a).unwrap();
        // An IPv4-mapped address is the same source; one /64 is one source.
        assert_eq!(
            t.try_acquire("::ffff:192.0.2.1".parse().unwrap())
                .unwrap_err(),
            Refusal::Total
        );
        assert_eq!(
            source_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            source_key("2001:db8:1:2:ffff::1".parse().unwrap())
        );
    }

    #[test]
    fn caps_shrink_to_fit_the_descriptor_table() {
        let (mut d, mut a) = (Limits::device(), Limits::admin());
        assert!(!fit_to_descriptors(&mut d, &mut a, 1 << 20));
        assert_eq!((d.max_connections, a.max_connections), (4096, 256));
        // The table of the original report: 256 descriptors.
        assert!(fit_to_descriptors(&mut d, &mut a, 256));
        assert!(d.max_connections + a.max_connections <= 256 - 128);
        assert!(a.max_connections >= 4 && d.max_connections > a.max_connections);
        assert!(d.max_connections_per_ip <= d.max_connections);
        assert!(a.max_connections_per_ip <= a.max_connections);
    }

    #[tokio::test]
    async fn an_idle_connection_is_told_to_close_only_when_nothing_is_in_flight() {
        let s = ConnState::new();
        let idle = Duration::from_millis(200);
        let req = s.begin();
        // Busy for longer than the idle timeout: not idle.
        let waited = tokio::time::timeout(Duration::from_millis(600), s.should_close(idle)).await;
        assert!(waited.is_err());
        drop(req);
        let t0 = Instant::now();
        assert_eq!(s.should_close(idle).await, CloseReason::Idle);
        assert!(Instant::now() - t0 >= idle);
        s.request_close();
        assert_eq!(s.should_close(idle).await, CloseReason::SlowBody);
    }
}
