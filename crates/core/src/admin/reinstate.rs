//! Reinstating an account that detection suspended (a bulk read, an
//! anomaly rule): only another administrator who is not controlled by the
//! suspended account, with a fresh step-up, or the command line.

use crate::access::permit::AccountsManage;
use crate::access::{Actor, Authorized, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, AuditAction, Outcome};
use time::{Duration, OffsetDateTime};

impl Services {
    /// Lifts the suspension of the account `name` (its revoked sessions
    /// and tokens stay revoked); recorded as `admin.reinstate`.
    ///
    /// An administrator needs `accounts_manage` (the route's), an
    /// interactive session that stepped up, and must be neither the
    /// suspended account itself nor an account the suspended one controls
    /// (one it created, reset, re-enabled, unlocked or changed the role of, by the
    /// audit log).
    pub async fn reinstate_admin(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        name: &str,
    ) -> CoreResult<AdminAccount> {
        let actor = proof.actor();
        let Some(actor) = actor.admin() else {
            actor.host_only()?;
            return self.reinstate_admin_now(actor, ctx, name).await;
        };
        self.require_step_up(actor)?;
        let admin = self.account_named(name).await?;
        if admin.id == actor.admin.id {
            return Err(CoreError::Conflict(
                "an account cannot reinstate itself; ask another administrator".into(),
            ));
        }
        if admin.suspended.is_none() {
            return Err(CoreError::Conflict(
                "the administrator is not suspended".into(),
            ));
        }
        if let Some(how) = self.controlled_by(&admin, &actor.admin).await? {
            return Err(CoreError::Forbidden(format!(
                "{} was {how} by {}, the suspended account: ask another administrator",
                actor.admin.name, admin.name
            )));
        }
        self.reinstate_admin_now(proof.actor(), ctx, name).await
    }

    /// Lifts the suspension now (see [`Self::reinstate_admin`]).
    async fn reinstate_admin_now(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        name: &str,
    ) -> CoreResult<AdminAccount> {
        let admin = self.account_named(name).await?;
        if !self.ports.admin.reinstate_admin(&admin.id).await? {
            return Err(CoreError::Conflict(
                "the administrator is not suspended".into(),
            ));
        }
        self.detector.unblock(&admin.id);
        let (since, why) = admin.suspended.as_deref().map_or_else(
            || (String::new(), "no reason given"),
            |s| (s.at.unix_timestamp().to_string(), s.reason.as_str()),
        );
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminReinstate,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!("suspended since={since} ({why})")),
        )
        .await?;
        self.account_named(name).await
    }

    /// How `suspended` controls `other`, if it does: it created, reset,
    /// re-enabled, unlocked or changed the role of `other` (successful records of the
    /// audit log, through a session or a token).
    async fn controlled_by(
        &self,
        suspended: &AdminAccount,
        other: &AdminAccount,
    ) -> CoreResult<Option<&'static str>> {
        let records = self
            .ports
            .admin
            .audit_by_action(
                &[
                    AuditAction::AdminCreate.as_str(),
                    AuditAction::AdminReset.as_str(),
                    AuditAction::AdminEnable.as_str(),
                    AuditAction::AdminUnlock.as_str(),
                    AuditAction::AdminRole.as_str(),
                ],
                OffsetDateTime::UNIX_EPOCH,
                self.clock.now() + Duration::seconds(1),
                None,
            )
            .await?;
        let session = format!("admin:{}", suspended.name);
        let by_suspended = |actor: &str| {
            actor == session
                || actor
                    .strip_prefix("token:")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(_, owner)| owner == suspended.name)
        };
        Ok(records
            .iter()
            .find(|r| {
                r.event.outcome == "success"
                    && r.event.target.as_deref() == Some(other.name.as_str())
                    && by_suspended(&r.event.actor)
            })
            .map(|r| match r.event.action.as_str() {
                "admin.create" => "created",
                "admin.reset" => "reset",
                "admin.enable" => "re-enabled",
                "admin.unlock" => "unlocked",
                _ => "given its role",
            }))
    }
}
