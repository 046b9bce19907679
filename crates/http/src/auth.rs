//! Admin authentication and authorization, enforced from the route table:
//! every admin route is declared with its [`Access`] in
//! [`crate::admin::table`], and the router is built only from that table,
//! so a route cannot exist without a declared access rule. Deny by default.
//!
//! The guard runs before each handler: it reads the session cookie or the
//! bearer token, checks the stage or permission the route needs, demands the
//! CSRF token on state-changing cookie requests, and hands the handler the
//! [`AdminActor`] and the [`ClientContext`]. Denials are logged and audited.

use crate::error::ApiError;
use crate::tls::PeerAddr;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mamori_core::access::{Actor, AdminActor, Authorized, ClientContext, Permit};
use mamori_core::admin::SessionCookie;
use mamori_core::{CoreError, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{Permission, SessionStage};

/// The session cookie. `__Host-` makes browsers insist on Secure, Path=/
/// and no Domain.
pub const SESSION_COOKIE: &str = "__Host-mamori_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a route demands of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the API description, the login itself).
    Public,
    /// A session waiting for its second factor.
    SecondFactor,
    /// A session at any stage (finish setup, log out, change password).
    AnySession,
    /// A fully authenticated session (not a token).
    FullSession,
    /// A full session or a token holding the permission.
    Permission(Permission),
    /// A full session or a token holding any of the permissions (the
    /// handler narrows further, e.g. approvals by their action).
    AnyPermission(&'static [Permission]),
}

/// The caller, holding the permission `P`: the handler's proof for the
/// service it calls ([`Authorized`]). The guard authenticated the caller
/// and checked the route's declared access; this checks `P`, the
/// handler's own need, again from the type, so a route table entry that
/// asks for less than the handler needs still cannot reach the service.
#[derive(Debug)]
pub(crate) struct Auth<P: Permit>(pub Authorized<P>);

impl<P: Permit, S: Send + Sync> axum::extract::FromRequestParts<S> for Auth<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let actor = parts
            .extensions
            .get::<AdminActor>()
            .cloned()
            .ok_or(CoreError::Unauthorized)?;
        Ok(Self(Actor::from(actor).authorize::<P>()?))
    }
}

/// The session secret the request came with (for the CSRF token).
#[derive(Debug, Clone)]
pub struct SessionSecret(pub String);

/// The per-route guard's state.
#[derive(Clone)]
pub(crate) struct Guard {
    pub services: Services,
    pub access: Access,
}

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The client context of a request.
pub(crate) fn client_context(req: &Request) -> ClientContext {
    let source = req
        .extensions()
        .get::<PeerAddr>()
        .map(|a| a.0.ip().to_canonical().to_string())
        .unwrap_or_default();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect());
    let request_id = hex::encode(mamori_crypto::random_bytes(8));
    ClientContext {
        source,
        user_agent,
        request_id: Some(request_id),
    }
}

/// Marks an answer the guard gave because the request carried no valid
/// credentials (no session, or one that ended): the console sends such a
/// request to its sign-in page, and back afterwards.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotSignedIn;

/// Runs before every admin handler.
pub(crate) async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    let ctx = client_context(&req);
    let request_id = ctx.request_id.clone().unwrap_or_default();
    let result = authorize(&g, &mut req, &ctx).await;
    let mut resp = match result {
        Ok(()) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Err(e) => {
            let unauthenticated = matches!(e.0, CoreError::Unauthorized);
            let mut resp = e.into_response();
            if unauthenticated {
                resp.extensions_mut().insert(NotSignedIn);
            }
            resp
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// What the request presents: its credentials and, for cookie requests,
/// the CSRF token it sent.
struct Presented {
    method: Method,
    /// `METHOD /path`, for the log and the audit trail.
    route: String,
    sent_csrf: String,
    cookie: Option<String>,
    bearer: Option<String>,
}

impl Presented {
    fn of(req: &Request) -> Self {
        let headers = req.headers();
        let sent_csrf = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let cookie = cookie_value(headers, SESSION_COOKIE).map(str::to_owned);
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            });
        Self {
            method: req.method().clone(),
            route: format!("{} {}", req.method(), req.uri().path()),
            sent_csrf,
            cookie,
            bearer,
        }
    }

    fn changes_state(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }
}

