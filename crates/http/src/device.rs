//! The device listener's routes: SCEP, check-in and connect. Thin: extract,
//! call the service, map the answer.

use crate::budget::{reserve_body, BodyBudget, BudgetState};
use crate::error::DeviceError;
use crate::tls::{ConnStanding, PeerAddr, PeerCertificate};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use base64::Engine;
use mamori_core::device::identity::Evidence;
use mamori_core::{CoreError, Services};
use mamori_domain::log_safe;
use std::sync::Arc;

/// Largest check-in message accepted.
pub const CHECKIN_LIMIT: usize = 256 * 1024;
/// Largest connect request (command results such as app lists can be big).
pub const CONNECT_LIMIT: usize = 8 * 1024 * 1024;
/// Largest SCEP message.
pub const SCEP_LIMIT: usize = 64 * 1024;

/// Routes devices use. Nothing administrative is reachable here.
pub fn router(services: Services) -> Router {
    // Every body is held in memory until its sender is proven: budgets for
    // them (crate::budget). Check-in and connect bodies are read only for
    // a request that claims a recorded device identity (the signature over
    // the body is checked once it has arrived); SCEP, which comes before
    // any identity, has a budget of its own, so that filling it delays
    // enrollments but never an enrolled device.
    let (scep_budget, device_budget) = (
        Arc::new(BodyBudget::default()),
        Arc::new(BodyBudget::default()),
    );
    let reserve = |budget: &Arc<BodyBudget>, cap: usize| {
        middleware::from_fn_with_state(
            BudgetState {
                budget: Arc::clone(budget),
                cap: cap as u64,
            },
            reserve_body,
        )
    };
    let identified = middleware::from_fn_with_state(services.clone(), identified_first);
    Router::new()
        .route(
            "/scep",
            get(scep_get)
                .post(scep_post)
                .layer(DefaultBodyLimit::max(SCEP_LIMIT))
                .layer(reserve(&scep_budget, SCEP_LIMIT)),
        )
        .route(
            "/cgi-bin/pkiclient.exe",
            get(scep_get)
                .post(scep_post)
                .layer(DefaultBodyLimit::max(SCEP_LIMIT))
                .layer(reserve(&scep_budget, SCEP_LIMIT)),
        )
        .route(
            "/mdm/checkin",
            put(checkin)
                .post(checkin)
                .layer(DefaultBodyLimit::max(CHECKIN_LIMIT))
                .layer(reserve(&device_budget, CHECKIN_LIMIT))
                .layer(identified.clone()),
        )
        .route(
            "/mdm/connect",
            put(connect)
                .post(connect)
                .layer(DefaultBodyLimit::max(CONNECT_LIMIT))
                .layer(reserve(&device_budget, CONNECT_LIMIT))
                .layer(identified),
        )
        .route("/enroll/{secret}", get(download_profile))
        .fallback(not_found)
        .with_state(services)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

async fn download_profile(
    State(s): State<Services>,
    axum::extract::Path(secret): axum::extract::Path<String>,
) -> Result<Response, DeviceError> {
    let bytes = s.download_enrollment_profile(&secret).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mamori-enroll.mobileconfig\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

fn evidence<'a>(
    headers: &'a HeaderMap,
    peer: &'a PeerCertificate,
    addr: Option<axum::Extension<PeerAddr>>,
) -> Evidence<'a> {
    Evidence {
        mdm_signature: headers.get("Mdm-Signature").and_then(|v| v.to_str().ok()),
        tls_peer: peer.0.as_deref().map(Vec::as_slice),
        source: addr.map(|a| a.0 .0.ip()),
    }
}

/// Middleware before a check-in or connect body is read: the request must
/// claim a device identity of ours ([`Services::claims_device_identity`]),
/// else it is answered at once and its body never read.
async fn identified_first(
    State(s): State<Services>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let headers = req.headers();
    let peer = req
        .extensions()
        .get::<PeerCertificate>()
        .cloned()
        .unwrap_or_default();
    let addr = req.extensions().get::<PeerAddr>().copied();
    let ev = evidence(headers, &peer, addr.map(axum::Extension));
    if let Err(e) = s.claims_device_identity(ev).await {
        return DeviceError::from(e).into_response();
    }
    next.run(req).await
}

fn peer_of(req_ext: Option<axum::Extension<PeerCertificate>>) -> PeerCertificate {
    req_ext.map(|e| e.0).unwrap_or_default()
}

/// Refuses bodies that are plainly not property lists. Apple clients send
/// `application/x-apple-aspen-mdm-checkin`, `application/x-apple-aspen-mdm`,
/// an XML type, or no Content-Type at all; all of those are read.
fn plist_content_type(headers: &HeaderMap) -> Result<(), DeviceError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let refused = [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/",
    ];
    if refused.iter().any(|r| ct.starts_with(r)) {
        tracing::warn!(content_type = %log_safe(&ct), "device message is not a property list");
        return Err(CoreError::UnsupportedMediaType("expected a property list".into()).into());
    }
    Ok(())
}

