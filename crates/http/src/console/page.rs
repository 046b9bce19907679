//! The page shell every console page shares: language, title, header with
//! the language switch and sign-out, the main landmark; and the answers a
//! page gives (a page, a redirect).

use super::i18n::{text, Lang, LANG_COOKIE};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;
use mamori_domain::Permission;
use maud::{html, Markup, DOCTYPE};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// What a page knows of the request it answers.
#[derive(Debug, Clone)]
pub(crate) struct PageCtx {
    /// The language of the page.
    pub lang: Lang,
    /// The user chose the language with `?lang=` (remember it).
    pub chosen: bool,
    /// The path of the page (for the language switch).
    pub path: String,
    /// The session's CSRF token, when signed in (for the sign-out form).
    pub csrf: Option<String>,
    /// The organisation's time zone.
    pub zone: TimeZone,
    /// The console's areas this viewer may open, as the header links to
    /// them (none before signing in fully).
    pub nav: Vec<(&'static str, &'static str)>,
}

impl PageCtx {
    /// A message in the page's language.
    pub(crate) fn t(&self, key: &str) -> String {
        text(self.lang, key, &[])
    }
}

/// A whole page: `status`, its `<title>` from the catalogue key `title`,
/// and `body` inside `<main>`.
pub(crate) fn page(ctx: &PageCtx, status: StatusCode, title: &str, body: Markup) -> Response {
    titled(ctx, status, &ctx.t(title), body)
}

/// The console's areas, as the header links to them: (path, catalogue
/// key, the permissions of which a viewer needs one; none: everyone).
const AREAS: &[(&str, &str, &[Permission])] = &[
    ("/console/", "nav-overview", &[]),
    (
        "/console/devices",
        "nav-devices",
        &[Permission::DevicesRead],
    ),
    (
        "/console/enrollment",
        "nav-enrollment",
        &[Permission::EnrollmentWrite],
    ),
    ("/console/groups", "nav-groups", &[Permission::DevicesRead]),
    (
        "/console/policies",
        "nav-policies",
        &[Permission::DevicesRead],
    ),
    ("/console/people", "nav-people", &[Permission::DevicesRead]),
    (
        "/console/approvals",
        "nav-approvals",
        &[
            Permission::CommandsWrite,
            Permission::AccountsManage,
            Permission::PersonalDataRead,
        ],
    ),
    ("/console/audit", "nav-audit", &[Permission::AuditRead]),
    ("/console/alerts", "nav-alerts", &[Permission::AuditRead]),
    (
        "/console/incidents",
        "nav-incidents",
        &[Permission::AuditRead],
    ),
    (
        "/console/reports/breach-scope",
        "nav-breach-scope",
        &[Permission::AuditRead],
    ),
    (
        "/console/admins",
        "nav-admins",
        &[Permission::AccountsManage],
    ),
    ("/console/tokens", "nav-tokens", &[Permission::TokensOwn]),
    (
        "/console/settings",
        "nav-settings",
        &[Permission::SettingsWrite],
    ),
];

/// The areas `actor` may open.
fn areas_for(actor: &mamori_core::access::AdminActor) -> Vec<(&'static str, &'static str)> {
    AREAS
        .iter()
        .filter(|(_, _, needs)| needs.is_empty() || needs.iter().any(|p| actor.allows(*p)))
        .map(|(href, key, _)| (*href, *key))
        .collect()
}

