//! Devices: listing, one device, its commands; queuing commands.

use super::{r, AwaitingApproval, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client, Path};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::{CommandsRead, DeviceActions, DevicesRead};
use mamori_core::device::commands::{CommandView, Queued};
use mamori_core::device::devices::DeviceView;
use mamori_core::{CoreError, Services};
use mamori_domain::Permission as P;
use mamori_domain::{CommandRecord, CommandState, CommandUuid, DeviceKey};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

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
    Client(ctx): Client,
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
    Ok(Json(DevicePage {
        devices,
        next_after: next,
    })
    .into_response())
}

pub(super) async fn get_device(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Client(ctx): Client,
    Path(udid): Path<DeviceKey>,
) -> Result<Response, ApiError> {
    let device = s
        .device_view(&by, &ctx, &udid)
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
    Client(ctx): Client,
    Query(flag): Query<PushFlag>,
    Body(req): Body<EnqueueBody>,
) -> Result<Response, ApiError> {
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
        mamori_core::device::commands::Enqueued::Queued(commands) => {
            (StatusCode::OK, Json(QueuedList { commands })).into_response()
        }
        mamori_core::device::commands::Enqueued::AwaitingApproval(a) => {
            AwaitingApproval::accepted(&a)
        }
    })
}

pub(super) async fn device_commands(
    State(s): State<Services>,
    Auth(by): Auth<CommandsRead>,
    Path(udid): Path<DeviceKey>,
) -> Result<Response, ApiError> {
    let commands = s.device_commands(&by, udid.as_str()).await?;
    Ok(Json(CommandList { commands }).into_response())
}

pub(super) async fn command_status(
    State(s): State<Services>,
    Auth(by): Auth<CommandsRead>,
    Client(ctx): Client,
    Path(uuid): Path<CommandUuid>,
) -> Result<Response, ApiError> {
    let view = s.command_status(&by, &ctx, uuid.as_str()).await?;
    Ok(Json(CommandStatus::of(&view)).into_response())
}

/// A page of devices.
#[derive(Debug, Serialize)]
struct DevicePage {
    devices: Vec<DeviceView>,
    next_after: Option<String>,
}

/// The commands just queued, one per device.
#[derive(Debug, Serialize)]
struct QueuedList {
    commands: Vec<Queued>,
}

/// A device's recent commands.
#[derive(Debug, Serialize)]
struct CommandList {
    commands: Vec<CommandRecord>,
}

/// Where one command stands, with its (possibly redacted) result; `devices`
/// repeats it per device, the shape a command to many devices would have.
#[derive(Debug, Serialize)]
struct CommandStatus<'a> {
    command_uuid: &'a CommandUuid,
    request_type: &'a str,
    udid: &'a DeviceKey,
    status: CommandState,
    queued_at: Option<String>,
    updated_at: Option<String>,
    #[serde(flatten)]
    outcome: CommandOutcome<'a>,
    devices: [CommandOnDevice<'a>; 1],
}

/// The command as one device answered it.
#[derive(Debug, Serialize)]
struct CommandOnDevice<'a> {
    udid: &'a DeviceKey,
    status: CommandState,
    #[serde(flatten)]
    outcome: CommandOutcome<'a>,
}

/// A device's answer: its result, its error chain, what was withheld.
#[derive(Debug, Clone, Copy, Serialize)]
struct CommandOutcome<'a> {
    result: &'a Option<serde_json::Value>,
    error_chain: &'a Option<serde_json::Value>,
    redacted: &'a [String],
}

impl<'a> CommandStatus<'a> {
    fn of(view: &'a CommandView) -> Self {
        let r = &view.record;
        let outcome = CommandOutcome {
            result: &r.result,
            error_chain: &r.error_chain,
            redacted: &view.redacted,
        };
        Self {
            command_uuid: &r.command_uuid,
            request_type: &r.request_type,
            udid: &r.udid,
            status: r.state,
            queued_at: r.queued_at.format(&Rfc3339).ok(),
            updated_at: r.updated_at.format(&Rfc3339).ok(),
            outcome,
            devices: [CommandOnDevice {
                udid: &r.udid,
                status: r.state,
                outcome,
            }],
        }
    }
}