async fn checkin(
    State(s): State<Services>,
    peer: Option<axum::Extension<PeerCertificate>>,
    addr: Option<axum::Extension<PeerAddr>>,
    standing: Option<axum::Extension<ConnStanding>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DeviceError> {
    plist_content_type(&headers)?;
    let peer = peer_of(peer);
    let reply = s.checkin(evidence(&headers, &peer, addr), &body).await?;
    trust(standing);
    Ok(plist_reply(reply.body))
}

async fn connect(
    State(s): State<Services>,
    peer: Option<axum::Extension<PeerCertificate>>,
    addr: Option<axum::Extension<PeerAddr>>,
    standing: Option<axum::Extension<ConnStanding>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DeviceError> {
    plist_content_type(&headers)?;
    let peer = peer_of(peer);
    let reply = s.connect(evidence(&headers, &peer, addr), &body).await?;
    trust(standing);
    Ok(plist_reply(reply.body))
}

/// A device message was accepted: its connection is kept when the listener
/// is full (see [`crate::conn::Tracker::try_acquire`]).
fn trust(standing: Option<axum::Extension<ConnStanding>>) {
    if let Some(axum::Extension(s)) = standing {
        s.0.trust();
    }
}

fn plist_reply(body: Vec<u8>) -> Response {
    if body.is_empty() {
        return StatusCode::OK.into_response();
    }
    ([(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// Query parameters of a SCEP request, decoded by hand: `message` is base64
/// whose `+` must not become a space.
struct ScepQuery {
    operation: Option<String>,
    message: Option<String>,
}

fn parse_scep_query(raw: Option<&str>) -> ScepQuery {
    let mut q = ScepQuery {
        operation: None,
        message: None,
    };
    for pair in raw.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = urlencoding::decode(v)
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default();
        match k {
            "operation" => q.operation = Some(v),
            "message" => q.message = Some(v),
            _ => {}
        }
    }
    q
}

fn decode_message(m: &str) -> Result<Vec<u8>, CoreError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let clean: String = m
        .chars()
        .filter(|c| !c.is_ascii_whitespace() || *c == ' ')
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    STANDARD
        .decode(&clean)
        .or_else(|_| URL_SAFE.decode(&clean))
        .or_else(|_| URL_SAFE_NO_PAD.decode(clean.trim_end_matches('=')))
        .map_err(|_| CoreError::BadRequest("SCEP message is not valid base64".into()))
}

async fn scep_get(
    State(s): State<Services>,
    addr: Option<axum::Extension<PeerAddr>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, DeviceError> {
    let q = parse_scep_query(raw.as_deref());
    scep_dispatch(&s, q, None, addr.map(|a| a.0 .0.ip())).await
}

async fn scep_post(
    State(s): State<Services>,
    addr: Option<axum::Extension<PeerAddr>>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, DeviceError> {
    let q = parse_scep_query(raw.as_deref());
    scep_dispatch(&s, q, Some(body), addr.map(|a| a.0 .0.ip())).await
}

async fn scep_dispatch(
    s: &Services,
    q: ScepQuery,
    body: Option<Bytes>,
    source: Option<std::net::IpAddr>,
) -> Result<Response, DeviceError> {
    match q.operation.as_deref() {
        Some("GetCACaps") => {
            Ok(([(header::CONTENT_TYPE, "text/plain")], s.scep_ca_caps()).into_response())
        }
        Some("GetCACert") => {
            let certs = s.scep_ca_certs()?;
            Ok((
                [(header::CONTENT_TYPE, "application/x-x509-ca-ra-cert")],
                certs.body,
            )
                .into_response())
        }
        Some("PKIOperation") => {
            let der = match (body, q.message) {
                // DER starts with a SEQUENCE tag; a few clients POST the
                // message base64-encoded instead.
                (Some(b), _) if b.first() == Some(&0x30) => b.to_vec(),
                (Some(b), _) if !b.is_empty() => decode_message(&String::from_utf8_lossy(&b))?,
                (_, Some(m)) => decode_message(&m)?,
                _ => {
                    tracing::warn!("SCEP PKIOperation without a message");
                    return Err(CoreError::BadRequest("PKIOperation needs a message".into()).into());
                }
            };
            let rep = s.scep_pki_operation(&der, source).await?;
            Ok(([(header::CONTENT_TYPE, "application/x-pki-message")], rep).into_response())
        }
        other => {
            tracing::warn!(
                operation = %log_safe(other.unwrap_or("(none)")),
                "unknown SCEP operation"
            );
            Err(CoreError::BadRequest("unknown SCEP operation".into()).into())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scep_query_keeps_plus_signs() {
        let q = parse_scep_query(Some("operation=PKIOperation&message=ab+c%2Bd%3D"));
        assert_eq!(q.operation.as_deref(), Some("PKIOperation"));
        assert_eq!(q.message.as_deref(), Some("ab+c+d="));
    }

    #[test]
    fn message_accepts_standard_and_url_safe_base64() {
        let bytes = vec![0xfb, 0xff, 0xfe, 0x01];
        let std = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(decode_message(&std).unwrap(), bytes);
        assert_eq!(decode_message(&url).unwrap(), bytes);
        assert_eq!(decode_message(&std.replace('+', " ")).unwrap(), bytes);
        assert!(decode_message("!!!").is_err());
    }
}
