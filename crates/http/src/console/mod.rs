//! The web console: server-rendered pages on the admin listener, same
//! origin as the API, behind the same guard (`auth::guard`) and calling the
//! same use-cases. Pages are compile-checked templates (maud), every
//! string comes from the Japanese and English catalogues (`i18n`), the one
//! stylesheet is embedded in the binary, and no page carries inline script
//! or style: the headers below forbid both.

mod actions;
mod devices;
mod home;
mod i18n;
mod page;
mod passkey;
mod setup;
mod signin;

use crate::auth::{Access, Guard};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use mamori_core::Services;
use mamori_domain::Permission as P;

pub(crate) use i18n::Lang;

const CSS: &str = include_str!("../../console/assets/console.css");

/// The policy every console answer carries: nothing but our own script,
/// style and images; forms post only to us; never framed.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The console's routes, each behind the guard with its access.
pub(crate) fn routes(services: &Services) -> Router<Services> {
    let guarded = |access: Access, route: MethodRouter<Services>| {
        route.layer(axum::middleware::from_fn_with_state(
            Guard {
                services: services.clone(),
                access,
            },
            crate::auth::guard,
        ))
    };
    Router::new()
        .route("/", get(|| async { page::see_other("/console/") }))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/passkey.js", get(script))
        .route("/console/assets/forms.js", get(forms_script))
        .route(
            "/console/sign-in",
            guarded(Access::Public, get(signin::form).post(signin::password)),
        )
        .route(
            "/console/second-factor",
            guarded(
                Access::SecondFactor,
                get(signin::second_factor_form).post(signin::second_factor),
            ),
        )
        .route(
            "/console/second-factor/passkey",
            guarded(Access::SecondFactor, axum::routing::post(passkey::sign_in)),
        )
        .route(
            "/console/sign-out",
            guarded(Access::AnySession, axum::routing::post(signin::sign_out)),
        )
        .route(
            "/console/setup",
            guarded(Access::AnySession, get(setup::setup)),
        )
        .route(
            "/console/setup/password",
            guarded(Access::AnySession, axum::routing::post(setup::password)),
        )
        .route(
            "/console/setup/totp",
            guarded(Access::AnySession, axum::routing::post(setup::totp)),
        )
        .route(
            "/console/setup/passkey",
            guarded(Access::AnySession, axum::routing::post(passkey::register)),
        )
        .route(
            "/console/devices",
            guarded(Access::Permission(P::DevicesRead), get(devices::list)),
        )
        .route(
            "/console/devices/{udid}",
            guarded(Access::Permission(P::DevicesRead), get(devices::device)),
        )
        .route(
            "/console/devices/{udid}/actions",
            guarded(
                Access::Permission(P::DeviceActions),
                axum::routing::post(actions::act),
            ),
        )
        .route("/console/", guarded(Access::AnySession, get(home::home)))
        .layer(axum::middleware::from_fn(unsigned_to_sign_in))
        .layer(axum::middleware::from_fn(host_from_authority))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        passkey::SCRIPT,
    )
        .into_response()
}

const FORMS_SCRIPT: &str = include_str!("../../console/assets/forms.js");

async fn forms_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        FORMS_SCRIPT,
    )
        .into_response()
}

/// HTTP/2 carries the host in the request's authority, not in a Host
/// header: give the pages one, as HTTP/1.1 would (they compare it with the
/// admin URL to tell a user at the wrong address where to go).
async fn host_from_authority(mut req: Request, next: Next) -> Response {
    if !req.headers().contains_key(header::HOST) {
        let authority = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        if let Some(host) = authority {
            req.headers_mut().insert(header::HOST, host);
        }
    }
    next.run(req).await
}

/// A page asked for without a usable session goes to the sign-in page
/// (the guard answered 401); the API keeps its JSON answers.
async fn unsigned_to_sign_in(req: Request, next: Next) -> Response {
    let page = req.method() == http::Method::GET;
    let resp = next.run(req).await;
    if page && resp.status() == StatusCode::UNAUTHORIZED {
        return page::see_other("/console/sign-in");
    }
    resp
}

/// The headers of every console answer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), \
             serial=(), bluetooth=(), interest-cohort=()",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}
