//! The two-person rule: a dangerous action that one administrator asks for
//! is carried out only when a second administrator — another account,
//! holding the permission the action needs, freshly re-authenticated —
//! approves it. Covered: erasing devices (offboarding with the erase
//! action, or an EraseDevice for more devices than the policy allows at
//! once), granting the owner role, exporting personal data, and closing an
//! administrator account that an offboarding's requester may not close. Requests expire;
//! every step is audited.

mod carry_out;

use crate::access::Actor;
use crate::access::{AdminActor, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminId, Approval, ApprovalStatus, DeviceKey, Permission, Role};
use mamori_domain::{AuditAction, Outcome};
use serde::Serialize;
use time::Duration;

/// Carries out an approved request whose action belongs to another
/// context (erasing devices belongs to device management). The composition
/// root lists them in `crate::APPROVAL_EXECUTORS`, so this context calls
/// no context above it.
#[async_trait::async_trait]
pub trait ApprovalExecutor: Send + Sync {
    /// The approval's action, e.g. `erase_devices`.
    fn action(&self) -> &'static str;

    /// Does what was approved; returns the commands queued (device, UUID).
    async fn carry_out(
        &self,
        services: &Services,
        actor: &AdminActor,
        ctx: &ClientContext,
        approval: &Approval,
    ) -> CoreResult<Vec<(DeviceKey, String)>>;
}

/// How long a request waits for its second administrator.
pub const APPROVAL_TTL: Duration = Duration::hours(24);

/// For this long after one account created, reset or changed the role of
/// another, the two count as one person: neither approves the other's
/// requests. So do two accounts the same account did so to, and accounts
/// linked through a chain of such changes. One person with several
/// accounts must not pass for two.
pub const CONTROL_WINDOW: Duration = Duration::days(30);

/// How long an approved export can be downloaded.
pub const EXPORT_TTL: Duration = Duration::hours(24);

/// A dangerous action that needs a second administrator.
#[derive(Debug, Clone)]
pub enum Dangerous {
    /// Erase these devices with this EraseDevice command.
    EraseDevices {
        /// The devices.
        devices: Vec<DeviceKey>,
        /// The command (with its options, e.g. a Mac's PIN).
        command: serde_json::Value,
    },
    /// Delete users (and their data) from these devices with this
    /// DeleteUser command.
    DeleteUsers {
        /// The devices.
        devices: Vec<DeviceKey>,
        /// The command.
        command: serde_json::Value,
    },
    /// Make this account an owner.
    GrantOwner {
        /// The account's name.
        admin: String,
    },
    /// Export these personal-data fields of every person.
    ExportPersonalData {
        /// The fields.
        fields: Vec<String>,
    },
    /// Disable this account (asked by an offboarding whose requester may
    /// not disable accounts).
    DisableAdmin {
        /// The account's name.
        admin: String,
    },
    /// Create an account with a role that reads personal data or audits
    /// others (security officer).
    CreateAdmin {
        /// The new account's name.
        admin: String,
        /// Its role.
        role: Role,
    },
    /// Reset an owner's or security officer's account (new one-time
    /// password, factors removed).
    ResetAdmin {
        /// The account's name.
        admin: String,
    },
    /// Re-enable an owner's or security officer's disabled account.
    EnableAdmin {
        /// The account's name.
        admin: String,
    },
    /// Make usable a passkey registered with a recovery code.
    ActivatePasskey {
        /// The account's name.
        admin: String,
        /// The credential's ID.
        credential: String,
    },
    /// Give an account the security officer role.
    GrantRole {
        /// The account's name.
        admin: String,
        /// The role.
        role: Role,
    },
}

impl Dangerous {
    fn action(&self) -> &'static str {
        match self {
            Self::EraseDevices { .. } => "erase_devices",
            Self::DeleteUsers { .. } => "delete_users",
            Self::GrantOwner { .. } => "grant_owner",
            Self::ExportPersonalData { .. } => "export_personal_data",
            Self::DisableAdmin { .. } => "disable_admin",
            Self::CreateAdmin { .. } => "create_admin",
            Self::ResetAdmin { .. } => "reset_admin",
            Self::EnableAdmin { .. } => "enable_admin",
            Self::GrantRole { .. } => "grant_role",
            Self::ActivatePasskey { .. } => "activate_passkey",
        }
    }
}

/// The permission a second administrator needs to decide `action`.
pub fn decider_permission(action: &str) -> Permission {
    match action {
        "grant_owner" | "disable_admin" | "create_admin" | "reset_admin" | "enable_admin"
        | "grant_role" | "activate_passkey" => Permission::AccountsManage,
        "export_personal_data" => Permission::PersonalDataRead,
        _ => Permission::CommandsWrite,
    }
}

