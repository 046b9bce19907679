//! A short-lived in-process cache of verified device identities, so a device
//! that polls does not pay for certificate chain verification and a database
//! lookup on every request.
//!
//! Correctness rests on three rules: every binding or revocation goes
//! through [`Services::identity_changed`](crate::Services), which forgets
//! the affected entries here at once and announces the change to the other
//! servers on the same database (`IdentityFeed`), whose caches forget them
//! as the announcement arrives; a cache that watches other servers trusts
//! nothing while its watch is not listening ([`IdentityCache::on_event`]),
//! so a missed announcement cannot leave a revoked identity cached; and
//! entries expire after [`TTL`], which bounds how long a revocation made
//! by a process that announces nothing (a CLI command on SQLite) can go
//! unnoticed.

use mamori_domain::{DeviceCertificate, DeviceKey};
use mamori_ports::{IdentityChange, IdentityEvent};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cache serves this process alone (no watch): always trusted. The
/// state a new cache starts in.
const ALONE: u8 = 0;
/// A watch reports other servers' changes: trusted.
const LISTENING: u8 = 1;
/// A watch exists but is not listening: nothing is trusted.
const DEAF: u8 = 2;

/// How long a verified identity is trusted without looking again.
pub const TTL: Duration = Duration::from_secs(30);
/// How often `last_seen_at` is written for a device that keeps polling.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
/// Entries kept at most; past this the cache starts over.
const MAX_ENTRIES: usize = 200_000;

/// Verified certificates by SHA-256 of their DER, indexed by fingerprint
/// and by device too, so that forgetting one change costs the same
/// whatever the fleet's size (a scan of every entry per change made each
/// enrollment cost more as the fleet grew: 100,000 devices doubled it).
#[derive(Debug, Default)]
struct Entries {
    by_hash: HashMap<[u8; 32], (DeviceCertificate, Instant)>,
    by_fingerprint: HashMap<String, Vec<[u8; 32]>>,
    by_device: HashMap<DeviceKey, Vec<[u8; 32]>>,
}

/// Removes `hash` from the list under `key`, and the list once empty.
fn unlink<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, Vec<[u8; 32]>>,
    key: &K,
    hash: &[u8; 32],
) {
    if let Some(list) = index.get_mut(key) {
        list.retain(|h| h != hash);
        if list.is_empty() {
            index.remove(key);
        }
    }
}

impl Entries {
    fn len(&self) -> usize {
        self.by_hash.len()
    }

    fn get(&self, hash: &[u8; 32]) -> Option<&(DeviceCertificate, Instant)> {
        self.by_hash.get(hash)
    }

    fn clear(&mut self) {
        self.by_hash.clear();
        self.by_fingerprint.clear();
        self.by_device.clear();
    }

    fn insert(&mut self, hash: [u8; 32], rec: DeviceCertificate, at: Instant) {
        self.remove(&hash);
        self.by_fingerprint
            .entry(rec.fingerprint.clone())
            .or_default()
            .push(hash);
        if let Some(d) = &rec.device {
            self.by_device.entry(d.clone()).or_default().push(hash);
        }
        self.by_hash.insert(hash, (rec, at));
    }

    fn remove(&mut self, hash: &[u8; 32]) {
        if let Some((rec, _)) = self.by_hash.remove(hash) {
            unlink(&mut self.by_fingerprint, &rec.fingerprint, hash);
            if let Some(d) = &rec.device {
                unlink(&mut self.by_device, d, hash);
            }
        }
    }

    fn remove_fingerprint(&mut self, fingerprint: &str) {
        for hash in self
            .by_fingerprint
            .get(fingerprint)
            .cloned()
            .unwrap_or_default()
        {
            self.remove(&hash);
        }
    }

    fn remove_device(&mut self, device: &DeviceKey) {
        for hash in self.by_device.get(device).cloned().unwrap_or_default() {
            self.remove(&hash);
        }
    }
}

