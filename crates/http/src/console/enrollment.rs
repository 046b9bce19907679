//! Enrollment in the console: download links (each shown once, with a QR
//! code drawn here, to open on the iPhone, iPad or Mac), the links still
//! usable with their revoke buttons, a profile file to hand out another
//! way, and what the device's user does. The same use-cases as
//! `/api/v1/enrollment-*`.

use super::page::{notice, page, qr_data_uri, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use mamori_core::access::permit::EnrollmentWrite;
use mamori_core::access::Authorized;
use mamori_core::device::enroll::{CreatedLink, LinkRequest, ProfileRequest};
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// The most devices, and hours, a profile file made in the console may
/// enroll (it cannot be revoked; a link can).
const PROFILE_MAX_USES: u32 = 50;
const PROFILE_MAX_HOURS: u32 = 72;

/// The forms' fields (both forms ask the same).
#[derive(Debug, Deserialize)]
pub(super) struct Limits {
    #[serde(default)]
    uses: String,
    #[serde(default)]
    hours: String,
}

impl Limits {
    /// The numbers, or the catalogue key of what is wrong.
    fn parse(&self) -> Result<(u32, u32), &'static str> {
        let uses = self.uses.trim().parse().map_err(|_| "enroll-bad-uses")?;
        let hours = self.hours.trim().parse().map_err(|_| "enroll-bad-hours")?;
        Ok((uses, hours))
    }
}

fn limits_fields(ctx: &PageCtx, prefix: &str) -> Markup {
    let uses = format!("{prefix}-uses");
    let hours = format!("{prefix}-hours");
    html! {
        label for=(uses) { (ctx.t("enroll-uses")) }
        input type="number" id=(uses) name="uses" value="1" min="1" max="100000" required;
        label for=(hours) { (ctx.t("enroll-hours")) }
        input type="number" id=(hours) name="hours" value="24" min="1" max="2160" required;
    }
}

fn steps(ctx: &PageCtx) -> Markup {
    html! {
        section aria-labelledby="enroll-steps" {
            h2 id="enroll-steps" { (ctx.t("enroll-steps-title")) }
            ol {
                li { (ctx.t("enroll-step-open")) }
                li { (ctx.t("enroll-step-iphone")) }
                li { (ctx.t("enroll-step-mac")) }
                li { (ctx.t("enroll-step-done")) }
            }
        }
    }
}