/// A whole page whose title is `title` as given (a device's name, say).
pub(crate) fn titled(ctx: &PageCtx, status: StatusCode, title: &str, body: Markup) -> Response {
    let other = ctx.lang.other();
    let markup = html! {
        (DOCTYPE)
        html lang=(ctx.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (ctx.t("product")) }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                a class="skip" href="#main" { (ctx.t("skip-to-content")) }
                header {
                    span class="product" { (ctx.t("product")) }
                    @if !ctx.nav.is_empty() {
                        nav class="areas" aria-label=(ctx.t("nav-label")) {
                            @for (href, key) in &ctx.nav {
                                @let here = ctx.path == *href
                                    || (*href != "/console/" && ctx.path.starts_with(href));
                                a href=(href) aria-current=[here.then_some("page")] { (ctx.t(key)) }
                            }
                        }
                    }
                    nav class="account" aria-label=(ctx.t("nav-account")) {
                        a href={ (ctx.path) "?lang=" (other.tag()) } lang=(other.tag()) hreflang=(other.tag()) {
                            (ctx.t("language-switch"))
                        }
                        @if let Some(csrf) = &ctx.csrf {
                            @if !ctx.nav.is_empty() {
                                " "
                                a href="/console/account" { (ctx.t("nav-account-page")) }
                            }
                            " "
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(csrf);
                                button class="link" type="submit" { (ctx.t("sign-out")) }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                script src="/console/assets/forms.js" defer {}
            }
        }
    };
    let mut resp = (status, markup.into_string()).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if ctx.chosen {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Secure; SameSite=Strict; Max-Age=31536000",
            ctx.lang.tag()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The form that takes a 6-digit authenticator code (signing in, setting
/// up TOTP): posted to `action` with the session's CSRF token.
pub(crate) fn code_form(ctx: &PageCtx, csrf: &str, action: &str, button: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            label for="code" { (ctx.t("field-code")) }
            input type="text" id="code" name="code" inputmode="numeric"
                autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
            button type="submit" { (ctx.t(button)) }
        }
    }
}

/// `text` (an `otpauth://` URI, a download link) as a QR code: an SVG
/// image drawn here, inlined as a `data:` URI (the Content-Security-Policy
/// allows `img-src data:`; nothing is fetched).
pub(crate) fn qr_data_uri(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, svg)
    ))
}

/// A line of news on top of a page (what an action did, or why not): its
/// `id` for tests, its `class` (`notice`, `error`).
pub(crate) fn notice(id: &str, class: &str, text: String) -> Markup {
    html! { p class=(class) role="status" id=(id) { (text) } }
}

/// The fields of a search form (GET to `action`): (id and name, catalogue
/// key of the label, value, input type).
pub(crate) fn search_form(
    ctx: &PageCtx,
    action: &str,
    fields: &[(&str, &str, &str, &str)],
    button: &str,
) -> Markup {
    html! {
        form method="get" action=(action) class="search" role="search" {
            @for (id, key, value, kind) in fields {
                div class="field" {
                    label for=(id) { (ctx.t(key)) }
                    input type=(kind) id=(id) name=(id) value=(value) maxlength="128";
                }
            }
            button type="submit" { (ctx.t(button)) }
        }
    }
}

/// `303 See Other` to `to` (after a form, or to the page a session's stage
/// calls for).
pub(crate) fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// `303 See Other` to a page made at run time (`/console/policies/{id}`);
/// a location that is not a valid header falls back to the overview.
pub(crate) fn redirect(to: &str) -> Response {
    let to = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/console/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// The cookie that holds where to go after signing in (set when a page or
/// form was refused for want of a session).
const NEXT_COOKIE: &str = "__Host-mamori_next";

/// Areas whose items have pages of their own (`/console/devices/{udid}`).
const ITEM_AREAS: &[&str] = &["devices", "policies", "groups", "people", "incidents"];

/// The page a form posted to `path` is on: the item's page in an area with
/// item pages, else the area's page (`/console/devices/X/actions` →
/// `/console/devices/X`, `/console/admins/kenji/disable` →
/// `/console/admins`).
pub(crate) fn form_page(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["console", area, item, ..] if ITEM_AREAS.contains(area) && *item != "new" => {
            format!("/console/{area}/{item}")
        }
        ["console", area, ..] if !area.is_empty() => format!("/console/{area}"),
        _ => "/console/".to_owned(),
    }
}

/// Whether `to` is a console page to go back to: our own path, nothing
/// that could leave the site or break the header.
fn is_console_path(to: &str) -> bool {
    to.starts_with("/console/")
        && to.len() <= 512
        && !to.contains("//")
        && !to.contains("/..")
        && to.chars().all(|c| c.is_ascii_graphic() && c != '\\')
}

