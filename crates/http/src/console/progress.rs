//! A group's progress: where each of its policies stands on its enrolled
//! devices, as the last reconciliation pass counted it, or counted now
//! when asked (which reads every device).

use super::groups::err;
use super::page::{page, titled, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mamori_core::access::permit::DevicesRead;
use mamori_core::fleet::groups::GroupProgress;
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// `?now=1`: count now rather than show the last pass's figures.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CountNow {
    now: Option<String>,
}

/// `GET /console/groups/{id}/progress`: where each of the group's
/// policies stands on its enrolled devices (reads every device and every
/// policy profile, as a reconciliation pass does).
pub(super) async fn progress(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, .. }: Shell,
    Path(id): Path<String>,
    Query(q): Query<CountNow>,
) -> Response {
    let now = q.now.is_some();
    let (g, p) = match (
        s.group(&by, &id).await,
        s.group_progress(&by, &id, now).await,
    ) {
        (Ok(g), Ok(p)) => (g, p),
        (Err(CoreError::NotFound(_)), _) | (_, Err(CoreError::NotFound(_))) => {
            let body = html! { p { (ctx.t("group-missing")) } };
            return page(&ctx, StatusCode::NOT_FOUND, "not-found-title", body);
        }
        (Err(e), _) | (_, Err(e)) => return err(e),
    };
    let body = html! {
        p { a href={ "/console/groups/" (g.id) } { (ctx.t("group-back")) } }
        p id="progress-as-of" {
            @match p.as_of {
                Some(at) => {
                    (super::i18n::text(ctx.lang, "group-progress-as-of", &[("at", ctx.when(at).into())]))
                    " "
                    a href={ "/console/groups/" (g.id) "/progress?now=1" } id="progress-now" { (ctx.t("group-progress-count-now")) }
                }
                None => (ctx.t("group-progress-counted-now")),
            }
        }
        dl class="facts" {
            dt { (ctx.t("group-enrolled")) } dd id="group-enrolled" { (p.members) }
        }
        (progress_table(&ctx, &p))
    };
    titled(&ctx, StatusCode::OK, &g.name, body)
}

fn progress_table(ctx: &PageCtx, p: &GroupProgress) -> Markup {
    html! {
        section aria-labelledby="group-progress" {
            h2 id="group-progress" { (ctx.t("group-progress")) }
            @if p.policies.is_empty() {
                p { (ctx.t("group-no-policies")) }
            } @else {
                table id="progress" {
                    thead { tr {
                        th scope="col" { (ctx.t("group-policy")) }
                        th scope="col" { (ctx.t("group-installed")) }
                        th scope="col" { (ctx.t("group-installing")) }
                        th scope="col" { (ctx.t("group-failed")) }
                        th scope="col" { (ctx.t("group-waiting")) }
                        th scope="col" { (ctx.t("group-withheld")) }
                        th scope="col" { (ctx.t("group-other-platform")) }
                    } }
                    tbody {
                        @for x in &p.policies {
                            tr data-policy=(x.policy_id) {
                                td { a href={ "/console/policies/" (x.policy_id) } { (x.name) } " (v" (x.version) ")" }
                                td data-count="installed" { (x.installed) }
                                td data-count="installing" { (x.installing) }
                                td data-count="failed" { (x.failed) }
                                td data-count="waiting" { (x.waiting) }
                                td data-count="withheld" { (x.withheld) }
                                td data-count="other" { (x.other_platform) }
                            }
                        }
                    }
                }
                p class="hint" { (ctx.t("group-progress-hint")) }
            }
        }
    }
}
