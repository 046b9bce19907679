//! Device groups, policy assignment and the profiles on each device.

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
use mamori_core::device::devices::DeviceView;
use mamori_core::fleet::groups::GroupInput;
use mamori_core::Services;
use mamori_domain::Permission as P;
use mamori_domain::{DeviceGroup, DeviceKey, DeviceProfile, GroupId};
use mamori_ports::InstalledApp;
use serde::{Deserialize, Serialize};

/// Every group.
#[derive(Debug, Serialize)]
struct GroupList {
    groups: Vec<DeviceGroup>,
}

/// The profiles on one device.
#[derive(Debug, Serialize)]
struct ProfileList {
    profiles: Vec<DeviceProfile>,
}

/// The devices a search found.
#[derive(Debug, Serialize)]
struct DeviceList {
    devices: Vec<DeviceView>,
}

/// The apps on one device.
#[derive(Debug, Serialize)]
struct AppList {
    apps: Vec<InstalledApp>,
}

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
) -> Result<Response, ApiError> {
    let groups = s.groups(&by).await?;
    Ok(Json(GroupList { groups }).into_response())
}

pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Body(input): Body<GroupInput>,
) -> Result<Response, ApiError> {
    let g = s.create_group(&by, &ctx, &input).await?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

pub(super) async fn get_one(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Path(id): Path<GroupId>,
) -> Result<Response, ApiError> {
    Ok(Json(s.group(&by, id.as_str()).await?).into_response())
}

pub(super) async fn delete_one(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Path(id): Path<GroupId>,
) -> Result<Response, ApiError> {
    s.delete_group(&by, &ctx, id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MembersBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

pub(super) async fn members(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Path(id): Path<GroupId>,
    Body(b): Body<MembersBody>,
) -> Result<Response, ApiError> {
    let g = s
        .change_group_members(&by, &ctx, id.as_str(), &b.add, &b.remove)
        .await?;
    Ok(Json(g).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PoliciesBody {
    policies: Vec<String>,
}

pub(super) async fn policies(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Path(id): Path<GroupId>,
    Body(b): Body<PoliciesBody>,
) -> Result<Response, ApiError> {
    let g = s
        .set_group_policies(&by, &ctx, id.as_str(), &b.policies)
        .await?;
    Ok(Json(g).into_response())
}

pub(super) async fn device_profiles(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Path(udid): Path<DeviceKey>,
) -> Result<Response, ApiError> {
    let profiles = s.device_profiles(&by, udid.as_str()).await?;
    Ok(Json(ProfileList { profiles }).into_response())
}

pub(super) async fn reconcile(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
) -> Result<Response, ApiError> {
    Ok(Json(s.reconcile_once(&by, 5000).await?).into_response())
}

pub(super) async fn compliance(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(ctx): Client,
    Path(id): Path<GroupId>,
    Body(rules): Body<Option<mamori_core::fleet::compliance::ComplianceRules>>,
) -> Result<Response, ApiError> {
    s.set_group_compliance(&by, &ctx, id.as_str(), rules.as_ref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn compliance_report(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
) -> Result<Response, ApiError> {
    Ok(Json(s.compliance_report(&by).await?).into_response())
}

pub(super) async fn search_devices(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Client(ctx): Client,
    axum::extract::Query(q): axum::extract::Query<mamori_core::device::inventory::DeviceQuery>,
) -> Result<Response, ApiError> {
    let devices = s.search_devices(&by, &ctx, &q).await?;
    Ok(Json(DeviceList { devices }).into_response())
}

pub(super) async fn device_apps(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Path(udid): Path<DeviceKey>,
) -> Result<Response, ApiError> {
    let apps = s.device_apps(&by, udid.as_str()).await?;
    Ok(Json(AppList { apps }).into_response())
}

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        r(
            "GET",
            "/api/v1/groups",
            perm(P::DevicesRead),
            routing::get(list),
        ),
        r(
            "POST",
            "/api/v1/groups",
            perm(P::CommandsWrite),
            routing::post(create),
        ),
        r(
            "GET",
            "/api/v1/groups/{id}",
            perm(P::DevicesRead),
            routing::get(get_one),
        ),
        r(
            "DELETE",
            "/api/v1/groups/{id}",
            perm(P::CommandsWrite),
            routing::delete(delete_one),
        ),
        r(
            "POST",
            "/api/v1/groups/{id}/devices",
            perm(P::CommandsWrite),
            routing::post(members),
        ),
        r(
            "PUT",
            "/api/v1/groups/{id}/policies",
            perm(P::CommandsWrite),
            routing::put(policies),
        ),
        r(
            "PUT",
            "/api/v1/groups/{id}/compliance",
            perm(P::CommandsWrite),
            routing::put(compliance),
        ),
        r(
            "GET",
            "/api/v1/reports/compliance",
            perm(P::DevicesRead),
            routing::get(compliance_report),
        ),
        r(
            "GET",
            "/api/v1/devices/search",
            perm(P::DevicesRead),
            routing::get(search_devices),
        ),
        r(
            "GET",
            "/api/v1/devices/{udid}/apps",
            perm(P::DevicesRead),
            routing::get(device_apps),
        ),
        r(
            "GET",
            "/api/v1/devices/{udid}/profiles",
            perm(P::DevicesRead),
            routing::get(device_profiles),
        ),
        r(
            "POST",
            "/api/v1/reconcile",
            perm(P::CommandsWrite),
            routing::post(reconcile),
        ),
    ]
}