/// Remembers where to go after signing in (for 15 minutes).
pub(crate) fn remember_next(resp: &mut Response, to: &str) {
    if !is_console_path(to) || to.starts_with("/console/sign") || to.starts_with("/console/setup") {
        return;
    }
    let cookie = format!(
        "{NEXT_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=900",
        urlencoding::encode(to)
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Where to go after signing in, if a page asked for it; the answer that
/// goes there forgets it.
pub(crate) fn go_back(headers: &http::HeaderMap) -> Option<Response> {
    let raw = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{NEXT_COOKIE}="))
                .map(str::to_owned)
        })?;
    let to = urlencoding::decode(&raw).ok()?.into_owned();
    if !is_console_path(&to) {
        return None;
    }
    let mut resp = redirect(&to);
    forget_next(&mut resp);
    Some(resp)
}

/// Forgets where to go after signing in.
pub(crate) fn forget_next(resp: &mut Response) {
    let clear = format!("{NEXT_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The time zone named `name` (IANA), from the database built into the
/// binary (no file of the host is read); UTC for a name it does not know
/// (the configuration refuses those at start).
pub(crate) fn zone(name: &str) -> TimeZone {
    static CACHE: OnceLock<Mutex<HashMap<String, TimeZone>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut map = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(name.to_owned())
        .or_insert_with(|| TimeZone::get(name).unwrap_or(TimeZone::UTC))
        .clone()
}

/// Whether `name` is a time zone the console can show times in.
pub fn check_time_zone(name: &str) -> Result<(), String> {
    TimeZone::get(name)
        .map(|_| ())
        .map_err(|_| format!("unknown time zone {name:?}: use an IANA name such as Asia/Tokyo"))
}

fn to_jiff(t: time::OffsetDateTime) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.unix_timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn from_jiff(t: jiff::Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.as_second())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

impl PageCtx {
    /// `t` as the page shows it: date and time in the organisation's
    /// zone, with the zone named.
    pub(crate) fn when(&self, t: time::OffsetDateTime) -> String {
        to_jiff(t)
            .to_zoned(self.zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// The start of `now`'s day in the organisation's zone.
    pub(crate) fn start_of_day(&self, now: time::OffsetDateTime) -> time::OffsetDateTime {
        match to_jiff(now).to_zoned(self.zone.clone()).start_of_day() {
            Ok(z) => from_jiff(z.timestamp()),
            Err(_) => now,
        }
    }

    /// The start of the day `date` (`YYYY-MM-DD`) in the organisation's
    /// zone.
    pub(crate) fn day_start(&self, date: &str) -> Option<time::OffsetDateTime> {
        let d: jiff::civil::Date = date.trim().parse().ok()?;
        if !(2000..=2100).contains(&d.year()) {
            return None;
        }
        let z = d.to_zoned(self.zone.clone()).ok()?;
        Some(from_jiff(z.timestamp()))
    }
}

/// What every console page starts from: its context (language, the
/// session's CSRF token for its forms, whether to show the areas).
#[derive(Debug, Clone)]
pub(crate) struct Shell {
    /// The page context.
    pub ctx: PageCtx,
    /// The session's CSRF token ("" without a session).
    pub csrf: String,
}

impl Shell {
    /// The same, for the page at `path` (a form's answer is the page the
    /// form is on: the language switch must link to that page).
    pub(crate) fn at(mut self, path: &str) -> Self {
        path.clone_into(&mut self.ctx.path);
        self
    }
}

impl axum::extract::FromRequestParts<mamori_core::Services> for Shell {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        s: &mamori_core::Services,
    ) -> Result<Self, Self::Rejection> {
        use mamori_core::access::AdminActor;
        use mamori_domain::SessionStage;
        let q = axum::extract::Query::<super::signin::LangQuery>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| q)
            .unwrap_or_default();
        let csrf = parts
            .extensions
            .get::<crate::auth::SessionSecret>()
            .map(|secret| s.auth.csrf_token(&secret.0));
        let mut ctx = super::signin::page_ctx(&q, &parts.headers, parts.uri.path(), csrf.clone());
        ctx.zone = zone(&s.config.time_zone);
        ctx.nav = match parts.extensions.get::<AdminActor>() {
            Some(a) if matches!(a.stage(), Some(SessionStage::Full) | None) => areas_for(a),
            _ => Vec::new(),
        };
        Ok(Self {
            ctx,
            csrf: csrf.unwrap_or_default(),
        })
    }
}
