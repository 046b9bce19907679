//! Re-enrollment of a device whose previous identity is still live.
//!
//! A SCEP certificate needs only an enrollment profile's challenge, and
//! multi-use profiles are normal, so whoever holds a profile can obtain a
//! certificate and `Authenticate` with any UDID. If that replaced the
//! enrollment, it would revoke the real device's identity, delete its
//! queued commands (a pending Lock or Erase among them) and hand the
//! attacker the group's Wi-Fi profile at the next reconcile.
//!
//! The rule:
//! - An enrollment is **live** when its device is not checked out and has
//!   an unrevoked, unexpired certificate bound to it.
//! - A new identity that Authenticates as a live enrollment is **held**:
//!   nothing of the enrollment changes (its certificates, push credentials
//!   and queue stay as they are), a high-severity alert is raised (which
//!   opens an incident), and the held identity's TokenUpdate is kept aside.
//!   Its connects are answered with no command, so it receives nothing —
//!   no command, no profile, no secret.
//! - An administrator with `enrollment_write` approves it (the earlier
//!   identities are revoked, the enrollment is recorded afresh with the
//!   held Authenticate and TokenUpdate, the queue is cleared as for any new
//!   enrollment) or denies it (its certificate is revoked).
//! - A held identity is a claim on one enrollment: Authenticating as
//!   another is refused, alerted and revokes it (`check_hold_target`). It
//!   cannot renew its certificate either (`crate::device::scep`).
//! - Where the previous enrollment has ended — the device checked out, it
//!   acknowledged an EraseDevice, or an administrator retired it — nothing is
//!   live, and re-enrollment stays one step for the user. But the new
//!   enrollment starts unassigned: the device's person and static groups are
//!   cleared (whoever holds a profile and the UDID would otherwise inherit
//!   the previous owner's Wi-Fi and VPN profiles).

use crate::access::permit::{DevicesRead, EnrollmentWrite};
use crate::access::{Actor, Authorized, ClientContext, Job};
use crate::audit::anomaly::Alert;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{DeviceCertificate, DeviceKey, EnrollmentStatus};
use mamori_ports::IdentityChange;
use mamori_ports::{AuthenticateRecord, PendingPush, PendingReenrollment, TokenUpdateRecord};
use serde::Serialize;
use time::OffsetDateTime;

/// A held identity as administrators see it (no personal data: the device
/// name it reported stays sealed).
#[derive(Debug, Clone, Serialize)]
pub struct HeldIdentity {
    /// The enrollment it claims.
    pub device: DeviceKey,
    /// SHA-256 fingerprint of its certificate.
    pub fingerprint: String,
    /// When it Authenticated.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// From where.
    pub source: Option<String>,
    /// What it reported of itself.
    pub serial_number: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// Whether it has sent its push credentials (TokenUpdate) yet.
    pub push_ready: bool,
}

impl From<PendingReenrollment> for HeldIdentity {
    fn from(p: PendingReenrollment) -> Self {
        let a = p.authenticate;
        HeldIdentity {
            device: a.device,
            fingerprint: p.fingerprint,
            requested_at: a.now,
            source: p.source,
            serial_number: a.fields.serial_number,
            model: a.fields.model,
            os_version: a.fields.os_version,
            push_ready: p.push.is_some(),
        }
    }
}

/// What an approval did.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    /// The enrollment.
    pub device: DeviceKey,
    /// The identity now bound to it.
    pub fingerprint: String,
    /// Earlier identities revoked.
    pub previous_identities_revoked: u64,
    /// Other held identities of the same device, revoked with it.
    pub other_held_revoked: usize,
}

/// The first 16 hex digits of a certificate fingerprint, as audit records
/// and log lines name an identity.
pub(crate) fn short(fingerprint: &str) -> &str {
    fingerprint.get(..16).unwrap_or(fingerprint)
}

