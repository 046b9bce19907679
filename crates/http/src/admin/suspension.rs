//! Suspended accounts (bulk personal-data reads, a mass command): lifted
//! only by another administrator.

use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Client, Path};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::AccountsManage;
use mamori_core::Services;
use mamori_domain::AdminAccount;
use mamori_domain::Permission as P;
use serde::Serialize;

/// The reinstated account.
#[derive(Debug, Serialize)]
struct Reinstated {
    admin: AdminAccount,
}

/// Reinstates a suspended account (see `Services::reinstate_admin`).
pub(super) async fn reinstate(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let admin = s.reinstate_admin(&by, &ctx, &name).await?;
    Ok(Json(Reinstated { admin }).into_response())
}

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![r(
        "POST",
        "/api/v1/admins/{name}/reinstate",
        perm(P::AccountsManage),
        routing::post(reinstate),
    )]
}
