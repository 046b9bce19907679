//! Incidents in the console: the list with each one's deadlines counting
//! down, and one incident's page: its deadlines under Japan's APPI (the
//! preliminary report promptly — 3 days, 5 at the latest — and the final
//! one in 30 or 60 days from discovery), whether a report is required and
//! why, the nine report items, how many of the people affected were told,
//! and its evidence bundle to download. The same use-cases as
//! `/api/v1/incidents*`.

use super::page::{page, titled, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_core::access::permit::AuditRead;
use mamori_core::audit::incidents::{Deadlines, IncidentView};
use mamori_core::{CoreError, Services};
use mamori_domain::{Incident, IncidentId, IncidentStatus};
use maud::{html, Markup};
use time::OffsetDateTime;

fn status_text(ctx: &PageCtx, i: &Incident) -> String {
    ctx.t(match i.status {
        IncidentStatus::Open => "incident-status-open",
        IncidentStatus::Reported => "incident-status-reported",
        IncidentStatus::Closed => "incident-status-closed",
    })
}

/// How long until `due`, or how long past it.
fn countdown(ctx: &PageCtx, now: OffsetDateTime, due: OffsetDateTime) -> String {
    let left = due - now;
    let (key, d) = if left.is_negative() {
        ("incident-overdue-by", -left)
    } else {
        ("incident-left", left)
    };
    super::i18n::text(
        ctx.lang,
        key,
        &[
            ("days", d.whole_days().into()),
            ("hours", (d.whole_hours() % 24).into()),
        ],
    )
}

/// A deadline: its date and what is left.
fn deadline(
    ctx: &PageCtx,
    id: &str,
    key: &str,
    now: OffsetDateTime,
    due: OffsetDateTime,
    overdue: bool,
) -> Markup {
    html! {
        div class={ "figure" @if overdue { " overdue" } } id=(id) {
            dt { (ctx.t(key)) }
            dd { (ctx.when(due)) }
            dd class="countdown" { (countdown(ctx, now, due)) }
        }
    }
}

fn deadlines(ctx: &PageCtx, now: OffsetDateTime, d: &Deadlines) -> Markup {
    html! {
        dl class="figures deadlines" {
            (deadline(ctx, "deadline-preliminary-target", "incident-preliminary-target", now, d.preliminary_target, false))
            (deadline(ctx, "deadline-preliminary", "incident-preliminary-latest", now, d.preliminary_latest, d.preliminary_overdue))
            (deadline(ctx, "deadline-final", "incident-final", now, d.final_due, d.final_overdue))
        }
    }
}

/// `GET /console/incidents`.
pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Shell { ctx, .. }: Shell,
) -> Response {
    let incidents = match s.incidents(&by).await {
        Ok(i) => i,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let now = s.clock.now();
    let body = html! {
        p { (ctx.t("incidents-intro")) }
        @if incidents.is_empty() {
            p id="incidents-none" { (ctx.t("incidents-none")) }
        } @else {
            table id="incidents" {
                thead { tr {
                    th scope="col" { (ctx.t("incident-title")) }
                    th scope="col" { (ctx.t("incident-status")) }
                    th scope="col" { (ctx.t("incident-discovered")) }
                    th scope="col" { (ctx.t("incident-preliminary-latest")) }
                } }
                tbody {
                    @for i in &incidents {
                        @let latest = i.discovered_at.saturating_add(time::Duration::days(5));
                        tr {
                            td { a href={ "/console/incidents/" (i.id) } { (i.title) } }
                            td { (status_text(&ctx, i)) }
                            td { (ctx.when(i.discovered_at)) }
                            td {
                                @if i.status == IncidentStatus::Open {
                                    (ctx.when(latest)) br; span class="countdown" { (countdown(&ctx, now, latest)) }
                                } @else { "—" }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&ctx, StatusCode::OK, "incidents-title", body)
}

fn report_items(ctx: &PageCtx, v: &IncidentView) -> Markup {
    html! {
        table id="report-items" {
            thead { tr {
                th scope="col" { (ctx.t("incident-item")) }
                th scope="col" { (ctx.t("incident-item-text")) }
                th scope="col" { (ctx.t("incident-item-done")) }
            } }
            tbody {
                @for item in &v.report_items {
                    tr data-item=(item.key) {
                        td { (item.label) }
                        td {
                            @if let Some(t) = &item.text { (t) }
                            @if let Some(a) = &item.from_audit_trail {
                                @if item.text.is_some() { br; }
                                span class="muted" { (ctx.t("incident-from-trail")) ": " (a) }
                            }
                        }
                        td { (ctx.t(if item.done { "incident-done" } else { "incident-to-do" })) }
                    }
                }
            }
        }
    }
}

/// `GET /console/incidents/{id}`.
pub(super) async fn incident(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Shell { ctx, .. }: Shell,
    Path(id): Path<IncidentId>,
) -> Response {
    let v = match s.incident_view(&by, id.as_str()).await {
        Ok(v) => v,
        Err(CoreError::NotFound(_)) => {
            let body = html! { p { (ctx.t("incident-missing")) } };
            return page(&ctx, StatusCode::NOT_FOUND, "not-found-title", body);
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let now = s.clock.now();
    let i = &v.incident;
    let c = &v.classification;
    let body = html! {
        dl class="facts" {
            dt { (ctx.t("incident-status")) } dd id="incident-status" { (status_text(&ctx, i)) }
            dt { (ctx.t("incident-discovered")) } dd { (ctx.when(i.discovered_at)) }
            dt { (ctx.t("incident-opened-by")) } dd { (i.opened_by) }
            @if let Some(actor) = &i.actor { dt { (ctx.t("incident-actor")) } dd { (actor) } }
            dt { (ctx.t("incident-window")) } dd { (ctx.when(i.window_from)) " – " (ctx.when(i.window_to)) }
        }
        section aria-labelledby="incident-deadlines" {
            h2 id="incident-deadlines" { (ctx.t("incident-deadlines")) }
            (deadlines(&ctx, now, &v.deadlines))
        }
        section aria-labelledby="incident-classification" {
            h2 id="incident-classification" { (ctx.t("incident-classification")) }
            p id="report-required" class=(if c.report_required { "error" } else { "notice" }) {
                (ctx.t(if c.report_required { "incident-report-required" } else { "incident-report-not-yet" }))
            }
            dl class="figures" {
                div class="figure" id="incident-people" { dt { (ctx.t("scope-people")) } dd { (c.people_affected) } }
                div class="figure" id="incident-notified" {
                    dt { (ctx.t("incident-notified")) }
                    dd { (v.notification.notified) " / " (v.notification.affected) }
                }
            }
            @if !c.reasons.is_empty() {
                ul { @for r in &c.reasons { li { (r) } } }
            }
        }
        section aria-labelledby="incident-report" {
            h2 id="incident-report" { (ctx.t("incident-report")) }
            (report_items(&ctx, &v))
        }
        p { a id="incident-evidence" href={ "/api/v1/incidents/" (i.id) "/evidence" } download {
            (ctx.t("incident-evidence"))
        } }
    };
    titled(&ctx, StatusCode::OK, &i.title, body)
}
