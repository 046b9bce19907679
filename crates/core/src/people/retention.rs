//! Retention: departed people purged when their time is up (their data
//! key destroyed, so every copy of their sealed fields is unreadable),
//! and what a backup can still read.

use super::*;
use crate::access::permit::PeopleWrite;
use crate::access::Actor;
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::access::Operator;
use crate::people::vault::DataKey;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{EmploymentStatus, PersonId};
use serde::Serialize;
use time::OffsetDateTime;

/// Whether a person's sealed fields from a backup can be read today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readability {
    /// The live directory still holds the person's data key and it opens
    /// the backup's fields.
    Readable,
    /// The person was purged since: their data key is destroyed.
    Purged,
    /// The live directory does not know the person (no key).
    NoKey,
    /// A key exists but does not open these fields.
    Mismatch,
}

impl Services {
    /// Whether sealed fields taken from a backup open with the data keys
    /// the live directory holds now (backups carry no data keys).
    pub async fn backup_readability(
        &self,
        id: &PersonId,
        sealed: &[u8],
    ) -> CoreResult<Readability> {
        let Some(live) = self.ports.people.person(id).await? else {
            return Ok(if self.ports.people.is_purged(id).await? {
                Readability::Purged
            } else {
                Readability::NoKey
            });
        };
        let raw = self
            .vault
            .unwrap(&live.key_id, &live.wrapped_key, &key_aad(id))?;
        let key = DataKey::from_raw(&raw)?;
        Ok(match key.open(sealed, &person_aad(id)) {
            Ok(_) => Readability::Readable,
            Err(_) => Readability::Mismatch,
        })
    }

    /// The retention job: purges every departed person whose departure is
    /// older than the retention period — data key destroyed (so every copy
    /// of their sealed fields, in the backend's journal, old backups or
    /// replicas, is unreadable), rows deleted, a tombstone left — then the
    /// backend forgets what was deleted. Returns how many were purged.
    pub async fn purge_due_people(&self, by: &Operator, ctx: &ClientContext) -> CoreResult<u64> {
        let actor = &by.actor();
        let now = self.clock.now();
        let before = now - time::Duration::days(i64::from(self.config.people_retention_days));
        let mut total = 0;
        loop {
            let ids = self.ports.people.people_due_for_purge(before, 1000).await?;
            if ids.is_empty() {
                break;
            }
            total += self.purge(actor, ctx, &ids, now).await?;
        }
        if total > 0 {
            self.ports.people.forget_deleted().await?;
            tracing::info!(people = total, "departed people purged");
        }
        Ok(total)
    }

    /// Purges one departed person now, whatever the retention period
    /// (step-up in an interactive session, or the command line).
    pub async fn purge_person_now(
        &self,
        proof: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<()> {
        // Destroying a person's key cannot be undone: an administrator
        // must have re-authenticated just now.
        match proof.admin() {
            Some(admin) => self.require_step_up(admin)?,
            None => proof.actor().host_only()?,
        }
        let actor = proof.actor();
        let r = self.record(id).await?;
        if r.status != EmploymentStatus::Departed {
            return Err(CoreError::Conflict(
                "only a departed person can be purged; offboard them first".into(),
            ));
        }
        self.purge(actor, ctx, std::slice::from_ref(&r.id), self.clock.now())
            .await?;
        self.ports.people.forget_deleted().await?;
        Ok(())
    }

    async fn purge(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        ids: &[PersonId],
        now: OffsetDateTime,
    ) -> CoreResult<u64> {
        let n = self.ports.people.purge_people(ids, now).await?;
        for id in ids {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::PeoplePurge,
                    Outcome::Success,
                )
                .target(id.as_str())
                .detail("data key destroyed"),
            )
            .await?;
        }
        Ok(n)
    }
}