/// Authenticates the caller and checks the route's access; on success the
/// request carries the [`AdminActor`] (and the session secret, for the
/// CSRF token). Each step is its own function, in this order.
async fn authorize(g: &Guard, req: &mut Request, ctx: &ClientContext) -> Result<(), ApiError> {
    if g.access == Access::Public {
        return Ok(());
    }
    let s = &g.services;
    let mut presented = Presented::of(req);
    let (actor, secret) = authenticate(s, &presented, ctx).await?;
    // A caller with valid credentials (a token, or a session past its
    // second factor: a password alone is not enough) keeps its connection
    // on a full listener; only connections nobody authenticated on make
    // way.
    if actor
        .stage()
        .is_none_or(|stage| stage == SessionStage::Full)
    {
        crate::tls::ConnStanding::trust_in(req.extensions());
    }
    // An upload is read only once the caller may use the route; its CSRF
    // token is inside it.
    let upload = presented
        .changes_state()
        .then(|| crate::upload::boundary(req.headers()))
        .flatten();
    if let (Some(secret), None) = (&secret, &upload) {
        if presented.changes_state() && presented.sent_csrf.is_empty() && is_form(req) {
            presented.sent_csrf = form_csrf(req).await?;
        }
        check_csrf(s, &actor, ctx, &presented, secret).await?;
    }
    if let Err(e) = verdict(g.access, &actor) {
        if matches!(e, CoreError::Forbidden(_)) {
            deny(s, &actor, ctx, &presented.route, "permission denied").await?;
        }
        return Err(e.into());
    }
    if let Some(boundary) = upload {
        if !crate::upload::ROUTES.contains(&req.uri().path()) {
            return Err(
                CoreError::UnsupportedMediaType("this route takes no file upload".into()).into(),
            );
        }
        let up = crate::upload::take(req, boundary).await?;
        if let Some(secret) = &secret {
            if presented.sent_csrf.is_empty() {
                presented.sent_csrf = up.csrf.clone();
            }
            check_csrf(s, &actor, ctx, &presented, secret).await?;
        }
    }
    record_attempt(s, &actor, ctx, &presented).await?;
    if let Some(secret) = secret {
        req.extensions_mut().insert(SessionSecret(secret));
    }
    req.extensions_mut().insert(actor);
    Ok(())
}

/// The caller, from the bearer token or else the session cookie, with the
/// session secret when it came by cookie.
async fn authenticate(
    s: &Services,
    presented: &Presented,
    ctx: &ClientContext,
) -> Result<(AdminActor, Option<String>), ApiError> {
    if let Some(token) = &presented.bearer {
        Ok((s.authenticate_token(token, ctx).await?, None))
    } else if let Some(secret) = &presented.cookie {
        Ok((
            s.authenticate_session(secret, ctx).await?,
            Some(secret.clone()),
        ))
    } else {
        let route = &presented.route;
        tracing::warn!(%route, source = %ctx.source, "admin request without credentials");
        Err(CoreError::Unauthorized.into())
    }
}

/// The console's forms (`application/x-www-form-urlencoded`) carry the
/// CSRF token in a field rather than a header.
fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// A console form may hold this much; the guard reads it (after the
/// caller is authenticated) for its `csrf` field, then hands the same bytes
/// on to the handler.
const FORM_LIMIT: usize = 32 * 1024;

/// The `csrf` field of a form request's body ("" when absent).
async fn form_csrf(req: &mut Request) -> Result<String, ApiError> {
    let body = std::mem::take(req.body_mut());
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| CoreError::BadRequest(format!("a form holds at most {FORM_LIMIT} bytes")))?;
    let token = bytes
        .split(|b| *b == b'&')
        .filter_map(|pair| pair.strip_prefix(b"csrf="))
        .find_map(|v| std::str::from_utf8(v).ok())
        .map(|v| {
            urlencoding::decode(v)
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default()
        })
        .unwrap_or_default();
    *req.body_mut() = axum::body::Body::from(bytes);
    Ok(token)
}

