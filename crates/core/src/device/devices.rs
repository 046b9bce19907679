//! Device records as administrators see them. What a device reports about
//! its user — its name ("Taro's iPhone") and the raw DeviceInformation
//! answer (device name, phone number, ...) — is personal data: it is stored
//! only sealed with the master key (bound to the device and the field) and
//! opened here, on the way out. Serial number, model and OS versions stay
//! in the clear: they identify hardware, not people, and are searched.
//! Administrators without `personal_data_read` get the personal fields
//! withheld; with it, each read is recorded before the answer leaves.

use crate::access::permit::DevicesRead;
use crate::access::Authorized;
use crate::access::Operator;
use crate::access::{AdminActor, ClientContext};
use crate::device::privacy;
use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{AuditAction, Device, DeviceKey, Outcome, Permission};
use serde::Serialize;

const SEALED_PREFIX: &str = "sealed:v1:";

/// `iOS` or `macOS`, from the inventory.
pub fn platform_of(d: &Device) -> &'static str {
    let mac = d.model.as_deref().is_some_and(|m| m.contains("Mac"))
        || d.product_name
            .as_deref()
            .is_some_and(|p| p.starts_with("Mac"));
    if mac {
        "macOS"
    } else {
        "iOS"
    }
}

impl Services {
    /// How many devices are in each state; "seen" counts the enrolled
    /// devices seen at or after `seen_since` (the console passes the start
    /// of the day in the organisation's time zone).
    pub async fn device_counts(
        &self,
        _by: &Authorized<DevicesRead>,
        seen_since: time::OffsetDateTime,
    ) -> CoreResult<mamori_ports::DeviceCounts> {
        Ok(self.ports.device.device_counts(seen_since).await?)
    }

    fn device_aad(device: &DeviceKey, field: &str) -> Vec<u8> {
        format!("mamori/device/{device}/{field}").into_bytes()
    }