/// Verified certificates (by SHA-256 of their DER) and recent touches.
#[derive(Debug, Default)]
pub struct IdentityCache {
    certs: Mutex<Entries>,
    touched: Mutex<HashMap<DeviceKey, Instant>>,
    watch: AtomicU8,
    /// Moves on with every change forgotten: a lookup that began before a
    /// change is not cached after it ([`Self::generation`]).
    generation: AtomicU64,
}

/// When a lookup began, as [`IdentityCache::generation`] tells.
#[derive(Debug, Clone, Copy)]
pub struct Generation(u64);

impl IdentityCache {
    /// From now on the cache follows a watch on other servers' changes
    /// ([`Self::on_event`]); until the watch says it is listening, nothing
    /// is trusted.
    pub fn follow_watch(&self) {
        self.watch.store(DEAF, Ordering::SeqCst);
        self.clear();
    }

    /// What the watch on other servers' changes reports.
    pub fn on_event(&self, event: IdentityEvent) {
        match event {
            IdentityEvent::Listening => {
                // A lookup that began while the watch was deaf may have
                // read an identity changed in the gap: not cached.
                self.clear();
                self.watch.store(LISTENING, Ordering::SeqCst);
            }
            IdentityEvent::Lost => {
                self.watch.store(DEAF, Ordering::SeqCst);
                self.clear();
            }
            IdentityEvent::Changed(change) => self.forget(&change),
        }
    }

