//! Device records as administrators see them. What a device reports about
//! its user — its name ("Taro's iPhone") and the raw DeviceInformation
//! answer (device name, phone number, ...) — is personal data: it is stored
//! only sealed with the master key (bound to the device and the field) and
//! opened here, on the way out. Serial number, model and OS versions stay
//! in the clear: they identify hardware, not people, and are searched.

use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{Device, DeviceKey};

const SEALED_PREFIX: &str = "sealed:v1:";

impl Services {
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
            .map_err(|e| CoreError::Internal(e.to_string()))?;
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
        let text = serde_json::to_string(value).map_err(|e| CoreError::Internal(e.to_string()))?;
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

    /// One device, its personal fields opened.
    pub async fn device(&self, key: &DeviceKey) -> CoreResult<Option<Device>> {
        Ok(self.store.device(key).await?.map(|d| self.open_device(d)))
    }

    /// A page of devices, their personal fields opened.
    pub async fn devices_page(
        &self,
        after: Option<&DeviceKey>,
        limit: u32,
    ) -> CoreResult<Vec<Device>> {
        Ok(self
            .store
            .list_devices(after, limit)
            .await?
            .into_iter()
            .map(|d| self.open_device(d))
            .collect())
    }
}
