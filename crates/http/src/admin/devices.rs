//! Devices: listing, one device, its commands; queuing commands.

use super::json_body;
use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::auth::permit::{CommandsRead, DeviceActions, DevicesRead};
use mamori_core::auth::ClientContext;
use mamori_core::{CoreError, Services};
use mamori_domain::DeviceKey;
use mamori_domain::Permission as P;
use serde::Deserialize;
use serde_json::json;

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        r(
            "GET",
            "/api/v1/devices/{udid}/commands",
            perm(P::CommandsRead),
            routing::get(device_commands),
        ),
        r(
            "GET",
            "/api/v1/devices",
            perm(P::DevicesRead),
            routing::get(list_devices),
        ),
        r(
            "GET",
            "/api/v1/devices/{udid}",
            perm(P::DevicesRead),
            routing::get(get_device),
        ),
        // Helpdesk actions need device_actions; anything else commands_write
        // (checked by the service, per command).
        r(
            "POST",
            "/api/v1/commands",
            perm(P::DeviceActions),
            routing::post(enqueue),
        ),
        r(
            "GET",
            "/api/v1/commands/{command_uuid}",
            perm(P::CommandsRead),
            routing::get(command_status),
        ),
    ]
}

#[derive(Debug, Deserialize)]
pub(super) struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn list_devices(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Extension(ctx): Extension<ClientContext>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let after = page
        .after
        .as_deref()
        .map(DeviceKey::parse)
        .transpose()
        .map_err(|e| CoreError::BadRequest(e.to_string()))?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let devices = s.devices_page(&by, &ctx, after.as_ref(), limit).await?;
    let next = (devices.len() == limit as usize)
        .then(|| devices.last().map(|d| d.device.udid.to_string()))
        .flatten();
    Ok(Json(json!({ "devices": devices, "next_after": next })).into_response())
}

pub(super) async fn get_device(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Extension(ctx): Extension<ClientContext>,
    Path(udid): Path<String>,
) -> Result<Response, ApiError> {
    let key = DeviceKey::parse(&udid).map_err(|e| CoreError::BadRequest(e.to_string()))?;
    let device = s
        .device_view(&by, &ctx, &key)
        .await?
        .ok_or_else(|| CoreError::NotFound("no such device".into()))?;
    Ok(Json(device).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnqueueBody {
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    command: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(super) struct PushFlag {
    push: Option<bool>,
}

pub(super) async fn enqueue(
    State(s): State<Services>,
    Auth(by): Auth<DeviceActions>,
    Extension(ctx): Extension<ClientContext>,
    Query(flag): Query<PushFlag>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: EnqueueBody = json_body(&headers, &body)?;
    let queued = s
        .enqueue_command(
            &by,
            &ctx,
            &req.devices,
            &req.command,
            flag.push.unwrap_or(true),
        )
        .await?;
    Ok(match queued {
        mamori_core::commands::Enqueued::Queued(q) => {
            (StatusCode::OK, Json(json!({ "commands": q }))).into_response()
        }
        mamori_core::commands::Enqueued::AwaitingApproval(a) => {
            (StatusCode::ACCEPTED, Json(json!({ "approval": a }))).into_response()
        }
    })
}

pub(super) async fn device_commands(
    State(s): State<Services>,
    Auth(by): Auth<CommandsRead>,
    Path(udid): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(json!({ "commands": s.device_commands(&by, &udid).await? })).into_response())
}

pub(super) async fn command_status(
    State(s): State<Services>,
    Auth(by): Auth<CommandsRead>,
    Extension(ctx): Extension<ClientContext>,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    let view = s.command_status(&by, &ctx, &uuid).await?;
    let r = view.record;
    Ok(Json(json!({
        "command_uuid": r.command_uuid,
        "request_type": r.request_type,
        "udid": r.udid,
        "status": r.state,
        "queued_at": r.queued_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updated_at": r.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "result": r.result,
        "error_chain": r.error_chain,
        "redacted": view.redacted,
        "devices": [{
            "udid": r.udid,
            "status": r.state,
            "result": r.result,
            "error_chain": r.error_chain,
            "redacted": view.redacted,
        }],
    }))
    .into_response())
}
