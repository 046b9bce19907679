//! Policies: typed settings that become configuration profiles. Secrets
//! are accepted but never returned (`secrets` lists which are set).

use super::json_body;
use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::auth::permit::{CommandsWrite, DevicesRead};
use mamori_core::auth::ClientContext;
use mamori_core::policies::{PolicyChange, PolicyInput};
use mamori_core::Services;
use mamori_domain::Permission as P;
use serde_json::json;

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
) -> Result<Response, ApiError> {
    Ok(Json(json!({ "policies": s.policies(&by).await? })).into_response())
}

pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Extension(ctx): Extension<ClientContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: PolicyInput = json_body(&headers, &body)?;
    let p = s.create_policy(&by, &ctx, &input).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

pub(super) async fn get_one(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.policy(&by, &id).await?).into_response())
}

pub(super) async fn update(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Extension(ctx): Extension<ClientContext>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let change: PolicyChange = json_body(&headers, &body)?;
    Ok(Json(s.update_policy(&by, &ctx, &id, &change).await?).into_response())
}

pub(super) async fn delete_one(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Extension(ctx): Extension<ClientContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    s.delete_policy(&by, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        r(
            "GET",
            "/api/v1/policies",
            perm(P::DevicesRead),
            routing::get(list),
        ),
        r(
            "POST",
            "/api/v1/policies",
            perm(P::CommandsWrite),
            routing::post(create),
        ),
        r(
            "GET",
            "/api/v1/policies/{id}",
            perm(P::DevicesRead),
            routing::get(get_one),
        ),
        r(
            "PATCH",
            "/api/v1/policies/{id}",
            perm(P::CommandsWrite),
            routing::patch(update),
        ),
        r(
            "DELETE",
            "/api/v1/policies/{id}",
            perm(P::CommandsWrite),
            routing::delete(delete_one),
        ),
    ]
}
