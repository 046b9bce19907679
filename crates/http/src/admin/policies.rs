//! Policies: typed settings that become configuration profiles. Secrets
//! are accepted but never returned (`secrets` lists which are set).

use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client, Path};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::{CommandsWrite, DevicesRead};
use mamori_core::fleet::policies::{PolicyChange, PolicyInput};
use mamori_core::Services;
use mamori_domain::Permission as P;
use mamori_domain::{Policy, PolicyId};
use serde::Serialize;

/// Every policy.
#[derive(Debug, Serialize)]
struct PolicyList {
    policies: Vec<Policy>,
}

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
) -> Result<Response, ApiError> {
    let policies = s.policies(&by).await?;
    Ok(Json(PolicyList { policies }).into_response())
}

pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Body(input): Body<PolicyInput>,
) -> Result<Response, ApiError> {
    let p = s.create_policy(&by, &ctx, &input).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

pub(super) async fn get_one(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Path(id): Path<PolicyId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.policy(&by, id.as_str()).await?).into_response())
}

pub(super) async fn update(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Path(id): Path<PolicyId>,
    Body(change): Body<PolicyChange>,
) -> Result<Response, ApiError> {
    Ok(Json(s.update_policy(&by, &ctx, id.as_str(), &change).await?).into_response())
}

pub(super) async fn delete_one(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Path(id): Path<PolicyId>,
) -> Result<Response, ApiError> {
    s.delete_policy(&by, &ctx, id.as_str()).await?;
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
