//! The people directory.

use super::DECIDERS;
use super::{r, AwaitingApproval, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client, Path};
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::access::permit::{
    AccountsManage, CommandsWrite, DevicesRead, PeopleWrite, PersonalDataRead,
};
use mamori_core::access::AdminActor;
use mamori_core::people::PersonInput;
use mamori_core::{CoreError, Services};
use mamori_domain::Permission as P;
use mamori_domain::{Approval, ApprovalId, DeviceKey, PersonId};
use serde::{Deserialize, Serialize};

/// A page of people (pseudonymous views, or with personal fields).
#[derive(Debug, Serialize)]
struct PeoplePage<T> {
    people: Vec<T>,
    next_after: Option<String>,
}

/// How many people a CSV import added.
#[derive(Debug, Serialize)]
struct Imported {
    imported: usize,
}

/// The requests this administrator may decide.
#[derive(Debug, Serialize)]
struct ApprovalList {
    approvals: Vec<Approval>,
}

/// Largest CSV import body (200,000 people of ~300 bytes).
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub(super) struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

fn next_after<T>(items: &[T], limit: u32, id: impl Fn(&T) -> String) -> Option<String> {
    (items.len() == limit as usize)
        .then(|| items.last().map(id))
        .flatten()
}

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let people = s.list_people(&by, page.after.as_deref(), limit).await?;
    let next_after = next_after(&people, limit, |p| p.id.to_string());
    Ok(Json(PeoplePage { people, next_after }).into_response())
}

pub(super) async fn list_plain(
    State(s): State<Services>,
    Auth(by): Auth<PersonalDataRead>,
    Client(ctx): Client,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let people = s
        .list_people_plain(&by, &ctx, page.after.as_deref(), limit)
        .await?;
    let next_after = next_after(&people, limit, |p| p.view.id.to_string());
    Ok(Json(PeoplePage { people, next_after }).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportBody {
    fields: Option<Vec<String>>,
}

/// Asks for an export of personal data (waits for a second security
/// officer).
pub(super) async fn request_export(
    State(s): State<Services>,
    Auth(by): Auth<PersonalDataRead>,
    Client(ctx): Client,
    Body(req): Body<ExportBody>,
) -> Result<Response, ApiError> {
    let a = s.request_export(&by, &ctx, req.fields.as_deref()).await?;
    Ok(AwaitingApproval::accepted(&a))
}

/// The approved export, once, to its requester.
pub(super) async fn download_export(
    State(s): State<Services>,
    Auth(by): Auth<PersonalDataRead>,
    Client(ctx): Client,
    Path(id): Path<ApprovalId>,
) -> Result<Response, ApiError> {
    let csv = s.download_export(&by, &ctx, id.as_str()).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mamori-people-export.csv\"".to_owned(),
            ),
        ],
        csv.to_vec(),
    )
        .into_response())
}

pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(ctx): Client,
    Body(input): Body<PersonInput>,
) -> Result<Response, ApiError> {
    let person = s.create_person(&by, &ctx, &input).await?;
    Ok((StatusCode::CREATED, Json(person)).into_response())
}

pub(super) async fn import(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(ctx): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("text/csv") {
        return Err(CoreError::UnsupportedMediaType("Content-Type must be text/csv".into()).into());
    }
    let n = s.import_people_csv(&by, &ctx, &body).await?;
    Ok((StatusCode::CREATED, Json(Imported { imported: n })).into_response())
}

pub(super) async fn get(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Path(id): Path<PersonId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.person(&by, id.as_str()).await?).into_response())
}

pub(super) async fn get_plain(
    State(s): State<Services>,
    Auth(by): Auth<PersonalDataRead>,
    Client(ctx): Client,
    Path(id): Path<PersonId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.person_plain(&by, &ctx, id.as_str()).await?).into_response())
}

