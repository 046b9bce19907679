//! Incidents: open, classify, track the report and notifications, export
//! the evidence bundle. Thin: the use-cases are in `mamori_core::audit::incidents`
//! and `mamori_core::audit::evidence`.

use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client, Path};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::{AuditRead, IncidentsManage};
use mamori_core::audit::incidents::{IncidentChange, NewIncident};
use mamori_core::Services;
use mamori_domain::Permission as P;
use mamori_domain::{AffectedPerson, Incident, IncidentId};
use serde::{Deserialize, Serialize};

/// Every incident, newest first.
#[derive(Debug, Serialize)]
struct IncidentList {
    incidents: Vec<Incident>,
}

/// The people an incident affects.
#[derive(Debug, Serialize)]
struct AffectedList {
    people: Vec<AffectedPerson>,
}

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
) -> Result<Response, ApiError> {
    let incidents = s.incidents(&by).await?;
    Ok(Json(IncidentList { incidents }).into_response())
}

pub(super) async fn open(
    State(s): State<Services>,
    Auth(by): Auth<IncidentsManage>,
    Client(ctx): Client,
    Body(req): Body<NewIncident>,
) -> Result<Response, ApiError> {
    let view = s.open_incident(&by, &ctx, &req).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

pub(super) async fn get_one(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Path(id): Path<IncidentId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.incident_view(&by, id.as_str()).await?).into_response())
}

pub(super) async fn update(
    State(s): State<Services>,
    Auth(by): Auth<IncidentsManage>,
    Client(ctx): Client,
    Path(id): Path<IncidentId>,
    Body(ch): Body<IncidentChange>,
) -> Result<Response, ApiError> {
    Ok(Json(s.update_incident(&by, &ctx, id.as_str(), &ch).await?).into_response())
}

pub(super) async fn refresh_scope(
    State(s): State<Services>,
    Auth(by): Auth<IncidentsManage>,
    Client(ctx): Client,
    Path(id): Path<IncidentId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.refresh_incident_scope(&by, &ctx, id.as_str()).await?).into_response())
}

pub(super) async fn people(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Path(id): Path<IncidentId>,
) -> Result<Response, ApiError> {
    let people = s.incident_people(&by, id.as_str()).await?;
    Ok(Json(AffectedList { people }).into_response())
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
    Client(ctx): Client,
    Path(id): Path<IncidentId>,
    Body(req): Body<NotifyBody>,
) -> Result<Response, ApiError> {
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
        .notify_incident_people(&by, &ctx, id.as_str(), people.as_deref())
        .await?;
    Ok(Json(view).into_response())
}

pub(super) async fn evidence(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Client(ctx): Client,
    Path(id): Path<IncidentId>,
) -> Result<Response, ApiError> {
    let bundle = s.evidence_bundle(&by, &ctx, id.as_str()).await?;
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