    /// Take it before reading an identity from the store, and hand it to
    /// [`Self::put`]: the identity is cached only if nothing was forgotten
    /// meanwhile (a revocation committed between the read and the put
    /// would otherwise be cached over).
    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::SeqCst))
    }

    /// Forgets what a change affects.
    pub fn forget(&self, change: &IdentityChange) {
        match change {
            IdentityChange::Device(d) => self.forget_device(d),
            IdentityChange::Certificate(fp) => self.forget_fingerprint(fp),
        }
    }

    fn trusted(&self) -> bool {
        matches!(self.watch.load(Ordering::SeqCst), ALONE | LISTENING)
    }

    fn clear(&self) {
        if let Ok(mut map) = self.certs.lock() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            map.clear();
        }
    }

    /// A cached, still fresh verification of this certificate.
    pub fn get(&self, der_hash: &[u8; 32]) -> Option<DeviceCertificate> {
        if !self.trusted() {
            return None;
        }
        let map = self.certs.lock().ok()?;
        let (rec, at) = map.get(der_hash)?;
        (at.elapsed() < TTL).then(|| rec.clone())
    }

    /// Remembers a certificate verified by a lookup that began at `since`
    /// (not if anything was forgotten since, nor while the watch is deaf).
    pub fn put(&self, der_hash: [u8; 32], rec: DeviceCertificate, since: Generation) {
        if let Ok(mut map) = self.certs.lock() {
            // Under the lock that forgetting takes too: a change is either
            // before this check (and refuses the put) or after the insert
            // (and removes it).
            if !self.trusted() || self.generation.load(Ordering::SeqCst) != since.0 {
                return;
            }
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(der_hash, rec, Instant::now());
        }
    }

    /// Forgets one certificate (its binding changed).
    fn forget_fingerprint(&self, fingerprint: &str) {
        if let Ok(mut map) = self.certs.lock() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            map.remove_fingerprint(fingerprint);
        }
    }

    /// Forgets every certificate bound to a device (they were revoked).
    fn forget_device(&self, device: &DeviceKey) {
        if let Ok(mut map) = self.certs.lock() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            map.remove_device(device);
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
        c.put([1; 32], rec("a", Some("D1")), c.generation());
        c.put([2; 32], rec("b", Some("D2")), c.generation());
        c.forget(&IdentityChange::Device(DeviceKey::parse("D1").unwrap()));
        assert!(c.get(&[1; 32]).is_none());
        assert!(c.get(&[2; 32]).is_some());
        c.forget(&IdentityChange::Certificate("b".into()));
        assert!(c.get(&[2; 32]).is_none());
    }

    /// The indexes follow every change: a certificate cached again under
    /// another binding is forgotten with its new device, not its old one;
    /// a device's two certificates (a renewal) go together; and what is
    /// forgotten leaves no index entry behind.
    #[test]
    fn forgetting_follows_rebinding_and_renewal() {
        let c = IdentityCache::default();
        c.put([1; 32], rec("a", None), c.generation());
        c.put([1; 32], rec("a", Some("D1")), c.generation());
        c.put([2; 32], rec("b", Some("D1")), c.generation());
        c.put([3; 32], rec("c", Some("D2")), c.generation());
        c.forget(&IdentityChange::Device(DeviceKey::parse("D9").unwrap()));
        assert!(c.get(&[1; 32]).is_some() && c.get(&[2; 32]).is_some());
        c.forget(&IdentityChange::Device(DeviceKey::parse("D1").unwrap()));
        assert!(c.get(&[1; 32]).is_none() && c.get(&[2; 32]).is_none());
        assert!(c.get(&[3; 32]).is_some());
        c.put([3; 32], rec("c", Some("D3")), c.generation());
        c.forget(&IdentityChange::Device(DeviceKey::parse("D2").unwrap()));
        assert!(c.get(&[3; 32]).is_some(), "cached again under D3");
        c.forget(&IdentityChange::Certificate("c".into()));
        assert!(c.get(&[3; 32]).is_none());
        let map = c.certs.lock().unwrap();
        assert_eq!(map.len(), 0);
        assert!(map.by_fingerprint.is_empty() && map.by_device.is_empty());
    }

    #[test]
    fn a_deaf_watch_trusts_nothing_until_it_listens_again() {
        let c = IdentityCache::default();
        c.put([1; 32], rec("a", Some("D1")), c.generation());
        assert!(c.get(&[1; 32]).is_some(), "alone, the cache is trusted");
        c.follow_watch();
        assert!(c.get(&[1; 32]).is_none(), "following a watch starts empty");
        c.put([1; 32], rec("a", Some("D1")), c.generation());
        assert!(
            c.get(&[1; 32]).is_none(),
            "nothing is kept before it listens"
        );
        c.on_event(IdentityEvent::Listening);
        c.put([1; 32], rec("a", Some("D1")), c.generation());
        c.put([2; 32], rec("b", Some("D2")), c.generation());
        assert!(c.get(&[1; 32]).is_some());
        c.on_event(IdentityEvent::Changed(IdentityChange::Device(
            DeviceKey::parse("D1").unwrap(),
        )));
        assert!(c.get(&[1; 32]).is_none(), "another server's revocation");
        assert!(c.get(&[2; 32]).is_some());
        c.on_event(IdentityEvent::Lost);
        assert!(c.get(&[2; 32]).is_none(), "a lost watch forgets everything");
        c.on_event(IdentityEvent::Listening);
        assert!(c.get(&[2; 32]).is_none(), "and does not bring it back");
        // A lookup that straddled the gap is not cached either.
        c.on_event(IdentityEvent::Lost);
        let during = c.generation();
        c.on_event(IdentityEvent::Listening);
        c.put([3; 32], rec("c", Some("D3")), during);
        assert!(c.get(&[3; 32]).is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_is_not_cached() {
        let c = IdentityCache::default();
        let before = c.generation();
        // Another request revokes the device while this one reads it.
        c.forget(&IdentityChange::Device(DeviceKey::parse("D1").unwrap()));
        c.put([1; 32], rec("a", Some("D1")), before);
        assert!(c.get(&[1; 32]).is_none());
        c.put([1; 32], rec("a", Some("D1")), c.generation());
        assert!(c.get(&[1; 32]).is_some());
    }

    #[test]
    fn touches_are_rate_limited() {
        let c = IdentityCache::default();
        let d = DeviceKey::parse("D1").unwrap();
        assert!(c.should_touch(&d));
        assert!(!c.should_touch(&d));
        c.forget(&IdentityChange::Device(d.clone()));
        assert!(c.should_touch(&d));
    }
}
