//! The console's first page after signing in. A session that has not
//! finished signing in is sent to the step it is at.

use super::page::{page, see_other};
use super::signin::{page_ctx, LangQuery};
use crate::auth::SessionSecret;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use mamori_core::access::AdminActor;
use mamori_core::Services;
use mamori_domain::SessionStage;
use maud::html;

/// `GET /console/`.
pub(super) async fn home(
    State(s): State<Services>,
    Query(q): Query<LangQuery>,
    Extension(actor): Extension<AdminActor>,
    Extension(secret): Extension<SessionSecret>,
    headers: HeaderMap,
) -> Response {
    let csrf = s.auth.csrf_token(&secret.0);
    let ctx = page_ctx(&q, &headers, "/console/", Some(csrf));
    match actor.stage() {
        Some(SessionStage::SecondFactor) => see_other("/console/second-factor"),
        Some(SessionStage::Full) => {
            let waiting = match s.pending_approvals(&actor).await {
                Ok(a) => a.len(),
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
                    p id="approvals-waiting" {
                        (super::i18n::text(ctx.lang, "home-approvals", &[("count", waiting.into())]))
                    }
                },
            )
        }
        _ => see_other("/console/setup"),
    }
}
