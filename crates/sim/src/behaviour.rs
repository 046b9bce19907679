//! The simulator's built-in answers to MDM commands, with the result keys of
//! Apple's schema (`mdm/commands/*.yaml`), and the device-side state they
//! read and change.

use plist::{Dictionary, Value};

use crate::command::{Command, ErrorChainItem, Response};
use crate::hardware::DeviceInfo;
use crate::profile::{opt_str, parse_profile_dict, payload_dicts};

mod lock;

/// `MCProfileErrorDomain` code the simulator uses for unparsable profiles.
pub const ERR_MALFORMED_PROFILE: i64 = 1000;
/// `MCProfileErrorDomain` code the simulator uses for removing a profile that
/// is not installed.
pub const ERR_PROFILE_NOT_INSTALLED: i64 = 1009;

/// Summary of one payload of an installed profile (as in `ProfileList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSummary {
    /// `PayloadType`.
    pub payload_type: String,
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: String,
    /// `PayloadVersion`.
    pub version: u64,
    /// `PayloadDisplayName`.
    pub display_name: Option<String>,
}

/// A configuration profile installed on the simulated device.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledProfile {
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: String,
    /// `PayloadVersion`.
    pub version: u64,
    /// `PayloadDisplayName`.
    pub display_name: Option<String>,
    /// `PayloadOrganization`.
    pub organization: Option<String>,
    /// `PayloadDescription`.
    pub description: Option<String>,
    /// `PayloadRemovalDisallowed`.
    pub removal_disallowed: bool,
    /// Installed through MDM (`InstallProfile`) rather than by the user.
    pub is_managed: bool,
    /// The profile's payloads.
    pub payloads: Vec<PayloadSummary>,
    /// The whole profile dictionary as installed.
    pub raw: Dictionary,
}

impl InstalledProfile {
    /// Reads a profile dictionary; `None` if it lacks `PayloadIdentifier`,
    /// `PayloadUUID` or has a `PayloadType` other than `Configuration`.
    pub fn from_dict(raw: Dictionary, is_managed: bool) -> Option<Self> {
        let ty = raw.get("PayloadType").and_then(Value::as_string);
        if ty.is_some_and(|t| t != "Configuration") {
            return None;
        }
        let payloads = payload_dicts(&raw)
            .into_iter()
            .map(|p| PayloadSummary {
                payload_type: opt_str(p, "PayloadType").unwrap_or_default(),
                identifier: opt_str(p, "PayloadIdentifier").unwrap_or_default(),
                uuid: opt_str(p, "PayloadUUID").unwrap_or_default(),
                version: version_of(p),
                display_name: opt_str(p, "PayloadDisplayName"),
            })
            .collect();
        Some(Self {
            identifier: opt_str(&raw, "PayloadIdentifier").filter(|s| !s.is_empty())?,
            uuid: opt_str(&raw, "PayloadUUID").filter(|s| !s.is_empty())?,
            version: version_of(&raw),
            display_name: opt_str(&raw, "PayloadDisplayName"),
            organization: opt_str(&raw, "PayloadOrganization"),
            description: opt_str(&raw, "PayloadDescription"),
            removal_disallowed: raw
                .get("PayloadRemovalDisallowed")
                .and_then(Value::as_boolean)
                .unwrap_or(false),
            is_managed,
            payloads,
            raw,
        })
    }