/// What an approval carried out.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    /// The request, now approved.
    pub approval: Approval,
    /// The commands queued: (device, command UUID).
    pub commands: Vec<(DeviceKey, String)>,
    /// An account created or reset: its one-time password, shown to the
    /// approver once (never stored in the request) to hand to its holder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_password: Option<String>,
}

impl Services {
    /// Asks for a dangerous action; nothing happens until a second
    /// administrator approves.
    pub(crate) async fn request_approval(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        what: Dangerous,
        reason: &str,
    ) -> CoreResult<Approval> {
        let now = self.clock.now();
        let action = what.action();
        let (devices, params) = match what {
            Dangerous::EraseDevices { devices, command }
            | Dangerous::DeleteUsers { devices, command } => {
                (devices, serde_json::json!({ "command": command }))
            }
            Dangerous::GrantOwner { admin }
            | Dangerous::DisableAdmin { admin }
            | Dangerous::ResetAdmin { admin }
            | Dangerous::EnableAdmin { admin } => {
                (Vec::new(), serde_json::json!({ "admin": admin }))
            }
            Dangerous::ActivatePasskey { admin, credential } => (
                Vec::new(),
                serde_json::json!({ "admin": admin, "credential": credential }),
            ),
            Dangerous::CreateAdmin { admin, role } | Dangerous::GrantRole { admin, role } => (
                Vec::new(),
                serde_json::json!({ "admin": admin, "role": role.as_str() }),
            ),
            Dangerous::ExportPersonalData { fields } => {
                (Vec::new(), serde_json::json!({ "fields": fields }))
            }
        };
        let approval = Approval {
            id: crate::random_id()?,
            action: action.into(),
            devices,
            params,
            reason: reason.to_owned(),
            requested_by: actor.label(),
            requested_by_admin: actor.account().map(|a| a.id.to_string()),
            requested_at: now,
            expires_at: now + APPROVAL_TTL,
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            used_at: None,
        };
        // Recorded first: no request exists that the log does not show.
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::ApprovalRequest,
                Outcome::Success,
            )
            .target(&approval.id)
            .detail(format!(
                "{action} devices={} reason={reason}",
                approval.devices.len()
            )),
        )
        .await?;
        self.ports.admin.insert_approval(&approval).await?;
        tracing::info!(id = %approval.id, action, "waiting for a second administrator");
        Ok(approval)
    }

    /// Requests waiting for a second administrator that `actor` may
    /// decide (or made).
    pub async fn pending_approvals(&self, actor: &AdminActor) -> CoreResult<Vec<Approval>> {
        Ok(self
            .ports
            .admin
            .pending_approvals(self.clock.now())
            .await?
            .into_iter()
            .filter(|a| {
                actor.allows(decider_permission(&a.action))
                    || a.requested_by_admin.as_deref() == Some(actor.admin.id.as_str())
            })
            .collect())
    }

    /// Whether `actor` is really a second person for `approval`: holds the
    /// permission, re-authenticated, is not the requester, and the two are
    /// not linked within [`CONTROL_WINDOW`] (one person with several
    /// accounts): neither created, reset or changed the role of the other,
    /// directly or through a chain of accounts, and no account did so to
    /// both (`ControlStore::controls_either`).
    async fn may_decide(&self, actor: &AdminActor, approval: &Approval) -> CoreResult<()> {
        let needed = decider_permission(&approval.action);
        if !actor.allows(needed) {
            return Err(CoreError::Forbidden(format!(
                "deciding this request needs {needed}"
            )));
        }
        self.require_step_up(actor)?;
        if approval.requested_by_admin.as_deref() == Some(actor.admin.id.as_str()) {
            return Err(CoreError::Forbidden(
                "the second administrator must be another person".into(),
            ));
        }
        if let Some(requester) = approval
            .requested_by_admin
            .as_deref()
            .and_then(|r| AdminId::parse(r).ok())
        {
            let since = self.clock.now() - CONTROL_WINDOW;
            if self
                .ports
                .admin
                .controls_either(&requester, &actor.admin.id, since)
                .await?
            {
                return Err(CoreError::Forbidden(format!(
                    "the second administrator must be another person: one of you (or an \
                     account that did so to both of you) created, reset or changed the role of \
                     the other's account within {} days",
                    CONTROL_WINDOW.whole_days()
                )));
            }
        }
        Ok(())
    }

    /// Records that `controller` created, reset or changed the role of
    /// `controlled` (see [`CONTROL_WINDOW`]).
    pub(crate) async fn record_control(
        &self,
        controller: &AdminId,
        controlled: &AdminId,
        kind: &str,
    ) -> CoreResult<()> {
        if controller != controlled {
            self.ports
                .admin
                .record_control(controller, controlled, kind, self.clock.now())
                .await?;
        }
        Ok(())
    }

    /// Records control by both people of an approved account change: the
    /// requester and the approver.
    async fn record_control_by_both(
        &self,
        actor: &AdminActor,
        a: &Approval,
        controlled: &AdminId,
        kind: &str,
    ) -> CoreResult<()> {
        self.record_control(&actor.admin.id, controlled, kind)
            .await?;
        if let Some(requester) = a
            .requested_by_admin
            .as_deref()
            .and_then(|r| AdminId::parse(r).ok())
        {
            self.record_control(&requester, controlled, kind).await?;
        }
        Ok(())
    }

    async fn pending(&self, id: &str) -> CoreResult<Approval> {
        let a = self
            .ports
            .admin
            .approval(id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such request".into()))?;
        if a.status != ApprovalStatus::Pending || a.expires_at <= self.clock.now() {
            return Err(CoreError::Conflict(
                "the request is no longer pending".into(),
            ));
        }
        Ok(a)
    }

    /// Approves and carries out a request.
    pub async fn approve(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<Approved> {
        let a = self.pending(id).await?;
        self.may_decide(actor, &a).await?;
        if matches!(a.action.as_str(), "grant_owner" | "grant_role") {
            // Still possible? Checked before the request is marked approved.
            self.grant_target(&a).await?;
        }
        let now = self.clock.now();
        if !self
            .ports
            .admin
            .decide_approval(&a.id, ApprovalStatus::Approved, &actor.label(), now)
            .await?
        {
            return Err(CoreError::Conflict(
                "the request is no longer pending".into(),
            ));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::ApprovalApprove,
                Outcome::Success,
            )
            .target(&a.id)
            .detail(format!("requested by {}", a.requested_by)),
        )
        .await?;
        let (commands, one_time_password) = self.carry_out(actor, ctx, &a).await?;
        let approval = self
            .ports
            .admin
            .approval(&a.id)
            .await?
            .ok_or_else(|| CoreError::Internal("approval vanished".into()))?;
        Ok(Approved {
            approval,
            commands,
            one_time_password,
        })
    }

    /// Refuses a request.
    pub async fn reject(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<Approval> {
        let a = self.pending(id).await?;
        self.may_decide(actor, &a).await?;
        if !self
            .ports
            .admin
            .decide_approval(
                &a.id,
                ApprovalStatus::Rejected,
                &actor.label(),
                self.clock.now(),
            )
            .await?
        {
            return Err(CoreError::Conflict(
                "the request is no longer pending".into(),
            ));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::ApprovalReject,
                Outcome::Success,
            )
            .target(&a.id),
        )
        .await?;
        if a.action == "activate_passkey" {
            self.decide_passkey(actor, ctx, &a, false).await?;
        }
        self.ports
            .admin
            .approval(&a.id)
            .await?
            .ok_or_else(|| CoreError::Internal("approval vanished".into()))
    }
}

