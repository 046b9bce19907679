//! Alerts in the console: what the detection rules raised over a chosen
//! period (a day, a week, 30 or 90 days), newest first, with severity,
//! what each concerns, its evidence and the incident a high-severity one
//! opened. The same use-case as the dashboard's count; each row links to
//! its record in the audit log.

use super::page::{page, PageCtx, Shell};
use crate::auth::Auth;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_core::access::permit::AuditRead;
use mamori_core::audit::alerts::{AlertRow, ALERTS_LISTED};
use mamori_core::Services;
use maud::{html, Markup};
use serde::Deserialize;

/// The periods offered, in days.
pub(super) const PERIODS: [i64; 4] = [1, 7, 30, 90];

/// `?days=N`: one of [`PERIODS`] (7 otherwise).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Period {
    days: Option<i64>,
}

impl Period {
    fn days(&self) -> i64 {
        self.days.filter(|d| PERIODS.contains(d)).unwrap_or(7)
    }
}

/// The rule's name in the reader's language (the rule itself when the
/// catalogue has none, which a test forbids).
pub(super) fn rule_text(ctx: &PageCtx, rule: &str) -> String {
    ctx.t(&format!("alert-rule-{rule}"))
}

fn row(ctx: &PageCtx, a: &AlertRow) -> Markup {
    let concerns = a.concerns.as_deref().unwrap_or("—");
    html! {
        tr data-seq=(a.seq) class={ "severity-" (a.severity) } {
            td { (ctx.when(a.at)) }
            td { (rule_text(ctx, &a.rule)) br; code { (a.rule) } }
            td { (ctx.t(match a.severity.as_str() {
                "high" => "alert-severity-high",
                "medium" => "alert-severity-medium",
                "low" => "alert-severity-low",
                _ => "alert-severity-unknown",
            })) }
            td { a href={ "/console/audit?target=" (urlencoding::encode(concerns)) } { (concerns) } }
            td class="detail" { (a.detail) }
            td {
                @match &a.incident {
                    Some(id) => a href={ "/console/incidents/" (id) } { (ctx.t("alert-incident")) },
                    None => "—",
                }
            }
        }
    }
}

/// `GET /console/alerts`.
pub(super) async fn index(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Shell { ctx, .. }: Shell,
    Query(p): Query<Period>,
) -> Response {
    let days = p.days();
    let since = s.clock.now() - time::Duration::days(days);
    let alerts = match s.alerts(&by, since).await {
        Ok(a) => a,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let body = html! {
        p { (ctx.t("alerts-intro")) }
        nav aria-label=(ctx.t("alerts-period")) id="alert-periods" {
            ul class="inline" {
                @for d in PERIODS {
                    li {
                        @if d == days {
                            strong aria-current="page" { (super::i18n::text(ctx.lang, "alerts-days", &[("days", d.into())])) }
                        } @else {
                            a href={ "/console/alerts?days=" (d) } { (super::i18n::text(ctx.lang, "alerts-days", &[("days", d.into())])) }
                        }
                    }
                }
            }
        }
        p id="alerts-count" {
            (super::i18n::text(ctx.lang, "alerts-count", &[
                ("total", alerts.total.into()),
                ("high", alerts.high.into()),
            ]))
            @if alerts.total > ALERTS_LISTED {
                " " (super::i18n::text(ctx.lang, "alerts-newest", &[("shown", ALERTS_LISTED.into())]))
            }
        }
        @if !alerts.rows.is_empty() {
            table id="alerts" {
                thead { tr {
                    th scope="col" { (ctx.t("alert-at")) }
                    th scope="col" { (ctx.t("alert-rule")) }
                    th scope="col" { (ctx.t("alert-severity")) }
                    th scope="col" { (ctx.t("alert-concerns")) }
                    th scope="col" { (ctx.t("alert-detail")) }
                    th scope="col" { (ctx.t("alert-incident-col")) }
                } }
                tbody { @for a in &alerts.rows { (row(&ctx, a)) } }
            }
        }
    };
    page(&ctx, StatusCode::OK, "alerts-title", body)
}