    fn to_plist(&self) -> Value {
        let mut d = Dictionary::new();
        d.insert("PayloadIdentifier".into(), s(&self.identifier));
        d.insert("PayloadUUID".into(), s(&self.uuid));
        d.insert("PayloadVersion".into(), int(self.version));
        for (k, v) in [
            ("PayloadDisplayName", &self.display_name),
            ("PayloadOrganization", &self.organization),
            ("PayloadDescription", &self.description),
        ] {
            if let Some(v) = v {
                d.insert(k.into(), s(v));
            }
        }
        d.insert(
            "PayloadRemovalDisallowed".into(),
            Value::Boolean(self.removal_disallowed),
        );
        d.insert("HasRemovalPasscode".into(), Value::Boolean(false));
        d.insert("IsEncrypted".into(), Value::Boolean(false));
        d.insert("IsManaged".into(), Value::Boolean(self.is_managed));
        let content = self
            .payloads
            .iter()
            .map(|p| {
                let mut pd = Dictionary::new();
                pd.insert("PayloadType".into(), s(&p.payload_type));
                pd.insert("PayloadVersion".into(), int(p.version));
                pd.insert("PayloadIdentifier".into(), s(&p.identifier));
                pd.insert("PayloadUUID".into(), s(&p.uuid));
                if let Some(n) = &p.display_name {
                    pd.insert("PayloadDisplayName".into(), s(n));
                }
                Value::Dictionary(pd)
            })
            .collect();
        d.insert("PayloadContent".into(), Value::Array(content));
        Value::Dictionary(d)
    }
}

/// An application reported by `InstalledApplicationList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledApp {
    /// Bundle identifier.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// `CFBundleShortVersionString`.
    pub short_version: String,
    /// `CFBundleVersion`.
    pub version: String,
    /// Bundle size in bytes.
    pub bundle_size: u64,
}

impl InstalledApp {
    fn new(identifier: &str, name: &str, short: &str, version: &str, size: u64) -> Self {
        Self {
            identifier: identifier.into(),
            name: name.into(),
            short_version: short.into(),
            version: version.into(),
            bundle_size: size,
        }
    }

    /// A few realistic apps for `info`'s platform.
    pub fn defaults_for(info: &DeviceInfo) -> Vec<Self> {
        if info.is_ios() {
            vec![
                Self::new(
                    "com.microsoft.Office.Outlook",
                    "Outlook",
                    "4.2446.0",
                    "4.2446.0",
                    311_754_752,
                ),
                Self::new(
                    "com.tinyspeck.chatlyio",
                    "Slack",
                    "24.11.10",
                    "24.11.10.0",
                    254_803_968,
                ),
                Self::new(
                    "com.google.chrome.ios",
                    "Chrome",
                    "131.0.6778.73",
                    "131.6778.73",
                    196_542_464,
                ),
            ]
        } else {
            vec![
                Self::new(
                    "com.apple.Safari",
                    "Safari",
                    "18.1",
                    "20619.2.8.11.10",
                    14_987_264,
                ),
                Self::new(
                    "com.microsoft.VSCode",
                    "Visual Studio Code",
                    "1.95.3",
                    "1.95.3",
                    587_202_560,
                ),
                Self::new(
                    "com.tinyspeck.slackmacgap",
                    "Slack",
                    "4.41.105",
                    "441000105",
                    503_316_480,
                ),
            ]
        }
    }

    fn to_plist(&self) -> Value {
        let mut d = Dictionary::new();
        d.insert("Identifier".into(), s(&self.identifier));
        d.insert("Name".into(), s(&self.name));
        d.insert("ShortVersion".into(), s(&self.short_version));
        d.insert("Version".into(), s(&self.version));
        d.insert("BundleSize".into(), int(self.bundle_size));
        d.insert("Installing".into(), Value::Boolean(false));
        Value::Dictionary(d)
    }
}

