//! A budget for request bodies buffered on the device listener.
//!
//! Check-in, connect and SCEP bodies are read whole before the sender can
//! be authenticated (the signature covers the bytes). Each route caps its
//! own body, but without a total one address could hold hundreds of 8 MiB
//! bodies in memory at once (100 HTTP/2 streams on each of its
//! connections). A request reserves its declared `Content-Length` (its
//! route's cap when it declares none) before its body is read, and gives it
//! back when its answer is ready; a declared length over the cap is
//! answered 413 at once; over the budget it gets 503 with
//! `Retry-After` at once, and one source address (an IPv6 /64 counting as
//! one, as for the connection caps) may hold at most a quarter of the
//! budget, so a slow uploader cannot starve every device.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Bytes of device request bodies held at once.
pub const DEVICE_BODY_BUDGET: u64 = 64 * 1024 * 1024;

/// The share of the budget one source address may hold.
const PER_SOURCE_SHARE: u64 = DEVICE_BODY_BUDGET / 4;

/// Bodies being read or handled, in bytes: in total and per source.
#[derive(Debug, Default)]
pub struct BodyBudget {
    held: Mutex<(u64, HashMap<IpAddr, u64>)>,
}

/// A reservation, returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    source: Option<IpAddr>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = match self.budget.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        held.0 = held.0.saturating_sub(self.bytes);
        if let Some(ip) = self.source {
            if let Some(n) = held.1.get_mut(&ip) {
                *n = n.saturating_sub(self.bytes);
                if *n == 0 {
                    held.1.remove(&ip);
                }
            }
        }
    }
}

impl BodyBudget {
    /// Reserves `bytes` for `source`, or `None` when that would exceed the
    /// total or the source's share.
    pub fn reserve(self: &Arc<Self>, source: Option<IpAddr>, bytes: u64) -> Option<Reservation> {
        let mut held = match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        if held.0.saturating_add(bytes) > DEVICE_BODY_BUDGET {
            return None;
        }
        if let Some(ip) = source {
            let mine = held.1.get(&ip).copied().unwrap_or(0);
            if mine.saturating_add(bytes) > PER_SOURCE_SHARE {
                return None;
            }
            held.1.insert(ip, mine + bytes);
        }
        held.0 += bytes;
        Some(Reservation {
            budget: Arc::clone(self),
            source,
            bytes,
        })
    }
}

/// The budget and the largest body a route accepts.
#[derive(Debug, Clone)]
pub struct BudgetState {
    /// The shared budget.
    pub budget: Arc<BodyBudget>,
    /// The route's body cap (charged when no length is declared).
    pub cap: u64,
}

/// Middleware: reserve the body before it is read.
pub async fn reserve_body(State(st): State<BudgetState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length over the cap is refused at once, without reading
    // or holding anything.
    if declared.is_some_and(|d| d > st.cap) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large (at most {} bytes)", st.cap),
        )
            .into_response();
    }
    let bytes = declared.unwrap_or(st.cap);
    let source = req
        .extensions()
        .get::<crate::tls::PeerAddr>()
        .map(|a| crate::conn::source_key(a.0.ip()));
    let Some(reservation) = st.budget.reserve(source, bytes) else {
        tracing::warn!(
            bytes,
            "device request refused: too many request bodies in flight"
        );
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, "busy; try again shortly").into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    let response = next.run(req).await;
    drop(reservation);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_total_and_each_source_share_are_bounded() {
        let b = Arc::new(BodyBudget::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let c: IpAddr = "192.0.2.2".parse().unwrap();
        let mib = 1024 * 1024;
        // One source: a quarter of the budget, no more.
        let held: Vec<_> = (0..2)
            .map(|_| b.reserve(Some(a), 8 * mib).unwrap())
            .collect();
        assert!(b.reserve(Some(a), 8 * mib).is_none());
        // Others still fit, up to the total.
        let mut others = Vec::new();
        for i in 0..6u8 {
            let ip: IpAddr = format!("198.51.100.{i}").parse().unwrap();
            others.push(b.reserve(Some(ip), 8 * mib).unwrap());
        }
        assert!(b.reserve(Some(c), 1).is_none(), "total reached");
        drop(held);
        assert!(b.reserve(Some(c), 8 * mib).is_some(), "given back on drop");
        drop(others);
    }
}