pub(super) async fn update(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(ctx): Client,
    Path(id): Path<PersonId>,
    Body(input): Body<PersonInput>,
) -> Result<Response, ApiError> {
    Ok(Json(s.update_person(&by, &ctx, id.as_str(), &input).await?).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct Lookup {
    email: Option<String>,
    user_id: Option<String>,
}

pub(super) async fn lookup(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(ctx): Client,
    Query(q): Query<Lookup>,
) -> Result<Response, ApiError> {
    let person = s
        .lookup_person(&by, &ctx, q.email.as_deref(), q.user_id.as_deref())
        .await?;
    Ok(Json(person).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Assign {
    person_id: Option<String>,
}

pub(super) async fn assign(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Path(udid): Path<DeviceKey>,
    Body(req): Body<Assign>,
) -> Result<Response, ApiError> {
    s.assign_device(&by, &ctx, udid.as_str(), req.person_id.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn purge(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(ctx): Client,
    Path(id): Path<PersonId>,
) -> Result<Response, ApiError> {
    s.purge_person_now(&by, &ctx, id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OffboardBody {
    device_action: Option<String>,
}

pub(super) async fn offboard(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(ctx): Client,
    Path(id): Path<PersonId>,
    Body(req): Body<OffboardBody>,
) -> Result<Response, ApiError> {
    let action = match req.device_action.as_deref() {
        None => None,
        Some(a) => Some(
            mamori_core::people::offboard::OffboardAction::parse(a).ok_or_else(|| {
                CoreError::BadRequest("device_action must be remove_management or erase".into())
            })?,
        ),
    };
    let report = s.offboard_person(&by, &ctx, id.as_str(), action).await?;
    Ok(Json(report).into_response())
}

pub(super) async fn approvals(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
) -> Result<Response, ApiError> {
    let approvals = s.pending_approvals(&actor).await?;
    Ok(Json(ApprovalList { approvals }).into_response())
}

pub(super) async fn approve(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Path(id): Path<ApprovalId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.approve(&actor, &ctx, id.as_str()).await?).into_response())
}

pub(super) async fn reject(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Path(id): Path<ApprovalId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.reject(&actor, &ctx, id.as_str()).await?).into_response())
}

pub(super) async fn link_admin(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Path(name): Path<String>,
    Body(req): Body<Assign>,
) -> Result<Response, ApiError> {
    s.link_admin_person(&by, &ctx, &name, req.person_id.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// This area's admin routes (a part of [`super::table`]).
// Length: one declarative table (17 routes, one `r(..)` entry each, as
// rustfmt lays them out); split, the area's routes would be scattered.
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        // People (personal fields only ever sealed; plaintext is its own
        // permission and every read is recorded).
        r(
            "GET",
            "/api/v1/people",
            perm(P::DevicesRead),
            routing::get(list),
        ),
        r(
            "POST",
            "/api/v1/people",
            perm(P::PeopleWrite),
            routing::post(create),
        ),
        r(
            "POST",
            "/api/v1/people/import",
            perm(P::PeopleWrite),
            routing::post(import).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        ),
        r(
            "GET",
            "/api/v1/people/lookup",
            perm(P::PeopleWrite),
            routing::get(lookup),
        ),
        r(
            "GET",
            "/api/v1/people/personal-data",
            perm(P::PersonalDataRead),
            routing::get(list_plain),
        ),
        r(
            "GET",
            "/api/v1/people/{id}",
            perm(P::DevicesRead),
            routing::get(get),
        ),
        r(
            "PATCH",
            "/api/v1/people/{id}",
            perm(P::PeopleWrite),
            routing::patch(update),
        ),
        r(
            "POST",
            "/api/v1/people/exports",
            perm(P::PersonalDataRead),
            routing::post(request_export),
        ),
        r(
            "GET",
            "/api/v1/people/exports/{id}",
            perm(P::PersonalDataRead),
            routing::get(download_export),
        ),
        r(
            "GET",
            "/api/v1/people/{id}/personal-data",
            perm(P::PersonalDataRead),
            routing::get(get_plain),
        ),
        r(
            "POST",
            "/api/v1/people/{id}/offboard",
            perm(P::PeopleWrite),
            routing::post(offboard),
        ),
        r(
            "GET",
            "/api/v1/approvals",
            DECIDERS,
            routing::get(approvals),
        ),
        r(
            "POST",
            "/api/v1/approvals/{id}/approve",
            DECIDERS,
            routing::post(approve),
        ),
        r(
            "POST",
            "/api/v1/approvals/{id}/reject",
            DECIDERS,
            routing::post(reject),
        ),
        r(
            "PUT",
            "/api/v1/admins/{name}/person",
            perm(P::AccountsManage),
            routing::put(link_admin),
        ),
        r(
            "POST",
            "/api/v1/people/{id}/purge",
            perm(P::PeopleWrite),
            routing::post(purge),
        ),
        // Offboarding a person queues RemoveProfile (or an erase) for the
        // devices assigned to them: assigning is a decision about devices.
        r(
            "PUT",
            "/api/v1/devices/{udid}/person",
            perm(P::CommandsWrite),
            routing::put(assign),
        ),
    ]
}