/// Mutable device-side state that the built-in behaviour reads and changes.
#[derive(Debug, Clone, Default)]
pub struct DeviceState {
    /// Installed configuration profiles (the enrollment profile first, once
    /// enrolled).
    pub profiles: Vec<InstalledProfile>,
    /// Installed applications.
    pub apps: Vec<InstalledApp>,
    /// Set by an acknowledged `DeviceLock`.
    pub locked: bool,
    /// Number of acknowledged `RestartDevice` commands.
    pub restarts: u32,
    /// Number of acknowledged `ShutDownDevice` commands.
    pub shutdowns: u32,
    /// The next this-many commands are answered `NotNow`.
    pub not_now_remaining: usize,
    /// APNs device token (sent in `TokenUpdate`, reported as `PushToken`).
    pub push_token: Vec<u8>,
    /// Lost mode (`EnableLostMode` / `DisableLostMode`).
    pub lost_mode: bool,
    /// The lost-mode message shown on the lock screen.
    pub lost_message: Option<String>,
    /// `PlayLostModeSound` commands acknowledged.
    pub lost_sounds: u32,
    /// The PIN a Mac was locked with (`DeviceLock` with `PIN`).
    pub lock_pin: Option<String>,
    /// The UnlockToken the device sent; `ClearPasscode` must carry it.
    pub unlock_token: Option<Vec<u8>>,
    /// `ClearPasscode` commands acknowledged.
    pub passcode_clears: u32,
    /// Where the device is (reported by `DeviceLocation` in lost mode).
    pub location: (f64, f64),
}

impl DeviceState {
    /// The installed profile with `identifier`, if any.
    pub fn profile(&self, identifier: &str) -> Option<&InstalledProfile> {
        self.profiles.iter().find(|p| p.identifier == identifier)
    }

    fn install(&mut self, profile: InstalledProfile) {
        self.profiles.retain(|p| p.identifier != profile.identifier);
        self.profiles.push(profile);
    }
}

