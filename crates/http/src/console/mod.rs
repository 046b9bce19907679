//! The web console: server-rendered pages on the admin listener, same
//! origin as the API, behind the same guard (`auth::guard`) and calling the
//! same use-cases. Pages are compile-checked templates (maud), every
//! string comes from the Japanese and English catalogues (`i18n`), the one
//! stylesheet is embedded in the binary, and no page carries inline script
//! or style: the headers below forbid both.

mod account;
mod actions;
mod admins;
mod alerts;
mod approvals;
mod audit;
mod compliance;
mod devices;
mod enrollment;
mod exports;
mod groups;
mod home;
mod i18n;
mod import;
mod incidents;
mod management;
mod offboard;
mod page;
mod passkey;
mod people;
mod policies;
mod policy_form;
mod progress;
mod reports;
mod settings;
mod setup;
mod signin;
mod step_up;
mod tokens;

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
pub use page::check_time_zone;

const CSS: &str = include_str!("../../console/assets/console.css");

/// The policy every console answer carries: nothing but our own script,
/// style and images; forms post only to us; never framed.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Who may see and decide requests for a second administrator (each
/// request narrowed further by its action, in core).
const DECIDERS: Access =
    Access::AnyPermission(&[P::CommandsWrite, P::AccountsManage, P::PersonalDataRead]);

/// The console's routes, each behind the guard with its access.
pub(crate) fn routes(services: &Services) -> Router<Services> {
    let mut router = Router::new()
        .route("/", get(|| async { page::see_other("/console/") }))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/passkey.js", get(script))
        .route("/console/assets/forms.js", get(forms_script));
    let pages = account_pages()
        .into_iter()
        .chain(device_pages())
        .chain(fleet_pages())
        .chain(oversight_pages())
        .chain(admin_pages());
    for (path, access, route) in pages {
        let guard = Guard {
            services: services.clone(),
            access,
        };
        router = router.route(
            path,
            route.layer(axum::middleware::from_fn_with_state(
                guard,
                crate::auth::guard,
            )),
        );
    }
    router
        .layer(axum::middleware::from_fn(unsigned_to_sign_in))
        .layer(axum::middleware::from_fn(host_from_authority))
        .layer(axum::middleware::from_fn(security_headers))
}