/// The page: `top` (a new link, or what went wrong) above the forms and
/// the links still usable.
async fn enrollment_page(
    s: &Services,
    by: &Authorized<EnrollmentWrite>,
    ctx: &PageCtx,
    csrf: &str,
    status: StatusCode,
    top: Option<Markup>,
) -> Response {
    let links = match s.enrollment_links(by).await {
        Ok(l) => l,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let body = html! {
        @if let Some(t) = top { (t) }
        p { (ctx.t("enroll-intro")) }
        form method="post" action="/console/enrollment/links" id="link-form" {
            fieldset {
                legend { (ctx.t("enroll-link-title")) }
                input type="hidden" name="csrf" value=(csrf);
                (limits_fields(ctx, "link"))
                button type="submit" { (ctx.t("enroll-link-button")) }
            }
        }
        section aria-labelledby="enroll-links" {
            h2 id="enroll-links" { (ctx.t("enroll-links-title")) }
            @if links.is_empty() {
                p id="links-none" { (ctx.t("enroll-links-none")) }
            } @else {
                table id="links" {
                    thead { tr {
                        th scope="col" { (ctx.t("enroll-link-id")) }
                        th scope="col" { (ctx.t("enroll-link-used")) }
                        th scope="col" { (ctx.t("enroll-link-created")) }
                        th scope="col" { (ctx.t("enroll-link-expires")) }
                        th scope="col" { (ctx.t("enroll-link-revoke")) }
                    } }
                    tbody {
                        @for l in &links {
                            tr data-link=(l.id) {
                                td { code { (l.id) } }
                                td { (l.uses) " / " (l.max_uses) }
                                td { (ctx.when(l.created_at)) }
                                td { (ctx.when(l.expires_at)) }
                                td {
                                    form method="post" action={ "/console/enrollment/links/" (l.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" class="danger" { (ctx.t("enroll-link-revoke")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/console/enrollment/profile" id="profile-form" {
            fieldset {
                legend { (ctx.t("enroll-profile-title")) }
                p class="muted" { (ctx.t("enroll-profile-intro")) }
                input type="hidden" name="csrf" value=(csrf);
                (limits_fields(ctx, "profile"))
                button type="submit" { (ctx.t("enroll-profile-button")) }
            }
        }
        (steps(ctx))
    };
    page(ctx, status, "enroll-title", body)
}

/// `?revoked=1` after a revoke.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Revoked {
    revoked: Option<String>,
}

/// `GET /console/enrollment`.
pub(super) async fn index(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Shell { ctx, csrf }: Shell,
    Query(r): Query<Revoked>,
) -> Response {
    let top = r
        .revoked
        .map(|_| notice("link-revoked", "notice", ctx.t("enroll-link-revoked")));
    enrollment_page(&s, &by, &ctx, &csrf, StatusCode::OK, top).await
}

fn new_link(ctx: &PageCtx, link: &CreatedLink) -> Markup {
    html! {
        section aria-labelledby="new-link" class="notice" id="new-link-box" {
            h2 id="new-link" { (ctx.t("enroll-new-link")) }
            p { (ctx.t("enroll-new-link-once")) }
            p { code id="new-link-url" { (link.url) } }
            @if let Some(src) = qr_data_uri(&link.url) {
                img id="new-link-qr" src=(src) alt=(ctx.t("enroll-qr")) width="220" height="220";
            }
            p { (super::i18n::text(ctx.lang, "enroll-new-link-limits", &[
                ("uses", link.max_uses.into()),
                ("expires", ctx.when(link.expires_at).into()),
            ])) }
        }
    }
}

/// `POST /console/enrollment/links`: a new link, shown once.
pub(super) async fn create_link(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Client(client): Client,
    shell: Shell,
    form: Result<Form<Limits>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/enrollment");
    let parsed = form
        .map_err(|_| "enroll-bad-uses")
        .and_then(|Form(f)| f.parse());
    let (uses, hours) = match parsed {
        Ok(v) => v,
        Err(key) => {
            let top = notice("enroll-error", "error", ctx.t(key));
            return enrollment_page(&s, &by, &ctx, &csrf, StatusCode::BAD_REQUEST, Some(top)).await;
        }
    };
    let req = LinkRequest {
        signed: Some(true),
        max_uses: Some(uses),
        ttl_hours: Some(hours),
    };
    match s.create_enrollment_link(&by, &client, &req).await {
        Ok(link) => {
            let top = new_link(&ctx, &link);
            enrollment_page(&s, &by, &ctx, &csrf, StatusCode::CREATED, Some(top)).await
        }
        Err(CoreError::BadRequest(m)) => {
            let text = super::i18n::text(ctx.lang, "enroll-refused", &[("reason", m.into())]);
            let top = notice("enroll-error", "error", text);
            enrollment_page(&s, &by, &ctx, &csrf, StatusCode::BAD_REQUEST, Some(top)).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// `POST /console/enrollment/links/{id}/revoke`.
pub(super) async fn revoke_link(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<String>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/enrollment");
    match s.revoke_enrollment_link(&by, &client, &id).await {
        Ok(()) => super::page::see_other("/console/enrollment?revoked=1"),
        Err(CoreError::NotFound(_)) => {
            let top = notice("enroll-error", "error", ctx.t("enroll-link-gone"));
            enrollment_page(&s, &by, &ctx, &csrf, StatusCode::NOT_FOUND, Some(top)).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// `POST /console/enrollment/profile`: a signed profile file to download.
pub(super) async fn profile(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Client(client): Client,
    shell: Shell,
    form: Result<Form<Limits>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/enrollment");
    let parsed = form
        .map_err(|_| "enroll-bad-uses")
        .and_then(|Form(f)| f.parse());
    let (uses, hours) = match parsed {
        Ok(v) => v,
        Err(key) => {
            let top = notice("enroll-error", "error", ctx.t(key));
            return enrollment_page(&s, &by, &ctx, &csrf, StatusCode::BAD_REQUEST, Some(top)).await;
        }
    };
    // A profile file cannot be revoked (a link can): the console keeps
    // its challenge small and short-lived.
    if uses > PROFILE_MAX_USES || hours > PROFILE_MAX_HOURS {
        let top = notice("enroll-error", "error", ctx.t("enroll-profile-limits"));
        return enrollment_page(&s, &by, &ctx, &csrf, StatusCode::BAD_REQUEST, Some(top)).await;
    }
    let req = ProfileRequest {
        signed: Some(true),
        max_uses: Some(uses),
        ttl_hours: Some(hours),
    };
    match s.create_enrollment_profile(&by, &client, &req).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"mamori-enroll.mobileconfig\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(CoreError::BadRequest(m)) => {
            let text = super::i18n::text(ctx.lang, "enroll-refused", &[("reason", m.into())]);
            let top = notice("enroll-error", "error", text);
            enrollment_page(&s, &by, &ctx, &csrf, StatusCode::BAD_REQUEST, Some(top)).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
