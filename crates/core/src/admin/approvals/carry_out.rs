//! Carrying out what a second administrator approved, for the actions
//! the administrator context owns (accounts, roles, passkeys).

use crate::access::permit::AccountsManage;
use crate::access::Actor;
use crate::access::{AdminActor, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{Approval, DeviceKey, Role};
use mamori_domain::{AuditAction, Outcome};

impl Services {
    pub(super) async fn grant_target(
        &self,
        a: &Approval,
    ) -> CoreResult<mamori_domain::AdminAccount> {
        let name = a
            .params
            .get("admin")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| CoreError::Internal("grant_owner without an account".into()))?;
        let admin = self.account_named(name).await?;
        if admin.disabled_at.is_some() {
            return Err(CoreError::Conflict(format!("{name} is disabled")));
        }
        Ok(admin)
    }

    pub(super) async fn carry_out_grant_owner(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<()> {
        self.grant(actor, ctx, a, Role::Owner).await
    }

    /// Gives the approval's target account `role`, recorded before it takes
    /// effect; requester and approver then both control the account.
    async fn grant(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
        role: Role,
    ) -> CoreResult<()> {
        let admin = self.grant_target(a).await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminRole,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!(
                "{} -> {role}; approval={} requested by {}",
                admin.role, a.id, a.requested_by
            )),
        )
        .await?;
        self.ports.admin.set_role(&admin.id, role).await?;
        self.record_control_by_both(actor, a, &admin.id, "role")
            .await?;
        Ok(())
    }

    /// The approval's `role` parameter.
    fn role_param(a: &Approval) -> CoreResult<Role> {
        Role::parse(Self::param(a, "role")?)
            .ok_or_else(|| CoreError::Internal(format!("{} with an unknown role", a.action).into()))
    }

    pub(super) fn param<'a>(a: &'a Approval, key: &str) -> CoreResult<&'a str> {
        a.params
            .get(key)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| CoreError::Internal(format!("{} without its {key}", a.action).into()))
    }

    pub(super) async fn carry_out_create(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<String> {
        let role = Self::role_param(a)?;
        let created = self
            .create_admin_now(
                &Actor::from(actor.clone()),
                ctx,
                Self::param(a, "admin")?,
                role,
            )
            .await?;
        self.record_control_by_both(actor, a, &created.admin.id, "create")
            .await?;
        Ok(created.one_time_password)
    }

    pub(super) async fn carry_out_reset(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<String> {
        let name = Self::param(a, "admin")?;
        if name == actor.admin.name {
            return Err(CoreError::Conflict(
                "an administrator cannot reset their own account".into(),
            ));
        }
        let (reset, _) = self
            .reset_admin_now(&Actor::from(actor.clone()), ctx, name)
            .await?;
        self.record_control_by_both(actor, a, &reset.admin.id, "reset")
            .await?;
        Ok(reset.one_time_password)
    }

    pub(super) async fn carry_out_enable(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<()> {
        let enabled = self
            .enable_admin_now(
                &Actor::from(actor.clone()),
                ctx,
                Self::param(a, "admin")?,
                Some(format!("approval={} requested by {}", a.id, a.requested_by)),
            )
            .await?;
        self.record_control_by_both(actor, a, &enabled.id, "enable")
            .await
    }

    pub(super) async fn carry_out_grant_role(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<()> {
        let role = Self::role_param(a)?;
        self.grant(actor, ctx, a, role).await
    }

    pub(super) async fn carry_out_disable(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<()> {
        let name = Self::param(a, "admin")?;
        // As disabling directly: never one's own account, never the last
        // enabled owner.
        // The approver's own permission, checked again as for a direct
        // disable.
        let by = Actor::from(actor.clone()).authorize::<AccountsManage>()?;
        self.disable_admin(
            &by,
            ctx,
            name,
            &format!(
                "offboarded; approval={} requested by {}",
                a.id, a.requested_by
            ),
        )
        .await?;
        Ok(())
    }

    /// Activates (approved) or deletes (rejected) a passkey registered
    /// with a recovery code.
    pub(super) async fn decide_passkey(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
        approved: bool,
    ) -> CoreResult<()> {
        let admin = self.account_named(Self::param(a, "admin")?).await?;
        let credential = Self::param(a, "credential")?;
        let done = if approved {
            self.ports
                .admin
                .activate_webauthn(&admin.id, credential)
                .await?
        } else {
            self.ports
                .admin
                .delete_webauthn(&admin.id, credential)
                .await?
        };
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                if approved {
                    AuditAction::MfaWebauthnActivate
                } else {
                    AuditAction::MfaWebauthnRemove
                },
                if done {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
            )
            .target(&admin.name)
            .detail(format!(
                "approval={} (registered with a recovery code)",
                a.id
            )),
        )
        .await?;
        Ok(())
    }
}

impl Services {
    /// Does what was approved: returns the commands queued and, for a new
    /// or reset account, its one-time password.
    pub(super) async fn carry_out(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<(Vec<(DeviceKey, String)>, Option<String>)> {
        let mut one_time_password = None;
        // An action another context owns is carried out by it (registered
        // in `crate::APPROVAL_EXECUTORS`).
        let executor = crate::APPROVAL_EXECUTORS
            .iter()
            .find(|e| e.action() == a.action);
        let commands = if let Some(executor) = executor {
            executor.carry_out(self, actor, ctx, a).await?
        } else {
            match a.action.as_str() {
                "grant_owner" => {
                    self.carry_out_grant_owner(actor, ctx, a).await?;
                    Vec::new()
                }
                "disable_admin" => {
                    self.carry_out_disable(actor, ctx, a).await?;
                    Vec::new()
                }
                "create_admin" => {
                    one_time_password = Some(self.carry_out_create(actor, ctx, a).await?);
                    Vec::new()
                }
                "reset_admin" => {
                    one_time_password = Some(self.carry_out_reset(actor, ctx, a).await?);
                    Vec::new()
                }
                "enable_admin" => {
                    self.carry_out_enable(actor, ctx, a).await?;
                    Vec::new()
                }
                "grant_role" => {
                    self.carry_out_grant_role(actor, ctx, a).await?;
                    Vec::new()
                }
                "activate_passkey" => {
                    self.decide_passkey(actor, ctx, a, true).await?;
                    Vec::new()
                }
                // The requester downloads it (once, for a limited time).
                "export_personal_data" => Vec::new(),
                // An approved action nobody carries out must not pass for
                // done (an erase whose executor went missing would leave
                // the devices' data in place).
                other => {
                    return Err(CoreError::internal(
                        "approval",
                        format!("no one carries out an approved {other}"),
                    ))
                }
            }
        };
        Ok((commands, one_time_password))
    }
}