/// A console route: its path, who may reach it, its handlers.
type Page = (&'static str, Access, MethodRouter<Services>);

/// Signing in and out, and one's own setup.
fn account_pages() -> Vec<Page> {
    use axum::routing::post;
    vec![
        (
            "/console/sign-in",
            Access::Public,
            get(signin::form).post(signin::password),
        ),
        (
            "/console/second-factor",
            Access::SecondFactor,
            get(signin::second_factor_form).post(signin::second_factor),
        ),
        (
            "/console/second-factor/passkey",
            Access::SecondFactor,
            post(passkey::sign_in),
        ),
        (
            "/console/sign-out",
            Access::AnySession,
            post(signin::sign_out),
        ),
        ("/console/setup", Access::AnySession, get(setup::setup)),
        (
            "/console/setup/password",
            Access::AnySession,
            post(setup::password),
        ),
        ("/console/setup/totp", Access::AnySession, post(setup::totp)),
        (
            "/console/setup/passkey",
            Access::AnySession,
            post(passkey::register),
        ),
        ("/console/", Access::AnySession, get(home::home)),
        ("/console/account", Access::FullSession, get(account::index)),
        (
            "/console/account/sessions/{id}/end",
            Access::FullSession,
            post(account::end_session),
        ),
        (
            "/console/account/step-up",
            Access::FullSession,
            post(account::fresh_step_up),
        ),
        (
            "/console/account/passkeys",
            Access::FullSession,
            post(account::register_passkey),
        ),
        (
            "/console/account/passkeys/{id}/remove",
            Access::FullSession,
            post(account::remove_passkey),
        ),
        (
            "/console/account/totp/remove",
            Access::FullSession,
            post(account::remove_totp),
        ),
    ]
}

/// Devices and enrollment.
fn device_pages() -> Vec<Page> {
    use axum::routing::post;
    let perm = Access::Permission;
    vec![
        ("/console/devices", perm(P::DevicesRead), get(devices::list)),
        (
            "/console/devices/{udid}",
            perm(P::DevicesRead),
            get(devices::device),
        ),
        (
            "/console/devices/{udid}/actions",
            perm(P::DeviceActions),
            post(actions::act),
        ),
        (
            "/console/devices/{udid}/commands/{uuid}",
            perm(P::CommandsRead),
            get(management::command),
        ),
        (
            "/console/enrollment",
            perm(P::EnrollmentWrite),
            get(enrollment::index),
        ),
        (
            "/console/enrollment/links",
            perm(P::EnrollmentWrite),
            post(enrollment::create_link),
        ),
        (
            "/console/enrollment/links/{id}/revoke",
            perm(P::EnrollmentWrite),
            post(enrollment::revoke_link),
        ),
        (
            "/console/enrollment/profile",
            perm(P::EnrollmentWrite),
            post(enrollment::profile),
        ),
    ]
}

/// Policies, groups and compliance.
fn fleet_pages() -> Vec<Page> {
    use axum::routing::post;
    let perm = Access::Permission;
    let read = || perm(P::DevicesRead);
    let write = || perm(P::CommandsWrite);
    vec![
        ("/console/policies", read(), get(policies::list)),
        (
            "/console/policies/new",
            write(),
            get(policies::new_form).post(policies::create),
        ),
        ("/console/policies/{id}", read(), get(policies::show)),
        ("/console/policies/{id}/save", write(), post(policies::save)),
        (
            "/console/policies/{id}/delete",
            write(),
            post(policies::delete),
        ),
        ("/console/groups", read(), get(groups::list)),
        ("/console/groups/new", write(), post(groups::create)),
        ("/console/groups/{id}", read(), get(groups::show)),
        (
            "/console/groups/{id}/progress",
            read(),
            get(progress::progress),
        ),
        (
            "/console/groups/{id}/members",
            write(),
            post(groups::change_members),
        ),
        (
            "/console/groups/{id}/policies",
            write(),
            post(groups::set_policies),
        ),
        (
            "/console/groups/{id}/compliance",
            write(),
            post(compliance::set_compliance),
        ),
        ("/console/groups/{id}/delete", write(), post(groups::delete)),
        ("/console/compliance", read(), get(compliance::report)),
    ]
}

/// People, the audit log, reports, incidents, approvals.
fn oversight_pages() -> Vec<Page> {
    use axum::routing::post;
    let perm = Access::Permission;
    vec![
        ("/console/people", perm(P::DevicesRead), get(people::list)),
        (
            "/console/people/import",
            perm(P::PeopleWrite),
            get(import::index).post(import::submit),
        ),
        (
            "/console/people/import/file",
            perm(P::PeopleWrite),
            post(import::upload),
        ),
        (
            "/console/people/exports",
            perm(P::PersonalDataRead),
            get(exports::index).post(exports::request),
        ),
        (
            "/console/people/exports/download",
            perm(P::PersonalDataRead),
            post(exports::download),
        ),
        (
            "/console/people/{id}",
            perm(P::DevicesRead),
            get(people::person),
        ),
        (
            "/console/people/{id}/reveal",
            perm(P::PersonalDataRead),
            post(people::reveal),
        ),
        (
            "/console/people/{id}/offboard",
            perm(P::PeopleWrite),
            get(offboard::confirm).post(offboard::offboard),
        ),
        (
            "/console/reports/breach-scope",
            perm(P::AuditRead),
            get(reports::breach_scope),
        ),
        (
            "/console/reports/breach-scope.csv",
            perm(P::AuditRead),
            get(reports::breach_scope_csv),
        ),
        ("/console/audit", perm(P::AuditRead), get(audit::index)),
        ("/console/alerts", perm(P::AuditRead), get(alerts::index)),
        (
            "/console/audit/verify",
            perm(P::AuditRead),
            post(audit::verify),
        ),
        (
            "/console/incidents",
            perm(P::AuditRead),
            get(incidents::list),
        ),
        (
            "/console/incidents/{id}",
            perm(P::AuditRead),
            get(incidents::incident),
        ),
    ]
}

/// Accounts, tokens, settings.
fn admin_pages() -> Vec<Page> {
    use axum::routing::post;
    let perm = Access::Permission;
    vec![
        (
            "/console/tokens",
            perm(P::TokensOwn),
            get(tokens::index).post(tokens::create),
        ),
        (
            "/console/tokens/{id}/revoke",
            perm(P::TokensOwn),
            post(tokens::revoke),
        ),
        (
            "/console/admins",
            perm(P::AccountsManage),
            get(admins::index).post(admins::create),
        ),
        (
            "/console/admins/{name}/{action}",
            perm(P::AccountsManage),
            post(admins::act),
        ),
        (
            "/console/settings",
            perm(P::SettingsWrite),
            get(settings::index),
        ),
        (
            "/console/settings/push-certificate",
            perm(P::SettingsWrite),
            post(settings::push_certificate),
        ),
        (
            "/console/settings/push-request",
            perm(P::SettingsWrite),
            post(settings::push_request),
        ),
        ("/console/approvals", DECIDERS, get(approvals::index)),
        (
            "/console/approvals/{id}/approve",
            DECIDERS,
            post(approvals::approve),
        ),
        (
            "/console/approvals/{id}/reject",
            DECIDERS,
            post(approvals::reject),
        ),
    ]
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
/// A page the viewer's role may not open says so as a page.
async fn unsigned_to_sign_in(req: Request, next: Next) -> Response {
    let page = req.method() == http::Method::GET;
    let headers = req.headers().clone();
    let path = req.uri().path().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    if resp
        .extensions()
        .get::<crate::auth::NotSignedIn>()
        .is_some()
    {
        // Back here after signing in: the page itself, or for a form
        // whose session ended meanwhile, the page the form is on.
        let back = if page {
            path_and_query
        } else {
            page::form_page(&path)
        };
        let mut to_sign_in = page::see_other("/console/sign-in");
        page::remember_next(&mut to_sign_in, &back);
        return to_sign_in;
    }
    if page && resp.status() == StatusCode::UNAUTHORIZED {
        return page::see_other("/console/sign-in");
    }
    if page && resp.status() == StatusCode::FORBIDDEN && path != "/console/" {
        let ctx = signin::page_ctx(&signin::LangQuery::default(), &headers, &path, None);
        let body = maud::html! {
            p { (ctx.t("forbidden-intro")) }
            p { a href="/console/" { (ctx.t("forbidden-back")) } }
        };
        return page::page(&ctx, StatusCode::FORBIDDEN, "forbidden-title", body);
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