impl Services {
    /// Whether `key`'s enrollment is live (see the module).
    pub(crate) async fn enrollment_is_live(&self, key: &DeviceKey) -> CoreResult<bool> {
        match self.ports.device.device(key).await? {
            Some(d) if d.status != EnrollmentStatus::CheckedOut => {}
            _ => return Ok(false),
        }
        let now = self.clock.now();
        Ok(self
            .ports
            .device
            .device_certificates(key)
            .await?
            .iter()
            .any(|c| c.revoked_at.is_none() && c.not_after > now))
    }

    /// A new identity Authenticates as `key`: refused when it is held for
    /// another enrollment. A held identity is one claim on one device; if it
    /// could move, an attacker would hold it against a junk device (the
    /// alert naming that one) and then claim the victim's UDID, holding
    /// it there without an alert. The attempt is audited, raises a high
    /// alert naming both devices, and revokes the identity (only its holder
    /// can make the attempt, and a revoked identity cannot repeat it to
    /// flood alerts). Returns whether it is already held for `key`.
    pub(crate) async fn check_hold_target(
        &self,
        cert: &DeviceCertificate,
        key: &DeviceKey,
        source: Option<std::net::IpAddr>,
    ) -> CoreResult<bool> {
        let Some(held) = self
            .ports
            .device
            .held_reenrollment(&cert.fingerprint)
            .await?
        else {
            return Ok(false);
        };
        let first = &held.authenticate.device;
        if first == key {
            return Ok(true);
        }
        let mut event = self.device_event(
            key,
            source,
            AuditAction::DeviceReenrollRetarget,
            Some(format!(
                "identity={} is held for {first}; refused and revoked",
                short(&cert.fingerprint)
            )),
        );
        event.outcome = "denied".into();
        self.audit(event).await?;
        self.ports
            .device
            .revoke_held(&cert.fingerprint, self.clock.now())
            .await?;
        self.identity_changed(IdentityChange::Certificate(cert.fingerprint.clone()))
            .await;
        tracing::warn!(device = %key, held_for = %first, identity = short(&cert.fingerprint), "identity held for one device authenticated as another: refused and revoked");
        self.record_alert(&Alert {
            rule: "device_reenrollment_retarget",
            severity: "high",
            actor: format!("device:{key}"),
            evidence: Vec::new(),
            detail: format!(
                "an identity (certificate {}) held for device {first} authenticated as \
                 device {key}{}; refused, and its certificate revoked",
                short(&cert.fingerprint),
                source.map(|s| format!(" (from {s})")).unwrap_or_default()
            ),
        })
        .await?;
        Err(CoreError::Forbidden(
            "this identity is held for another device".into(),
        ))
    }

    /// What starting a new enrollment of `key` clears of an earlier one
    /// that ended (for the `device.enroll` record; empty when nothing).
    pub(crate) async fn assignment_to_clear(&self, key: &DeviceKey) -> CoreResult<String> {
        // A device never seen has none (assigning a person or a static
        // group needs the device): its first enrollment reads no groups.
        if self.ports.device.device(key).await?.is_none() {
            return Ok(String::new());
        }
        let person = self.ports.device.device_person(key).await?.is_some();
        let groups = self
            .ports
            .device
            .list_groups()
            .await?
            .iter()
            .filter(|g| g.rule.is_none() && g.members.iter().any(|m| m == key.as_str()))
            .count();
        if !person && groups == 0 {
            return Ok(String::new());
        }
        Ok(format!(
            "; earlier enrollment ended: assignment cleared (person: {}, static groups: {groups})",
            if person { "unassigned" } else { "none" }
        ))
    }

