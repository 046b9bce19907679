//! Bringing an account back: re-enabling a disabled one and unlocking one
//! locked by failed logins. Both need a person who just re-authenticated;
//! an owner's or security officer's account comes back only when a second
//! administrator approves.

use crate::access::permit::AccountsManage;
use crate::access::Authorized;
use crate::access::{Actor, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, Role};
use mamori_domain::{AuditAction, Outcome};

/// What re-enabling an account through the API did.
#[derive(Debug)]
pub enum Enabled {
    /// Enabled.
    Now,
    /// Waiting for a second administrator (an owner or security officer).
    AwaitingApproval(Box<mamori_domain::Approval>),
}

impl Services {
    /// Re-enables a disabled account (its old sessions and tokens stay
    /// dead). An administrator needs a recent step-up, and re-enables an
    /// owner's or security officer's account only when a second
    /// administrator approves: an account disabled because it was taken
    /// over must not come back on one person's word (or one stolen
    /// token's). Whoever re-enables an account controls it, as one who
    /// created it (see `approvals::CONTROL_WINDOW`). The host's command
    /// line re-enables any account.
    pub async fn enable_admin(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        name: &str,
    ) -> CoreResult<Enabled> {
        let actor = proof.actor();
        let Some(by) = actor.admin() else {
            actor.host_only()?;
            self.enable_admin_now(actor, ctx, name, None).await?;
            return Ok(Enabled::Now);
        };
        self.require_step_up(by)?;
        let target = self.account_named(name).await?;
        if target.disabled_at.is_none() {
            return Err(CoreError::Conflict(
                "the administrator is not disabled".into(),
            ));
        }
        if matches!(target.role, Role::Owner | Role::SecurityOfficer) {
            let approval = self
                .request_approval(
                    actor,
                    ctx,
                    crate::admin::approvals::Dangerous::EnableAdmin {
                        admin: target.name.clone(),
                    },
                    &format!("enable {} ({})", target.name, target.role),
                )
                .await?;
            return Ok(Enabled::AwaitingApproval(Box::new(approval)));
        }
        let enabled = self.enable_admin_now(actor, ctx, name, None).await?;
        self.record_control(&by.admin.id, &enabled.id, "enable")
            .await?;
        Ok(Enabled::Now)
    }

    /// Re-enables the account now (see [`Self::enable_admin`]).
    pub(crate) async fn enable_admin_now(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        name: &str,
        detail: Option<String>,
    ) -> CoreResult<AdminAccount> {
        let admin = self.account_named(name).await?;
        if !self.ports.admin.enable_admin(&admin.id).await? {
            return Err(CoreError::Conflict(
                "the administrator is not disabled".into(),
            ));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminEnable,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail_opt(detail),
        )
        .await?;
        Ok(admin)
    }

    /// Unlocks an account locked by failed logins. An administrator needs
    /// a recent step-up (a stolen token alone must not reopen an account to
    /// password guessing) and then controls the account, as
    /// [`Self::enable_admin`].
    pub async fn unlock_admin(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        name: &str,
    ) -> CoreResult<()> {
        let actor = proof.actor();
        match actor.admin() {
            Some(by) => self.require_step_up(by)?,
            None => actor.host_only()?,
        }
        let admin = self.account_named(name).await?;
        self.ports.admin.unlock_admin(&admin.id).await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminUnlock,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!(
                "failed logins before unlock={}",
                admin.failed_logins
            )),
        )
        .await?;
        tracing::info!(admin = %admin.name, "administrator unlocked");
        if let Some(by) = actor.account() {
            self.record_control(&by.id, &admin.id, "unlock").await?;
        }
        Ok(())
    }
}
