//! Audit and response: the audit log and its hash chain, signed
//! checkpoints, retention, sinks' status, detection of bulk reads, anomaly
//! rules, breach-scope reports, incidents and evidence bundles. Every other
//! context writes here through [`Services::audit_record`] and
//! [`Services::audit`]; this context calls no other.

pub mod alerts;
pub mod anomaly;
pub mod chain;
pub mod detect;
pub mod evidence;
pub mod incidents;
mod log;
pub mod report;

pub use log::*;

use crate::access::ClientContext;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, AuditEvent, Outcome};

use mamori_ports::{
    AdminStore, AuditRetentionStore, AuditStore, IncidentStore, ReadLimitStore, SinkStore,
    TokenStore,
};

/// An audit record being built (see [`Services::audit_record`]).
#[derive(Debug, Clone)]
#[must_use = "a record is written only when handed to Services::audit"]
pub struct Record(AuditEvent);

impl Record {
    /// What the action was done to (an account name, a device, a person's
    /// pseudonymous ID, a route).
    pub fn target(mut self, target: &str) -> Self {
        self.0.target = Some(target.to_owned());
        self
    }

    /// The target, when there may be none.
    pub fn target_opt(mut self, target: Option<&str>) -> Self {
        self.0.target = target.map(str::to_owned);
        self
    }

    /// The particulars (`key=value` pairs; never a secret).
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// The particulars, when there may be none.
    pub fn detail_opt(mut self, detail: Option<String>) -> Self {
        self.0.detail = detail;
        self
    }

    /// The event to write.
    pub fn event(self) -> AuditEvent {
        self.0
    }
}

impl From<Record> for AuditEvent {
    fn from(r: Record) -> Self {
        r.0
    }
}

impl Services {
    /// Appends an audit record. A record that cannot be written fails the
    /// call (the audit-log issue makes every action fail closed on it).
    pub async fn audit(&self, event: impl Into<AuditEvent>) -> CoreResult<()> {
        self.append_audit(&[event.into()]).await?;
        Ok(())
    }

    /// Appends one audit record; returns its sequence number.
    pub async fn audit_seq(&self, event: impl Into<AuditEvent>) -> CoreResult<i64> {
        let seqs = self.append_audit(&[event.into()]).await?;
        seqs.first()
            .copied()
            .ok_or_else(|| CoreError::Internal("an append returned no sequence number".into()))
    }

    /// Appends audit records, in order, all or none; returns their
    /// sequence numbers.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> CoreResult<Vec<i64>> {
        self.chain.append(&*self.ports.audit, events).await
    }

    /// Starts an audit record stamped now: what happened, how it ended,
    /// who did it and from where. `label` is how the record names its
    /// actor ([`Actor::label`], or `system`, `anonymous`, a device): the
    /// record's text, not who may do what. The target and the detail are
    /// added on the returned [`Record`].
    pub fn audit_record(
        &self,
        label: &str,
        ctx: &ClientContext,
        action: AuditAction,
        outcome: Outcome,
    ) -> Record {
        Record(AuditEvent {
            at: self.clock.now(),
            actor: label.to_owned(),
            source: (!ctx.source.is_empty()).then(|| ctx.source.clone()),
            action: action.as_str().to_owned(),
            target: None,
            outcome: outcome.as_str().to_owned(),
            request_id: ctx.request_id.clone(),
            detail: None,
        })
    }
}

/// The storage ports audit and response uses, and no more: the audit log
/// and its retention, sinks, incidents; accounts and tokens, to suspend the
/// account behind an anomaly.
/// [`Services`](crate::Services) holds the store as this trait for the
/// context's files (checked by the architecture tests).
pub trait AuditPorts:
    AuditStore
    + SinkStore
    + AuditRetentionStore
    + IncidentStore
    + AdminStore
    + TokenStore
    + ReadLimitStore
{
}

impl<T> AuditPorts for T where
    T: AuditStore
        + SinkStore
        + AuditRetentionStore
        + IncidentStore
        + AdminStore
        + TokenStore
        + ReadLimitStore
        + ?Sized
{
}
