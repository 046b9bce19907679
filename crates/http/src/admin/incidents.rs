//! Incidents: open, classify, track the report and notifications, export
//! the evidence bundle. Thin: the use-cases are in `mamori_core::incidents`
//! and `mamori_core::evidence`.

use super::json_body;
use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::auth::permit::{AuditRead, IncidentsManage};
use mamori_core::auth::ClientContext;
use mamori_core::incidents::{IncidentChange, NewIncident};
use mamori_core::Services;
use mamori_domain::Permission as P;
use serde::Deserialize;
use serde_json::json;

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
) -> Result<Response, ApiError> {
    Ok(Json(json!({ "incidents": s.incidents(&by).await? })).into_response())
}

pub(super) async fn open(
    State(s): State<Services>,
    Auth(by): Auth<IncidentsManage>,
    Extension(ctx): Extension<ClientContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NewIncident = json_body(&headers, &body)?;
    let view = s.open_incident(&by, &ctx, &req).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

pub(super) async fn get_one(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.incident_view(&by, &id).await?).into_response())
}

pub(super) async fn update(
    State(s): State<Services>,
    Auth(by): Auth<IncidentsManage>,
    Extension(ctx): Extension<ClientContext>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ch: IncidentChange = json_body(&headers, &body)?;
    Ok(Json(s.update_incident(&by, &ctx, &id, &ch).await?).into_response())
}

pub(super) async fn refresh_scope(
    State(s): State<Services>,
    Auth(by): Auth<IncidentsManage>,
    Extension(ctx): Extension<ClientContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.refresh_incident_scope(&by, &ctx, &id).await?).into_response())
}

pub(super) async fn people(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(json!({ "people": s.incident_people(&by, &id).await? })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotifyBody {
    people: Option<Vec<String>>,
    #[serde(default)]
    all: bool,
}

pub(super) async fn notify(
    State(s): State<Services>,
    Auth(by): Auth<IncidentsManage>,
    Extension(ctx): Extension<ClientContext>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NotifyBody = json_body(&headers, &body)?;
    let people = match (req.people, req.all) {
        (Some(p), false) if !p.is_empty() => Some(p),
        (None, true) => None,
        _ => {
            return Err(mamori_core::CoreError::BadRequest(
                "give either a non-empty \"people\" list or \"all\": true".into(),
            )
            .into())
        }
    };
    let view = s
        .notify_incident_people(&by, &ctx, &id, people.as_deref())
        .await?;
    Ok(Json(view).into_response())
}

pub(super) async fn evidence(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Extension(ctx): Extension<ClientContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bundle = s.evidence_bundle(&by, &ctx, &id).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"mamori-evidence-{id}.json\""),
            ),
        ],
        bundle,
    )
        .into_response())
}

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        r(
            "GET",
            "/api/v1/incidents",
            perm(P::AuditRead),
            routing::get(list),
        ),
        r(
            "POST",
            "/api/v1/incidents",
            perm(P::IncidentsManage),
            routing::post(open),
        ),
        r(
            "GET",
            "/api/v1/incidents/{id}",
            perm(P::AuditRead),
            routing::get(get_one),
        ),
        r(
            "PATCH",
            "/api/v1/incidents/{id}",
            perm(P::IncidentsManage),
            routing::patch(update),
        ),
        r(
            "POST",
            "/api/v1/incidents/{id}/scope",
            perm(P::IncidentsManage),
            routing::post(refresh_scope),
        ),
        r(
            "GET",
            "/api/v1/incidents/{id}/people",
            perm(P::AuditRead),
            routing::get(people),
        ),
        r(
            "POST",
            "/api/v1/incidents/{id}/notifications",
            perm(P::IncidentsManage),
            routing::post(notify),
        ),
        r(
            "GET",
            "/api/v1/incidents/{id}/evidence",
            perm(P::AuditRead),
            routing::get(evidence),
        ),
    ]
}