    /// Holds a new identity that Authenticated as a live enrollment
    /// (`again`: it is already held for it, and alerted).
    pub(crate) async fn hold_reenrollment(
        &self,
        cert: &DeviceCertificate,
        rec: AuthenticateRecord,
        source: Option<std::net::IpAddr>,
        again: bool,
    ) -> CoreResult<()> {
        let key = rec.device.clone();
        self.audit(self.device_event(
            &key,
            source,
            AuditAction::DeviceReenrollHeld,
            Some(format!(
                "identity={}; the enrollment's current identity is live",
                short(&cert.fingerprint)
            )),
        ))
        .await?;
        let held = self
            .ports
            .device
            .hold_reenrollment(&PendingReenrollment {
                fingerprint: cert.fingerprint.clone(),
                authenticate: rec,
                source: source.map(|s| s.to_string()),
                push: None,
            })
            .await?;
        if !held {
            // Held for another device since `check_hold_target` looked.
            return Err(CoreError::Forbidden(
                "this identity is held for another device".into(),
            ));
        }
        tracing::warn!(device = %key, identity = short(&cert.fingerprint), "new identity for a live enrollment held for approval");
        if !again {
            self.record_alert(&Alert {
                rule: "device_reenrollment",
                severity: "high",
                actor: format!("device:{key}"),
                evidence: Vec::new(),
                detail: format!(
                    "a new identity (certificate {}) authenticated as this device while its \
                     current identity is live{}; it is held, receiving nothing, until an \
                     administrator approves or denies it",
                    short(&cert.fingerprint),
                    source.map(|s| format!(" (from {s})")).unwrap_or_default()
                ),
            })
            .await?;
        }
        Ok(())
    }

    /// The held identity of `cert` for `key`, if there is one.
    pub(crate) async fn held_for(
        &self,
        cert: &DeviceCertificate,
        key: &DeviceKey,
    ) -> CoreResult<Option<PendingReenrollment>> {
        if cert.device.is_some() {
            return Ok(None);
        }
        Ok(self
            .ports
            .device
            .held_reenrollment(&cert.fingerprint)
            .await?
            .filter(|h| &h.authenticate.device == key))
    }

    /// Keeps a held identity's push credentials for the approval.
    pub(crate) async fn held_token_update(
        &self,
        cert: &DeviceCertificate,
        push: PendingPush,
    ) -> CoreResult<()> {
        self.ports
            .device
            .set_held_push(&cert.fingerprint, &push)
            .await?;
        tracing::info!(
            identity = short(&cert.fingerprint),
            "held identity sent its push credentials"
        );
        Ok(())
    }

    /// Every held identity (of one device when given).
    pub async fn held_identities(
        &self,
        _by: &Authorized<DevicesRead>,
        device: Option<&DeviceKey>,
    ) -> CoreResult<Vec<HeldIdentity>> {
        Ok(self
            .ports
            .device
            .held_reenrollments(device)
            .await?
            .into_iter()
            .map(HeldIdentity::from)
            .collect())
    }

    /// The one held identity of `device` (named by `fingerprint` when
    /// several are held).
    async fn the_held(
        &self,
        device: &DeviceKey,
        fingerprint: Option<&str>,
    ) -> CoreResult<PendingReenrollment> {
        let held = self.ports.device.held_reenrollments(Some(device)).await?;
        let mut matching: Vec<_> = held
            .into_iter()
            .filter(|h| fingerprint.is_none_or(|f| h.fingerprint == f))
            .collect();
        match matching.len() {
            0 => Err(CoreError::NotFound(
                "no identity of this device is waiting for approval".into(),
            )),
            1 => Ok(matching.remove(0)),
            n => Err(CoreError::BadRequest(format!(
                "{n} identities of this device are waiting; name one by its fingerprint"
            ))),
        }
    }

