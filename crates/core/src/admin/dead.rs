//! Records of dead credentials in use: a revoked or expired token, a revoked
//! session, a token or session of a disabled account. Every use is refused;
//! the first use is recorded at once, and after that at most one record of
//! each kind (action and target) per credential per minute, the next one
//! carrying the count of the uses not recorded in between. So a leaver who
//! keeps replaying a credential cannot flood the audit log (and, through
//! high-severity alerts, the incident list).
//!
//! The counters live in the shared store (a gate per credential and kind,
//! in the `EphemeralStore`'s `dead` space), so uses on every server behind
//! a load balancer are counted together. They are bounded: beyond
//! [`MAX_ENTRIES`] the least recently used one goes, and one unused for
//! [`KEEP`] ends; after either, that credential's next use is recorded at
//! once again (forgetting errs towards recording).

use crate::access::ClientContext;
use crate::{CoreResult, Services};
use mamori_domain::{AdminAccount, AuditEvent};
use mamori_domain::{AuditAction, Outcome};
use mamori_ports::{EphemeralStore, Space, StoreResult};
use time::{Duration, OffsetDateTime};

/// One record of a kind per credential at most this often.
pub const EVERY: Duration = Duration::minutes(1);
/// Credentials (times kinds of record) tracked at most.
pub const MAX_ENTRIES: u64 = 10_000;
/// A credential's counter unused this long is forgotten.
pub const KEEP: Duration = Duration::days(1);
/// The store's space of the counters.
const SPACE: &str = "dead";

/// Per-credential record limiter (see the module documentation).
#[derive(Debug)]
pub struct DeadCredentials {
    capacity: u64,
}

impl Default for DeadCredentials {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

impl DeadCredentials {
    /// A limiter tracking at most `capacity` keys.
    pub fn with_capacity(capacity: u64) -> Self {
        Self { capacity }
    }

    fn space(&self) -> Space<'static> {
        Space {
            name: SPACE,
            cap: self.capacity,
        }
    }

    /// Whether the record `key` is due at `now`: `Some(n)` when it is, `n`
    /// being the uses not recorded since the previous record; `None` when
    /// one was written less than [`EVERY`] ago (this use is counted).
    pub async fn due<S: EphemeralStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<u32>> {
        store.pass_gate(self.space(), key, EVERY, KEEP, now).await
    }

    /// The record [`due`](Self::due) allowed could not be written: the next
    /// use of `key` records again, with the `suppressed` uses it carried.
    pub async fn not_written<S: EphemeralStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        suppressed: u32,
    ) -> StoreResult<()> {
        store.reopen_gate(self.space(), key, suppressed).await
    }
}

/// The key of a kind of record (action and target) of one credential.
fn record_key(action: &str, target: Option<&str>) -> String {
    mamori_crypto::sha256_hex(format!("{action}\u{0}{}", target.unwrap_or("")).as_bytes())
}

impl Services {
    /// Appends `event`, a record of a dead credential in use, if one of its
    /// kind (action and target) is due (see [`DeadCredentials::due`]), with
    /// the count of the uses not recorded since the previous one. A failed
    /// append is an error, as for any record, and the next use tries again.
    pub(crate) async fn audit_dead_use(&self, mut event: AuditEvent) -> CoreResult<()> {
        let key = record_key(&event.action, event.target.as_deref());
        let store = &*self.ports.admin;
        let Some(suppressed) = self.auth.dead.due(store, &key, event.at).await? else {
            return Ok(());
        };
        if suppressed > 0 {
            let more = format!("({suppressed} more uses since the previous record)");
            event.detail = Some(match event.detail.take() {
                Some(d) => format!("{d} {more}"),
                None => more,
            });
        }
        if let Err(e) = self.audit(event).await {
            if let Err(again) = self.auth.dead.not_written(store, &key, suppressed).await {
                tracing::warn!(error = %again, "a dead credential's uses could not be carried over");
            }
            return Err(e);
        }
        Ok(())
    }

    /// The high-severity alert `action` (`alert.token_after_offboarding`,
    /// `alert.session_after_offboarding`) for `credential` of the disabled
    /// account `owner` in use: an offboarded insider, or whoever took it.
    pub(crate) async fn alert_after_offboarding(
        &self,
        ctx: &ClientContext,
        action: AuditAction,
        credential: &str,
        owner: &AdminAccount,
    ) -> CoreResult<()> {
        tracing::warn!(credential, source = %ctx.source, "ALERT: credential of a disabled account used");
        self.audit_dead_use(
            self.audit_record("system", ctx, action, Outcome::Alert)
                .target(credential)
                .detail(format!(
                    "severity=high owner={} disabled ({})",
                    owner.name,
                    owner
                        .disabled_reason
                        .as_deref()
                        .unwrap_or("no reason given")
                ))
                .event(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gate's counting is the store's (its contract tests,
    /// `crates/store/tests/ephemeral.rs`); here, which records share one.
    #[test]
    fn each_kind_of_record_of_each_credential_has_its_own_counter() {
        let token = record_key("auth.token", Some("tok"));
        assert_eq!(token, record_key("auth.token", Some("tok")));
        assert_ne!(token, record_key("auth.token", Some("other")));
        assert_ne!(
            token,
            record_key("alert.token_after_offboarding", Some("tok"))
        );
        // The separator keeps an action and a target apart.
        assert_ne!(
            record_key("auth.token", Some("x")),
            record_key("auth.tokenx", None)
        );
        assert_eq!(token.len(), 64);
    }
}