/// A cookie rides along on any request the browser makes: state changes
/// must also prove they come from our own pages.
async fn check_csrf(
    s: &Services,
    actor: &AdminActor,
    ctx: &ClientContext,
    presented: &Presented,
    secret: &str,
) -> Result<(), ApiError> {
    if !presented.changes_state() {
        return Ok(());
    }
    let expected = s.auth.csrf_token(secret);
    if mamori_crypto::constant_time_eq(presented.sent_csrf.as_bytes(), expected.as_bytes()) {
        return Ok(());
    }
    deny(
        s,
        actor,
        ctx,
        &presented.route,
        "missing or wrong CSRF token",
    )
    .await?;
    Err(CoreError::Forbidden("missing or wrong CSRF token".into()).into())
}

/// Whether the caller's session stage (none for a token) and permissions
/// meet the route's declared access.
fn verdict(access: Access, actor: &AdminActor) -> Result<(), CoreError> {
    let stage = actor.stage();
    match access {
        Access::Public => Ok(()),
        Access::SecondFactor => match stage {
            Some(SessionStage::SecondFactor) => Ok(()),
            Some(_) => Err(CoreError::Conflict(
                "no login is waiting for a second factor".into(),
            )),
            None => Err(CoreError::Forbidden(
                "this route is for interactive sessions".into(),
            )),
        },
        Access::AnySession => match stage {
            Some(_) => Ok(()),
            None => Err(CoreError::Forbidden(
                "this route is for interactive sessions".into(),
            )),
        },
        Access::FullSession => match stage {
            Some(SessionStage::Full) => Ok(()),
            Some(_) => Err(CoreError::Unauthorized),
            None => Err(CoreError::Forbidden(
                "this route is for interactive sessions".into(),
            )),
        },
        Access::Permission(p) => match stage {
            Some(SessionStage::Full) | None if actor.allows(p) => Ok(()),
            Some(SessionStage::Full) | None => {
                Err(CoreError::Forbidden("permission denied".into()))
            }
            // Password accepted but the login is not finished: nothing yet.
            Some(_) => Err(CoreError::Unauthorized),
        },
        Access::AnyPermission(ps) => match stage {
            Some(SessionStage::Full) | None if ps.iter().any(|p| actor.allows(*p)) => Ok(()),
            Some(SessionStage::Full) | None => {
                Err(CoreError::Forbidden("permission denied".into()))
            }
            Some(_) => Err(CoreError::Unauthorized),
        },
    }
}

/// Fail closed: a change is recorded before it is made; if the record
/// cannot be written, the change is not made.
async fn record_attempt(
    s: &Services,
    actor: &AdminActor,
    ctx: &ClientContext,
    presented: &Presented,
) -> Result<(), ApiError> {
    if !presented.changes_state() {
        return Ok(());
    }
    let route = &presented.route;
    let event = s
        .audit_record(
            &actor.label(),
            ctx,
            AuditAction::ApiRequest,
            Outcome::Attempt,
        )
        .target(route);
    if let Err(e) = s.audit(event).await {
        tracing::error!(error = %e, %route, "audit append failed; request refused");
        return Err(CoreError::AuditUnavailable.into());
    }
    Ok(())
}

async fn deny(
    s: &Services,
    actor: &AdminActor,
    ctx: &ClientContext,
    route: &str,
    why: &str,
) -> Result<(), ApiError> {
    tracing::warn!(actor = %actor.label(), %route, why, "admin request denied");
    s.audit(
        s.audit_record(
            &actor.label(),
            ctx,
            AuditAction::AccessDenied,
            Outcome::Denied,
        )
        .target(route)
        .detail(why.to_owned()),
    )
    .await?;
    Ok(())
}

/// The Set-Cookie header for a session.
pub(crate) fn set_cookie(cookie: &SessionCookie, now: time::OffsetDateTime) -> HeaderValue {
    let max_age = (cookie.expires_at - now).whole_seconds().max(0);
    let v = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        cookie.secret
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The Set-Cookie header that removes the session cookie.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-mamori_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}
