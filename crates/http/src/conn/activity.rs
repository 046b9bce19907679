//! What one connection is doing (requests in flight, idle since when) and
//! the bodies that keep that account: a response body holds its request in
//! flight until sent; a request body must arrive at a minimum rate.

use super::{lock, Limits};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

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
    /// The listener evicted it while a request was in flight (the request
    /// may finish within the close grace).
    Evicted,
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

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        lock(&self.activity).in_flight
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