/// The simulator's answer to `cmd` (mutating `state` as the real device
/// would). `EraseDevice` is only acknowledged here; the wipe itself happens
/// once the acknowledgement was sent.
pub fn builtin_response(info: &DeviceInfo, state: &mut DeviceState, cmd: &Command) -> Response {
    if state.not_now_remaining > 0 {
        state.not_now_remaining -= 1;
        return Response::NotNow;
    }
    match cmd.request_type.as_str() {
        "DeviceInformation" => device_information(info, state, cmd),
        "SecurityInfo" => single("SecurityInfo", security_info(info)),
        "ProfileList" => profile_list(state, cmd),
        "InstallProfile" => install_profile(state, cmd),
        "RemoveProfile" => remove_profile(state, cmd),
        "InstalledApplicationList" => installed_apps(state, cmd),
        "DeviceLock" => lock::device_lock(info, state, cmd),
        "EnableLostMode" => lock::enable_lost_mode(info, state, cmd),
        "DisableLostMode" => lock::disable_lost_mode(state),
        "PlayLostModeSound" | "DeviceLocation" if !state.lost_mode => lock::not_in_lost_mode(),
        "PlayLostModeSound" => {
            state.lost_sounds += 1;
            Response::ack()
        }
        "DeviceLocation" => lock::device_location(state),
        "ClearPasscode" => lock::clear_passcode(state, cmd),
        "RestartDevice" => {
            state.restarts += 1;
            Response::ack()
        }
        "ShutDownDevice" => {
            state.shutdowns += 1;
            Response::ack()
        }
        "EraseDevice" => Response::ack(),
        _ => Response::unknown_request_type(),
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn int(v: u64) -> Value {
    Value::Integer(v.into())
}

fn version_of(d: &Dictionary) -> u64 {
    d.get("PayloadVersion")
        .and_then(Value::as_unsigned_integer)
        .unwrap_or(1)
}

fn single(key: &str, value: Value) -> Response {
    let mut d = Dictionary::new();
    d.insert(key.into(), value);
    Response::Acknowledged(d)
}

/// Query keys answered when `Queries` asks for nothing specific.
const DEFAULT_QUERIES: &[&str] = &[
    "UDID",
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "ModelName",
    "Model",
    "ModelNumber",
    "ProductName",
    "SerialNumber",
    "IMEI",
    "MEID",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "WiFiMAC",
    "BluetoothMAC",
    "IsSupervised",
    "IsActivationLockEnabled",
];

/// The value of one `DeviceInformation` query, or `None` if the simulated
/// device does not know it.
pub fn query_value(info: &DeviceInfo, state: &DeviceState, query: &str) -> Option<Value> {
    let ios = info.is_ios();
    let v = match query {
        "UDID" => s(&info.udid),
        "DeviceName" => s(&info.device_name),
        "OSVersion" => s(&info.os_version),
        "BuildVersion" => s(&info.build_version),
        "ModelName" => s(&info.model_name),
        "Model" => s(&info.model),
        "ModelNumber" => s(&info.model_number),
        "ProductName" => s(&info.product_name),
        "SerialNumber" => s(&info.serial_number),
        "IMEI" => s(info.imei.as_deref()?),
        "MEID" => s(info.meid.as_deref()?),
        "DeviceCapacity" => Value::Real(info.device_capacity_gb),
        "AvailableDeviceCapacity" => Value::Real(info.available_capacity_gb),
        "BatteryLevel" => Value::Real(info.battery_level),
        "HasBattery" => Value::Boolean(true),
        "WiFiMAC" => s(&info.wifi_mac),
        "BluetoothMAC" => s(&info.bluetooth_mac),
        "PushToken" if !state.push_token.is_empty() => Value::Data(state.push_token.clone()),
        "IsSupervised"
        | "IsActivationLockEnabled"
        | "IsDeviceLocatorServiceEnabled"
        | "IsDoNotDisturbInEffect"
        | "IsMultiUser"
        | "AwaitingConfiguration"
        | "iTunesStoreAccountIsActive"
        | "DiagnosticSubmissionEnabled"
        | "AppAnalyticsEnabled" => Value::Boolean(false),
        "IsActivationLockSupported" => Value::Boolean(true),
        "TimeZone" => s("America/Los_Angeles"),
        "IsCloudBackupEnabled"
        | "IsMDMLostModeEnabled"
        | "IsRoaming"
        | "DataRoamingEnabled"
        | "PersonalHotspotEnabled"
            if ios =>
        {
            Value::Boolean(false)
        }
        "CellularTechnology" if ios => int(3),
        "ModemFirmwareVersion" if ios => s("2.10.02"),
        "CarrierSettingsVersion" if ios => s("60.0"),
        "IsAppleSilicon" | "SystemIntegrityProtectionEnabled" if !ios => Value::Boolean(true),
        "SupportsLOMDevice" if !ios => Value::Boolean(false),
        "HostName" if !ios => s(&format!("{}.local", local_host_name(info))),
        "LocalHostName" if !ios => s(&local_host_name(info)),
        _ => return None,
    };
    Some(v)
}

fn local_host_name(info: &DeviceInfo) -> String {
    info.device_name.replace(' ', "-")
}

fn device_information(info: &DeviceInfo, state: &DeviceState, cmd: &Command) -> Response {
    let Some(queries) = cmd.get("Queries").and_then(Value::as_array) else {
        return Response::CommandFormatError;
    };
    let mut wanted: Vec<&str> = queries.iter().filter_map(Value::as_string).collect();
    if wanted.is_empty() {
        wanted = DEFAULT_QUERIES.to_vec();
    }
    let answers: Dictionary = wanted
        .into_iter()
        .filter_map(|q| query_value(info, state, q).map(|v| (q.to_owned(), v)))
        .collect();
    single("QueryResponses", Value::Dictionary(answers))
}

fn security_info(info: &DeviceInfo) -> Value {
    let mut d = Dictionary::new();
    d.insert("PasscodePresent".into(), Value::Boolean(true));
    d.insert("PasscodeCompliant".into(), Value::Boolean(true));
    d.insert("PasscodeCompliantWithProfiles".into(), Value::Boolean(true));
    if info.is_ios() {
        d.insert("HardwareEncryptionCaps".into(), int(3));
        d.insert("PasscodeLockGracePeriodEnforced".into(), int(0));
    } else {
        d.insert("FDE_Enabled".into(), Value::Boolean(true));
        d.insert("FDE_HasPersonalRecoveryKey".into(), Value::Boolean(true));
        // As a Mac with a FileVault escrow payload reports it: the
        // personal recovery key, encrypted to the escrow certificate.
        d.insert(
            "FDE_PersonalRecoveryKeyCMS".into(),
            Value::Data(b"escrowed-recovery-key-cms".to_vec()),
        );
        d.insert(
            "FDE_HasInstitutionalRecoveryKey".into(),
            Value::Boolean(false),
        );
        d.insert(
            "SystemIntegrityProtectionEnabled".into(),
            Value::Boolean(true),
        );
        d.insert(
            "AuthenticatedRootVolumeEnabled".into(),
            Value::Boolean(true),
        );
        d.insert("IsRecoveryLockEnabled".into(), Value::Boolean(false));
        d.insert("RemoteDesktopEnabled".into(), Value::Boolean(false));
        let mut fw = Dictionary::new();
        fw.insert("FirewallEnabled".into(), Value::Boolean(true));
        fw.insert("BlockAllIncoming".into(), Value::Boolean(false));
        fw.insert("StealthMode".into(), Value::Boolean(false));
        d.insert("FirewallSettings".into(), Value::Dictionary(fw));
        let mut boot = Dictionary::new();
        boot.insert("SecureBootLevel".into(), s("full"));
        boot.insert("ExternalBootLevel".into(), s("disallowed"));
        d.insert("SecureBoot".into(), Value::Dictionary(boot));
    }
    let mut mgmt = Dictionary::new();
    mgmt.insert("EnrolledViaDEP".into(), Value::Boolean(false));
    mgmt.insert("UserApprovedEnrollment".into(), Value::Boolean(true));
    mgmt.insert("IsUserEnrollment".into(), Value::Boolean(false));
    mgmt.insert("IsActivationLockManageable".into(), Value::Boolean(false));
    d.insert("ManagementStatus".into(), Value::Dictionary(mgmt));
    Value::Dictionary(d)
}

fn profile_list(state: &DeviceState, cmd: &Command) -> Response {
    let managed_only = cmd
        .get("ManagedOnly")
        .and_then(Value::as_boolean)
        .unwrap_or(false);
    let list = state
        .profiles
        .iter()
        .filter(|p| !managed_only || p.is_managed)
        .map(InstalledProfile::to_plist)
        .collect();
    single("ProfileList", Value::Array(list))
}

fn install_profile(state: &mut DeviceState, cmd: &Command) -> Response {
    let Some(payload) = cmd.get("Payload").and_then(Value::as_data) else {
        return Response::CommandFormatError;
    };
    let parsed = parse_profile_dict(payload)
        .ok()
        .and_then(|raw| InstalledProfile::from_dict(raw, true));
    match parsed {
        Some(profile) => {
            state.install(profile);
            Response::ack()
        }
        None => Response::Error(vec![ErrorChainItem::new(
            ERR_MALFORMED_PROFILE,
            "MCProfileErrorDomain",
            "The profile is malformed.",
        )]),
    }
}

fn remove_profile(state: &mut DeviceState, cmd: &Command) -> Response {
    let Some(id) = cmd.get("Identifier").and_then(Value::as_string) else {
        return Response::CommandFormatError;
    };
    if state.profile(id).is_none() {
        return Response::Error(vec![ErrorChainItem::new(
            ERR_PROFILE_NOT_INSTALLED,
            "MCProfileErrorDomain",
            &format!("The profile “{id}” is not installed."),
        )]);
    }
    state.profiles.retain(|p| p.identifier != id);
    Response::ack()
}

fn installed_apps(state: &DeviceState, cmd: &Command) -> Response {
    let filter: Option<Vec<&str>> = cmd
        .get("Identifiers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_string).collect())
        .filter(|v: &Vec<&str>| !v.is_empty());
    let list = state
        .apps
        .iter()
        .filter(|a| {
            filter
                .as_ref()
                .is_none_or(|f| f.contains(&a.identifier.as_str()))
        })
        .map(InstalledApp::to_plist)
        .collect();
    single("InstalledApplicationList", Value::Array(list))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