    /// Seals a device-reported personal value for storage.
    pub(crate) fn seal_device_text(
        &self,
        device: &DeviceKey,
        field: &str,
        value: &str,
    ) -> CoreResult<String> {
        let sealed = self
            .pki
            .secret_box
            .seal(value.as_bytes(), Some(&Self::device_aad(device, field)))
            .map_err(|e| CoreError::Internal(e.into()))?;
        Ok(format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed)
        ))
    }

    /// Opens what [`Self::seal_device_text`] made; values stored before
    /// sealing existed pass through. An unopenable value shows as absent.
    fn open_device_text(&self, device: &DeviceKey, field: &str, stored: &str) -> Option<String> {
        let Some(b64) = stored.strip_prefix(SEALED_PREFIX) else {
            return Some(stored.to_owned());
        };
        let sealed = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .ok()?;
        match self
            .pki
            .secret_box
            .open(&sealed, Some(&Self::device_aad(device, field)))
        {
            Ok(v) => String::from_utf8(v.to_vec()).ok(),
            Err(_) => {
                tracing::error!(device = %device, field, "sealed device field does not open");
                None
            }
        }
    }

    /// Seals a raw inventory answer (stored as a JSON string).
    pub(crate) fn seal_device_json(
        &self,
        device: &DeviceKey,
        field: &str,
        value: &serde_json::Value,
    ) -> CoreResult<serde_json::Value> {
        let text = serde_json::to_string(value).map_err(|e| CoreError::Internal(e.into()))?;
        Ok(serde_json::Value::String(
            self.seal_device_text(device, field, &text)?,
        ))
    }

    pub(crate) fn open_device_json(
        &self,
        device: &DeviceKey,
        field: &str,
        stored: serde_json::Value,
    ) -> Option<serde_json::Value> {
        match &stored {
            serde_json::Value::String(s) if s.starts_with(SEALED_PREFIX) => self
                .open_device_text(device, field, s)
                .and_then(|t| serde_json::from_str(&t).ok()),
            _ => Some(stored),
        }
    }

    pub(crate) fn open_device(&self, mut d: Device) -> Device {
        d.device_name = d
            .device_name
            .take()
            .and_then(|n| self.open_device_text(&d.udid, "device_name", &n));
        d.device_information = d
            .device_information
            .take()
            .and_then(|v| self.open_device_json(&d.udid, "device_information", v));
        d
    }

    /// One device, its personal fields opened: for the server's own use.
    /// What an administrator sees is [`Self::device_view`].
    pub async fn device(&self, _by: &Operator, key: &DeviceKey) -> CoreResult<Option<Device>> {
        Ok(self
            .ports
            .device
            .device(key)
            .await?
            .map(|d| self.open_device(d)))
    }

    /// Whether `actor` sees device-reported personal data in plaintext.
    pub(crate) fn reveals_personal(actor: &AdminActor) -> bool {
        actor.allows(Permission::PersonalDataRead)
    }

    /// Opens `devices` for `actor`: with `personal_data_read` every
    /// personal field in plaintext, each device's read recorded first (if a
    /// record cannot be written, nothing is shown); without it, the
    /// personal fields withheld (see [`crate::device::privacy`]).
    /// Devices with every personal field withheld (for lists, which name
    /// no one whoever reads them).
    pub(crate) fn withheld_views(&self, devices: Vec<Device>) -> Vec<DeviceView> {
        devices
            .into_iter()
            .map(|d| {
                let mut d = self.open_device(d);
                privacy::drop_escrow(&mut d.security_info);
                let personal =
                    privacy::device_fields(&mut d.device_name, &mut d.device_information, true);
                DeviceView {
                    device: d,
                    redacted: personal.paths,
                }
            })
            .collect()
    }

    /// The person a device is assigned to (their pseudonymous ID; who
    /// they are is revealed only with `personal_data_read`).
    pub async fn device_person(
        &self,
        _by: &Authorized<DevicesRead>,
        device: &DeviceKey,
    ) -> CoreResult<Option<mamori_domain::PersonId>> {
        Ok(self.ports.device.device_person(device).await?)
    }

    /// One device with every personal field withheld (what a form checks
    /// against, such as the serial number typed to confirm an erase).
    pub async fn device_withheld(
        &self,
        _by: &Authorized<DevicesRead>,
        key: &DeviceKey,
    ) -> CoreResult<Option<DeviceView>> {
        let Some(d) = self.ports.device.device(key).await? else {
            return Ok(None);
        };
        Ok(self.withheld_views(vec![d]).pop())
    }

    /// A page of devices ordered by identifier, every personal field
    /// withheld whoever asks (see [`Self::find_devices`]).
    pub async fn device_list(
        &self,
        _by: &Authorized<DevicesRead>,
        after: Option<&DeviceKey>,
        limit: u32,
    ) -> CoreResult<Vec<DeviceView>> {
        let page = self.ports.device.list_devices(after, limit).await?;
        Ok(self.withheld_views(page))
    }

    pub(crate) async fn device_views(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        devices: Vec<Device>,
    ) -> CoreResult<Vec<DeviceView>> {
        let reveal = Self::reveals_personal(actor);
        let mut views = Vec::with_capacity(devices.len());
        let mut reads = Vec::new();
        for d in devices {
            let mut d = self.open_device(d);
            privacy::drop_escrow(&mut d.security_info);
            let personal =
                privacy::device_fields(&mut d.device_name, &mut d.device_information, !reveal);
            let redacted = if reveal {
                if !personal.is_empty() {
                    reads.push((d.udid.clone(), personal.audit_fields()));
                }
                Vec::new()
            } else {
                personal.paths
            };
            views.push(DeviceView {
                device: d,
                redacted,
            });
        }
        self.audit_device_reads(actor, ctx, reads).await?;
        Ok(views)
    }

    /// Records each device read that revealed personal data (`device.personal_read`:
    /// who, which device, which fields — never a value), then feeds the
    /// reads to the bulk-read rule.
    pub(crate) async fn audit_device_reads(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        reads: Vec<(DeviceKey, String)>,
    ) -> CoreResult<()> {
        if reads.is_empty() {
            return Ok(());
        }
        let mut seqs = Vec::with_capacity(reads.len());
        for (device, detail) in reads {
            let seq = self
                .audit_seq(
                    self.audit_record(&actor.label(), ctx, PERSONAL_READ, Outcome::Success)
                        .target(device.as_str())
                        .detail(detail),
                )
                .await
                .map_err(|e| {
                    tracing::error!(cause = %e, "audit append failed; personal-data read refused");
                    CoreError::AuditUnavailable
                })?;
            seqs.push(seq);
        }
        self.observe_personal_reads(actor, ctx, &seqs).await
    }

    /// One device as `actor` may see it (see [`Self::device_views`]).
    pub async fn device_view(
        &self,
        proof: &Authorized<DevicesRead>,
        ctx: &ClientContext,
        key: &DeviceKey,
    ) -> CoreResult<Option<DeviceView>> {
        let actor = proof.require_admin()?;
        let Some(d) = self.ports.device.device(key).await? else {
            return Ok(None);
        };
        Ok(self.device_views(actor, ctx, vec![d]).await?.pop())
    }

    /// A page of devices as `actor` may see them.
    pub async fn devices_page(
        &self,
        proof: &Authorized<DevicesRead>,
        ctx: &ClientContext,
        after: Option<&DeviceKey>,
        limit: u32,
    ) -> CoreResult<Vec<DeviceView>> {
        let actor = proof.require_admin()?;
        let page = self.ports.device.list_devices(after, limit).await?;
        self.device_views(actor, ctx, page).await
    }
}

/// The audit action of a read that revealed device-reported personal data.
pub const PERSONAL_READ: AuditAction = AuditAction::DevicePersonalRead;

/// A device as an administrator sees it: the record, and the personal
/// fields withheld from this reader (`null` in the record, named here;
/// empty for a reader holding `personal_data_read`, whose read was
/// recorded).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// The device.
    #[serde(flatten)]
    pub device: Device,
    /// Dotted paths of the withheld values (`device_name`,
    /// `device_information.DeviceName`).
    pub redacted: Vec<String>,
}