    /// Approves a held identity: it becomes the enrollment's only one.
    // Length: the steps of an approval in the one order that is safe to
    // repeat (see inside); kept together so that order reads at once.
    pub async fn approve_reenrollment(
        &self,
        by: &Authorized<EnrollmentWrite>,
        ctx: &ClientContext,
        device: &DeviceKey,
        fingerprint: Option<&str>,
    ) -> CoreResult<Approved> {
        let held = self.the_held(device, fingerprint).await?;
        let now = self.clock.now();
        let usable = self
            .ports
            .device
            .certificate(&held.fingerprint)
            .await?
            .is_some_and(|c| c.revoked_at.is_none() && c.not_after > now && c.device.is_none());
        if !usable {
            return Err(CoreError::Conflict(
                "the held identity's certificate is no longer valid; deny it".into(),
            ));
        }
        // Recorded before it takes effect (fail closed).
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::DeviceReenrollApprove,
                Outcome::Success,
            )
            .target(device.as_str())
            .detail(format!("identity={}", short(&held.fingerprint))),
        )
        .await?;
        // Each step is safe to repeat, in this order: an approval that
        // fails halfway leaves the hold in place and can be given again.
        let revoked = self
            .ports
            .device
            .revoke_device_certificates(device, now)
            .await?;
        self.identity_changed(IdentityChange::Device(device.clone()))
            .await;
        let mut rec = held.authenticate.clone();
        rec.now = now;
        self.ports.device.authenticate(&rec).await?;
        if let Some(push) = &held.push {
            self.ports
                .device
                .token_update(&TokenUpdateRecord {
                    device: device.clone(),
                    user_id: None,
                    push_token: push.token.clone(),
                    push_magic: push.magic.clone(),
                    topic: rec.topic.clone(),
                    sealed_unlock_token: push.sealed_unlock_token.clone(),
                    now,
                })
                .await?;
        }
        self.ports
            .device
            .bind_certificate(&held.fingerprint, device)
            .await?;
        self.identity_changed(IdentityChange::Certificate(held.fingerprint.clone()))
            .await;
        self.ports
            .device
            .release_reenrollment(&held.fingerprint)
            .await?;
        let mut others = 0;
        for other in self.ports.device.held_reenrollments(Some(device)).await? {
            self.ports
                .device
                .revoke_held(&other.fingerprint, now)
                .await?;
            others += 1;
        }
        tracing::info!(device = %device, identity = short(&held.fingerprint), revoked, "held re-enrollment approved");
        if held.push.is_some() {
            self.push_devices(vec![device.clone()]);
        }
        Ok(Approved {
            device: device.clone(),
            fingerprint: held.fingerprint,
            previous_identities_revoked: revoked,
            other_held_revoked: others,
        })
    }

    /// Denies a held identity: its certificate is revoked.
    pub async fn deny_reenrollment(
        &self,
        by: &Authorized<EnrollmentWrite>,
        ctx: &ClientContext,
        device: &DeviceKey,
        fingerprint: Option<&str>,
    ) -> CoreResult<()> {
        let held = self.the_held(device, fingerprint).await?;
        // Revoking the held certificate is enough: nothing was renewed from
        // it, since a renewal's signer must be bound and not held
        // (`crate::device::scep`), so no `renewed_from` chain starts at it.
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::DeviceReenrollDeny,
                Outcome::Success,
            )
            .target(device.as_str())
            .detail(format!("identity={}", short(&held.fingerprint))),
        )
        .await?;
        self.ports
            .device
            .revoke_held(&held.fingerprint, self.clock.now())
            .await?;
        self.identity_changed(IdentityChange::Certificate(held.fingerprint.clone()))
            .await;
        tracing::info!(device = %device, identity = short(&held.fingerprint), "held re-enrollment denied");
        Ok(())
    }

    /// A held identity checked out (its profile was removed): forgotten.
    pub(crate) async fn held_checked_out(&self, held: &PendingReenrollment) -> CoreResult<()> {
        self.ports
            .device
            .revoke_held(&held.fingerprint, self.clock.now())
            .await?;
        self.identity_changed(IdentityChange::Certificate(held.fingerprint.clone()))
            .await;
        Ok(())
    }

    /// A device acknowledged EraseDevice: it is wiping itself and its
    /// identity with it, so its enrollment has ended. Retired at once, so
    /// that it re-enrolls in one step.
    pub(crate) async fn erased(&self, key: &DeviceKey) -> CoreResult<()> {
        match self.ports.device.device(key).await? {
            Some(d) if d.status != EnrollmentStatus::CheckedOut => {}
            _ => return Ok(()),
        }
        self.retire_device(
            &Actor::Job(Job::Offboarding),
            &ClientContext::default(),
            key,
            "EraseDevice acknowledged",
        )
        .await?;
        Ok(())
    }
}
