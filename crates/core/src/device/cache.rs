//! A short-lived in-process cache of verified device identities, so a device
//! that polls does not pay for certificate chain verification and a database
//! lookup on every request.
//!
//! Correctness rests on two rules: every binding or revocation done by this
//! process goes through [`Services`](crate::Services), which forgets the
//! affected entries at once; and entries expire after [`TTL`], which bounds
//! how long a revocation made by *another* process (a CLI command, another
//! replica) can go unnoticed.

use mamori_domain::{DeviceCertificate, DeviceKey};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verified identity is trusted without looking again.
pub const TTL: Duration = Duration::from_secs(30);
/// How often `last_seen_at` is written for a device that keeps polling.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
/// Entries kept at most; past this the cache starts over.
const MAX_ENTRIES: usize = 200_000;

/// Verified certificates (by SHA-256 of their DER) and recent touches.
#[derive(Debug, Default)]
pub struct IdentityCache {
    certs: Mutex<HashMap<[u8; 32], (DeviceCertificate, Instant)>>,
    touched: Mutex<HashMap<DeviceKey, Instant>>,
}

impl IdentityCache {
    /// A cached, still fresh verification of this certificate.
    pub fn get(&self, der_hash: &[u8; 32]) -> Option<DeviceCertificate> {
        let map = self.certs.lock().ok()?;
        let (rec, at) = map.get(der_hash)?;
        (at.elapsed() < TTL).then(|| rec.clone())
    }

    /// Remembers a verified certificate.
    pub fn put(&self, der_hash: [u8; 32], rec: DeviceCertificate) {
        if let Ok(mut map) = self.certs.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(der_hash, (rec, Instant::now()));
        }
    }

    /// Forgets one certificate (its binding changed).
    pub fn forget_fingerprint(&self, fingerprint: &str) {
        if let Ok(mut map) = self.certs.lock() {
            map.retain(|_, (rec, _)| rec.fingerprint != fingerprint);
        }
    }

    /// Forgets every certificate bound to a device (they were revoked).
    pub fn forget_device(&self, device: &DeviceKey) {
        if let Ok(mut map) = self.certs.lock() {
            map.retain(|_, (rec, _)| rec.device.as_ref() != Some(device));
        }
        if let Ok(mut t) = self.touched.lock() {
            t.remove(device);
        }
    }

    /// True when the device's last-seen time should be written now.
    pub fn should_touch(&self, device: &DeviceKey) -> bool {
        let Ok(mut t) = self.touched.lock() else {
            return true;
        };
        match t.get(device) {
            Some(at) if at.elapsed() < TOUCH_INTERVAL => false,
            _ => {
                if t.len() >= MAX_ENTRIES {
                    t.clear();
                }
                t.insert(device.clone(), Instant::now());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(fp: &str, dev: Option<&str>) -> DeviceCertificate {
        let now = time::OffsetDateTime::now_utc();
        DeviceCertificate {
            fingerprint: fp.into(),
            serial: "01".into(),
            profile_id: None,
            device: dev.map(|d| DeviceKey::parse(d).unwrap()),
            renewed_from: None,
            not_after: now,
            issued_at: now,
            revoked_at: None,
        }
    }

    #[test]
    fn forgetting_a_device_drops_its_certificates() {
        let c = IdentityCache::default();
        c.put([1; 32], rec("a", Some("D1")));
        c.put([2; 32], rec("b", Some("D2")));
        c.forget_device(&DeviceKey::parse("D1").unwrap());
        assert!(c.get(&[1; 32]).is_none());
        assert!(c.get(&[2; 32]).is_some());
        c.forget_fingerprint("b");
        assert!(c.get(&[2; 32]).is_none());
    }

    #[test]
    fn touches_are_rate_limited() {
        let c = IdentityCache::default();
        let d = DeviceKey::parse("D1").unwrap();
        assert!(c.should_touch(&d));
        assert!(!c.should_touch(&d));
        c.forget_device(&d);
        assert!(c.should_touch(&d));
    }
}