impl Services {
    /// Withdraws every pending request to activate a passkey of `admin`
    /// (recorded as rejected by `by`, with `why`) and removes the key that
    /// waited for it: once the account's factors are removed, or it is
    /// disabled, approving one would report an activation that cannot
    /// happen (or, after a re-enable, bring back a key nobody vouched
    /// for). This runs after the reset's or disable's own transaction.
    pub(crate) async fn withdraw_passkey_activations(
        &self,
        by: &str,
        ctx: &ClientContext,
        admin: &str,
        why: &str,
    ) -> CoreResult<usize> {
        let now = self.clock.now();
        let mut withdrawn = 0;
        for a in self.ports.admin.pending_approvals(now).await? {
            let of_admin = a.params.get("admin").and_then(serde_json::Value::as_str) == Some(admin);
            if a.action != "activate_passkey" || !of_admin {
                continue;
            }
            if !self
                .ports
                .admin
                .decide_approval(&a.id, ApprovalStatus::Rejected, by, now)
                .await?
            {
                continue;
            }
            withdrawn += 1;
            // The key waiting for this approval goes too, as on a rejection.
            if let Some(credential) = a
                .params
                .get("credential")
                .and_then(serde_json::Value::as_str)
            {
                let account = self.account_named(admin).await?;
                self.ports
                    .admin
                    .delete_webauthn(&account.id, credential)
                    .await?;
            }
            self.audit(
                self.audit_record(by, ctx, AuditAction::ApprovalReject, Outcome::Success)
                    .target(&a.id)
                    .detail(format!("withdrawn: {why}")),
            )
            .await?;
        }
        Ok(withdrawn)
    }
}
