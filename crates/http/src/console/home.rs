//! The console's first page after signing in. A session that has not
//! finished signing in is sent to the step it is at.

use super::page::{page, see_other, PageCtx, Shell};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use mamori_core::access::permit::{AuditRead, DevicesRead};
use mamori_core::access::{Actor, AdminActor};
use mamori_core::device::readiness::Check;
use mamori_core::{CoreError, Services};
use mamori_domain::{IncidentStatus, SessionStage};
use maud::{html, Markup};

/// One figure of the overview: its label and value, with an id for tests.
fn figure(id: &str, label: String, value: String) -> Markup {
    html! {
        div class="figure" id=(id) {
            dt { (label) }
            dd { (value) }
        }
    }
}

/// The overview's panels, each shown to a viewer whose role may read it.
// Length: one template of the overview's panels, in page order, each
// behind the permission that reads it.
async fn panels(s: &Services, ctx: &PageCtx, actor: &AdminActor) -> Result<Markup, CoreError> {
    let who = Actor::from(actor.clone());
    let waiting = s.pending_approvals(actor).await?.len();
    let devices = match who.clone().authorize::<DevicesRead>() {
        Ok(proof) => {
            let now = s.clock.now();
            let counts = s.device_counts(&proof, ctx.start_of_day(now)).await?;
            let compliance = s.compliance_report(&proof).await?;
            Some((counts, compliance))
        }
        Err(_) => None,
    };
    let (incidents, chain, alerts) = match who.authorize::<AuditRead>() {
        Ok(proof) => {
            let week = s.clock.now() - time::Duration::days(7);
            (
                Some(
                    s.incidents(&proof)
                        .await?
                        .iter()
                        .filter(|i| i.status != IncidentStatus::Closed)
                        .count(),
                ),
                Some(s.audit_head(&proof).await?),
                Some(s.alert_counts(&proof, week).await?),
            )
        }
        Err(_) => (None, None, None),
    };
    let push = s.readiness();
    Ok(html! {
        @if let Some((counts, compliance)) = devices {
            section aria-labelledby="overview-devices" {
                h2 id="overview-devices" { a href="/console/devices" { (ctx.t("nav-devices")) } }
                dl class="figures" {
                    (figure("devices-enrolled", ctx.t("overview-enrolled"), counts.enrolled.to_string()))
                    (figure("devices-seen-today", ctx.t("overview-seen-today"), counts.seen_since.to_string()))
                    (figure("devices-waiting", ctx.t("overview-waiting"), counts.waiting.to_string()))
                }
            }
            section aria-labelledby="overview-compliance" {
                h2 id="overview-compliance" { (ctx.t("overview-compliance")) }
                dl class="figures" {
                    (figure("compliance-compliant", ctx.t("overview-compliant"),
                        format!("{} / {}", compliance.compliant, compliance.devices)))
                    (figure("compliance-quarantined", ctx.t("overview-quarantined"),
                        compliance.quarantined.to_string()))
                }
            }
        }
        section aria-labelledby="overview-work" {
            h2 id="overview-work" { (ctx.t("overview-work")) }
            dl class="figures" {
                (figure("approvals-waiting", ctx.t("overview-approvals"), waiting.to_string()))
                @if let Some(open) = incidents {
                    (figure("incidents-open", ctx.t("overview-incidents"), open.to_string()))
                }
                @if let Some(a) = &alerts {
                    div class="figure" id="alerts-week" {
                        dt { a href="/console/alerts" { (ctx.t("alerts-week")) } }
                        dd { (super::i18n::text(ctx.lang, "alerts-count", &[
                            ("total", a.total.into()),
                            ("high", a.high.into()),
                        ])) }
                    }
                }
            }
        }
        @if let Some((newest, checkpoint)) = chain {
            section aria-labelledby="overview-audit" {
                h2 id="overview-audit" { a href="/console/audit" { (ctx.t("nav-audit")) } }
                dl class="facts" id="audit-state" {
                    dt { (ctx.t("audit-newest")) } dd { "#" (newest) }
                    dt { (ctx.t("audit-checkpoint")) }
                    dd {
                        @match checkpoint {
                            Some((seq, at)) => { "#" (seq) " · " (ctx.when(at)) },
                            None => (ctx.t("audit-no-checkpoint")),
                        }
                    }
                }
                p {
                    a href="/console/alerts" id="alerts-link" { (ctx.t("overview-alerts")) }
                    " · "
                    a href="/console/audit#verify-form" { (ctx.t("overview-verify")) }
                }
            }
        }
        section aria-labelledby="overview-push" {
            h2 id="overview-push" { (ctx.t("overview-push")) }
            @match (&push.push_topic, push.push_expires_at) {
                (Some(topic), Some(end)) => p id="push-state" class=(if push.push == Check::Ok { "" } else { "error" }) {
                    (super::i18n::text(ctx.lang, "overview-push-on", &[
                        ("topic", topic.as_str().into()),
                        ("end", ctx.when(end).into()),
                    ]))
                },
                _ => p id="push-state" class="error" { (ctx.t("overview-push-off")) },
            }
        }
    })
}

/// `GET /console/`.
pub(super) async fn home(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Shell { ctx, .. }: Shell,
    headers: HeaderMap,
) -> Response {
    match actor.stage() {
        Some(SessionStage::SecondFactor) => see_other("/console/second-factor"),
        Some(SessionStage::Full) | None => {
            // Signed in: back to the page that asked for it, if one did.
            if let Some(back) = super::page::go_back(&headers) {
                return back;
            }
            let body = match panels(&s, &ctx, &actor).await {
                Ok(b) => b,
                Err(e) => return crate::error::ApiError(e).into_response(),
            };
            let role = actor.admin.role.to_string();
            page(
                &ctx,
                StatusCode::OK,
                "home-title",
                html! {
                    p id="signed-in" {
                        (super::i18n::text(ctx.lang, "home-signed-in", &[
                            ("name", actor.admin.name.as_str().into()),
                            ("role", role.as_str().into()),
                        ]))
                    }
                    (body)
                },
            )
        }
        _ => see_other("/console/setup"),
    }
}
