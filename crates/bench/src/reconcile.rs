//! `--reconcile N`: policy reconciliation from scratch over N enrolled
//! devices.
//!
//! 1. `mamori serve` starts once on a new data directory, with APNs pointed
//!    at a local stand-in (`mamori-testkit`'s, in this process: it answers
//!    200 to every push); it creates the keys, the database with the real
//!    migrations, an owner account and an API token, and an APNs push
//!    certificate (issued by the stand-in's test "Apple" CA) is installed
//!    over the API. Then the server is stopped.
//! 2. **Fixture** (not a measurement): N enrolled iPhones are written
//!    straight into `devices` with rusqlite (status `enrolled`, the push
//!    certificate's topic, a push token and PushMagic, model, product and
//!    OS version), as check-in would have left them.
//! 3. The server starts again on that directory; [`POLICIES`] policies are
//!    created through the API (passcode, restrictions, Wi-Fi with a
//!    password, IKEv2 VPN with a shared secret, a second Wi-Fi), one
//!    dynamic group whose rule (`{"model": "iPhone"}`) matches every device,
//!    and the policies are assigned to it.
//! 4. `POST /api/v1/reconcile` is called until a pass queues nothing. Each
//!    pass queues at most 5,000 commands (what the route asks for) and
//!    pushes the devices it queued for; per pass: the request's wall time
//!    (commands queued per second), the server's CPU time (`utime + stime`
//!    from /proc) when the answer arrived and after the pass's pushes
//!    reached the stand-in, and RSS. Target: ≥ [`TARGET_PER_S`] commands
//!    queued per second.
//! 5. [`IDLE_PASSES`] more passes over the converged state (every profile
//!    in flight: nothing to queue): the cost of a pass that finds nothing.
//! 6. The server is stopped and the database is checked: N × 5
//!    InstallProfile commands and N × 5 `installing` profile rows.
//!
//! The server also reconciles by itself every 60 s (its first pass at
//! start, before any policy exists). The timed passes normally end well
//! within the first minute; the report says when they did not, and checks
//! that the timed passes queued everything themselves.

mod measure;
mod report;
#[cfg(test)]
mod tests;

pub use measure::measure;
pub(crate) use measure::{assign_policies, create_data_dir, write_devices, Apns};
pub use report::report;

use crate::procfs::Memory;
use anyhow::anyhow;
use serde_json::{json, Value};
use std::time::Duration;

/// Policies assigned to every device.
pub const POLICIES: usize = 5;
/// Commands queued per second the issue asks for.
pub const TARGET_PER_S: f64 = 5000.0;
/// Commands one `POST /api/v1/reconcile` queues at most (the server's).
pub const BATCH: usize = 5000;
/// Timed passes over the converged state.
pub const IDLE_PASSES: usize = 3;
/// The server's own reconciliation period.
const SERVER_PERIOD: Duration = Duration::from_secs(60);
/// How long a pass's pushes may take to reach the stand-in.
const PUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Wait after the pushes before reading /proc (the server finishes
/// handling the answers).
const SETTLE: Duration = Duration::from_millis(200);

/// What `POST /api/v1/reconcile` answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Enrolled devices looked at.
    pub devices: usize,
    /// InstallProfile commands queued.
    pub installs: usize,
    /// RemoveProfile commands queued.
    pub removals: usize,
    /// Changes left for the next pass.
    pub deferred: usize,
}

impl PassReport {
    /// Parses the route's JSON answer.
    pub fn parse(v: &Value) -> anyhow::Result<Self> {
        let n = |k: &str| -> anyhow::Result<usize> {
            v[k].as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| anyhow!("no {k:?} in {v}"))
        };
        Ok(Self {
            devices: n("devices")?,
            installs: n("installs")?,
            removals: n("removals")?,
            deferred: n("deferred")?,
        })
    }

    /// Commands queued.
    pub fn queued(&self) -> usize {
        self.installs + self.removals
    }
}

/// One timed pass.
#[derive(Debug, Clone)]
pub struct Pass {
    /// What the server answered.
    pub report: PassReport,
    /// Wall time of the request.
    pub wall: Duration,
    /// Server CPU (clock ticks) from the request until its answer.
    pub ticks: u64,
    /// Server CPU (clock ticks) from the request until its pushes arrived.
    pub ticks_with_push: u64,
    /// Pushes that reached the stand-in.
    pub pushes: usize,
    /// From the request until the last push arrived.
    pub push_wall: Duration,
    /// Server memory after the pass.
    pub memory: Memory,
    /// Time since the server started when the pass ended.
    pub since_start: Duration,
}

/// Everything `--reconcile` measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// With --postgres: how long `mamori migrate` took.
    pub migrated: Option<Duration>,
    /// Enrolled devices.
    pub devices: usize,
    /// Writing the fixture.
    pub fixture: Duration,
    /// The passes that queued commands.
    pub passes: Vec<Pass>,
    /// The passes over the converged state.
    pub idle: Vec<Pass>,
    /// Clock ticks per second.
    pub ticks_per_s: u64,
    /// Server memory before the first pass.
    pub start_memory: Memory,
    /// InstallProfile commands in the database at the end.
    pub db_installs: u64,
    /// `installing` profile rows in the database at the end.
    pub db_installing: u64,
}

/// A UDID-shaped identifier for fixture device `i`.
pub fn udid(i: usize) -> String {
    format!("00008110-{:016X}", 0x000A_0000_0000_0000u64 + i as u64)
}

/// The five policies: (name, kind, settings).
pub fn policies() -> [(&'static str, &'static str, Value); POLICIES] {
    [
        (
            "Passcode",
            "passcode",
            json!({"forcePIN": true, "minLength": 8, "maxFailedAttempts": 10}),
        ),
        (
            "Restrictions",
            "restrictions",
            json!({"allowOpenFromManagedToUnmanaged": false, "allowAppInstallation": true}),
        ),
        (
            "Corp Wi-Fi",
            "wifi",
            json!({"SSID_STR": "Corp", "EncryptionType": "WPA2",
                   "Password": "bench-wifi-password-1", "AutoJoin": true}),
        ),
        (
            "Office VPN",
            "vpn",
            json!({"VPNType": "IKEv2", "UserDefinedName": "Office", "IKEv2": {
                "RemoteAddress": "vpn.example.com", "RemoteIdentifier": "vpn.example.com",
                "LocalIdentifier": "client", "AuthenticationMethod": "SharedSecret",
                "SharedSecret": "bench-ike-secret"}}),
        ),
        (
            "Guest Wi-Fi",
            "wifi",
            json!({"SSID_STR": "Guest", "EncryptionType": "WPA2",
                   "Password": "bench-guest-password", "AutoJoin": false}),
        ),
    ]
}
