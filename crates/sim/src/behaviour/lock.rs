//! The built-in answers to the lock, lost-mode and passcode commands
//! (`DeviceLock`, `EnableLostMode`, `DisableLostMode`, `PlayLostModeSound`,
//! `DeviceLocation`, `ClearPasscode`).

use plist::{Dictionary, Value};

use super::{s, DeviceState};
use crate::command::{Command, ErrorChainItem, Response};
use crate::hardware::DeviceInfo;

/// `DeviceLock`.
pub(super) fn device_lock(info: &DeviceInfo, state: &mut DeviceState, cmd: &Command) -> Response {
    if info.is_mac() {
        // A Mac needs a six-digit PIN to unlock it afterwards.
        match cmd.get("PIN").and_then(Value::as_string) {
            Some(pin) if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) => {
                state.lock_pin = Some(pin.to_owned());
            }
            _ => return Response::CommandFormatError,
        }
    }
    state.locked = true;
    Response::ack()
}

/// `EnableLostMode` (not on a Mac), keeping the lock-screen message.
pub(super) fn enable_lost_mode(
    info: &DeviceInfo,
    state: &mut DeviceState,
    cmd: &Command,
) -> Response {
    if info.is_mac() {
        return Response::unknown_request_type();
    }
    state.lost_mode = true;
    state.lost_message = cmd
        .get("Message")
        .and_then(Value::as_string)
        .map(str::to_owned);
    Response::ack()
}

/// `DisableLostMode`.
pub(super) fn disable_lost_mode(state: &mut DeviceState) -> Response {
    state.lost_mode = false;
    state.lost_message = None;
    Response::ack()
}

/// The error of a lost-mode command sent to a device not in lost mode.
pub(super) fn not_in_lost_mode() -> Response {
    Response::Error(vec![ErrorChainItem::new(
        12067,
        "MCMDMErrorDomain",
        "The device is not in Lost Mode.",
    )])
}

/// `DeviceLocation` in lost mode: where the device is.
pub(super) fn device_location(state: &DeviceState) -> Response {
    let mut d = Dictionary::new();
    d.insert("Latitude".into(), Value::Real(state.location.0));
    d.insert("Longitude".into(), Value::Real(state.location.1));
    d.insert("HorizontalAccuracy".into(), Value::Real(12.0));
    d.insert("VerticalAccuracy".into(), Value::Real(8.0));
    d.insert("Altitude".into(), Value::Real(40.0));
    d.insert("Speed".into(), Value::Real(0.0));
    d.insert("Course".into(), Value::Real(0.0));
    d.insert("Timestamp".into(), s("2026-11-24T09:30:00Z"));
    Response::Acknowledged(d)
}

/// `ClearPasscode`: only with the UnlockToken the device sent.
pub(super) fn clear_passcode(state: &mut DeviceState, cmd: &Command) -> Response {
    let given = cmd.get("UnlockToken").and_then(Value::as_data);
    match (&state.unlock_token, given) {
        (Some(want), Some(got)) if want.as_slice() == got => {
            state.passcode_clears += 1;
            Response::ack()
        }
        _ => Response::Error(vec![ErrorChainItem::new(
            12021,
            "MCMDMErrorDomain",
            "The unlock token is invalid.",
        )]),
    }
}
