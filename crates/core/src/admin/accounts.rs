//! Administrator accounts: creation (with a one-time password), inventory,
//! role changes, disable/enable, unlock, and the stale-account job.

mod enable;
mod inventory;

pub use enable::Enabled;
pub use inventory::AdminSummary;

use crate::access::permit::AccountsManage;
use crate::access::Authorized;
use crate::access::Operator;
use crate::access::{Actor, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, AdminCredentials, AdminId, Role};
use mamori_domain::{AuditAction, Outcome};
use serde::Serialize;

/// A new account and its one-time password (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct NewAdmin {
    /// The account.
    pub admin: AdminAccount,
    /// The one-time password; it must be changed at first login.
    pub one_time_password: String,
}

/// What creating an account through the API did.
#[derive(Debug)]
pub enum Created {
    /// Created.
    Now(Box<NewAdmin>),
    /// Waiting for a second administrator (a security officer).
    AwaitingApproval(Box<mamori_domain::Approval>),
}

/// What resetting an account through the API did.
#[derive(Debug)]
pub enum Reset {
    /// Reset: the account and (sessions, tokens) revoked.
    Now(Box<NewAdmin>, (u64, u64)),
    /// Waiting for a second administrator (an owner or security officer).
    AwaitingApproval(Box<mamori_domain::Approval>),
}

/// What a role change did.
#[derive(Debug, Clone)]
pub enum RoleChange {
    /// Changed.
    Changed(AdminAccount),
    /// Waiting for a second administrator (a grant of the owner or
    /// security officer role).
    AwaitingApproval(Box<mamori_domain::Approval>),
}

/// Checks a login name: 1-64 of `a-z 0-9 . _ -`, starting with a letter.
pub(crate) fn check_name(name: &str) -> CoreResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadRequest(
            "name must be 1-64 characters a-z, 0-9, '.', '_' or '-', starting with a letter".into(),
        ))
    }
}

/// A random one-time password: 24 characters of base32 in groups of four
/// (120 bits).
fn one_time_password() -> CoreResult<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let bytes = mamori_crypto::try_random_bytes(24).map_err(|e| CoreError::Internal(e.into()))?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

impl Services {
    /// Creates the account now (what [`Self::create_admin`] and an approved
    /// request carry out).
    pub(crate) async fn create_admin_now(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        name: &str,
        role: Role,
    ) -> CoreResult<NewAdmin> {
        let name = name.trim();
        check_name(name)?;
        let password = one_time_password()?;
        let hash = hash_password(&password).await?;
        let admin = AdminAccount {
            id: AdminId::parse(&uuid::Uuid::new_v4().to_string())
                .map_err(|e| CoreError::Internal(e.into()))?,
            name: name.to_owned(),
            role,
            must_change_password: true,
            created_at: self.now(),
            password_set_at: self.now(),
            last_login_at: None,
            last_login_source: None,
            failed_logins: 0,
            throttled_until: None,
            locked_at: None,
            disabled_at: None,
            disabled_reason: None,
            suspended: None,
            totp_enrolled: false,
        };
        let creds = AdminCredentials {
            password_hash: hash,
            ..AdminCredentials::default()
        };
        if !self.ports.admin.insert_admin(&admin, &creds).await? {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::AdminCreate,
                    Outcome::Failure,
                )
                .target(name)
                .detail("name taken"),
            )
            .await?;
            return Err(CoreError::Conflict(format!(
                "an administrator named {name} exists"
            )));
        }
        // The name is known now: its failures as an unknown one no longer
        // count (they run out within the hour if this cannot be done).
        if let Err(e) = self
            .auth
            .throttle
            .forget(&*self.ports.admin, &self.name_throttle_key(name))
            .await
        {
            tracing::warn!(error = %e, "a new account's name throttle was not reset");
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminCreate,
                Outcome::Success,
            )
            .target(name)
            .detail(format!("role={role}")),
        )
        .await?;
        tracing::info!(admin = %name, %role, "administrator account created");
        Ok(NewAdmin {
            admin,
            one_time_password: password,
        })
    }

    /// Creates an account with a one-time password that must be changed at
    /// first login, where a second factor must also be enrolled.
    ///
    /// An administrator needs a recent step-up; a security officer (who
    /// reads personal data and audits everyone) is created only when a
    /// second administrator approves, an owner only by granting the role,
    /// which needs one too. The host's command line creates any role.
    pub async fn create_admin(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        name: &str,
        role: &str,
    ) -> CoreResult<Created> {
        let actor = proof.actor();
        let Some(by) = actor.admin() else {
            actor.host_only()?;
            let role = parse_role(role)?;
            let created = self.create_admin_now(actor, ctx, name, role).await?;
            return Ok(Created::Now(Box::new(created)));
        };
        self.require_step_up(by)?;
        let role = parse_role(role)?;
        if role == Role::Owner {
            return Err(CoreError::Conflict(
                "create the account with another role, then grant it owner: that needs a \
                 second owner's approval"
                    .into(),
            ));
        }
        if role == Role::SecurityOfficer {
            check_name(name.trim())?;
            if self.ports.admin.admin_by_name(name.trim()).await?.is_some() {
                return Err(CoreError::Conflict(format!(
                    "an administrator named {} exists",
                    name.trim()
                )));
            }
            let approval = self
                .request_approval(
                    actor,
                    ctx,
                    crate::admin::approvals::Dangerous::CreateAdmin {
                        admin: name.trim().to_owned(),
                        role,
                    },
                    &format!("create {} ({role})", name.trim()),
                )
                .await?;
            return Ok(Created::AwaitingApproval(Box::new(approval)));
        }
        let created = self.create_admin_now(actor, ctx, name, role).await?;
        self.record_control(&by.admin.id, &created.admin.id, "create")
            .await?;
        Ok(Created::Now(Box::new(created)))
    }

    /// How many enabled owners there are (the last one is kept).
    async fn enabled_owners(&self) -> CoreResult<usize> {
        Ok(self
            .ports
            .admin
            .list_admins()
            .await?
            .into_iter()
            .filter(|a| a.role == Role::Owner && a.disabled_at.is_none())
            .count())
    }

    /// An account by name.
    pub async fn admin_named(&self, _by: &Operator, name: &str) -> CoreResult<AdminAccount> {
        self.account_named(name).await
    }

    /// The account named `name` (see [`Self::admin_named`]).
    pub(crate) async fn account_named(&self, name: &str) -> CoreResult<AdminAccount> {
        self.ports
            .admin
            .admin_by_name(name.trim())
            .await?
            .ok_or_else(|| CoreError::NotFound("no such administrator".into()))
    }

    /// Disables an account: its sessions and tokens are revoked in the same
    /// transaction, so the very next request of any of them fails.
    /// Returns (sessions, tokens) revoked. An administrator never disables
    /// their own account.
    pub async fn disable_admin(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        name: &str,
        reason: &str,
    ) -> CoreResult<(u64, u64)> {
        let actor = proof.actor();
        match actor.account() {
            Some(me) if me.name == name.trim() => {
                return Err(CoreError::Conflict(
                    "an administrator cannot disable their own account; ask another owner".into(),
                ));
            }
            Some(_) => {}
            None => actor.host_only()?,
        }
        self.disable_admin_now(actor, ctx, name, reason).await
    }

    /// Disables the account now (see [`Self::disable_admin`]).
    pub(crate) async fn disable_admin_now(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        name: &str,
        reason: &str,
    ) -> CoreResult<(u64, u64)> {
        let admin = self.account_named(name).await?;
        // Only the host's operator may disable the last enabled owner; the
        // store checks it in the statement that disables (no race).
        let keep_last_owner = !matches!(actor, Actor::Host(_));
        let reason = reason.chars().take(200).collect::<String>();
        let Some(revoked) = self
            .ports
            .admin
            .disable_admin(&admin.id, self.now(), &reason, keep_last_owner)
            .await?
        else {
            let again = self.account_named(name).await?;
            return Err(CoreError::Conflict(if again.disabled_at.is_some() {
                "the administrator is already disabled".into()
            } else {
                "this is the last enabled owner; create another owner first".into()
            }));
        };
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminDisable,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!(
                "reason={reason}; sessions revoked={}; tokens revoked={}",
                revoked.0, revoked.1
            )),
        )
        .await?;
        self.withdraw_passkey_activations(
            &actor.label(),
            ctx,
            &admin.name,
            "the account was disabled",
        )
        .await?;
        tracing::info!(admin = %admin.name, sessions = revoked.0, tokens = revoked.1, "administrator disabled");
        Ok(revoked)
    }

    /// Resets an account whose owner lost their factors (or whose factors
    /// may be compromised): new one-time password, factors and recovery
    /// codes removed, lock cleared, every session and token revoked — in one
    /// transaction. At the next login the password must be changed and a
    /// factor enrolled again. This does it now; see [`Self::reset_admin`].
    pub(crate) async fn reset_admin_now(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        name: &str,
    ) -> CoreResult<(NewAdmin, (u64, u64))> {
        let admin = self.account_named(name).await?;
        let password = one_time_password()?;
        let hash = hash_password(&password).await?;
        let revoked = self
            .ports
            .admin
            .reset_admin(&admin.id, &hash, self.now())
            .await?
            .ok_or_else(|| CoreError::NotFound("no such administrator".into()))?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminReset,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!(
                "factors removed; sessions revoked={}; tokens revoked={}",
                revoked.0, revoked.1
            )),
        )
        .await?;
        self.withdraw_passkey_activations(
            &actor.label(),
            ctx,
            &admin.name,
            "the account was reset (its factors removed)",
        )
        .await?;
        tracing::info!(admin = %admin.name, "administrator reset");
        let admin = self.account_named(name).await?;
        Ok((
            NewAdmin {
                admin,
                one_time_password: password,
            },
            revoked,
        ))
    }

    /// Resets an account whose owner lost their factors (see
    /// [`Self::reset_admin_now`]). An administrator needs a recent step-up,
    /// never resets their own account, and resets an owner's or security
    /// officer's account only when a second administrator approves
    /// (whoever holds its one-time password holds the account). The host's
    /// command line resets any account.
    pub async fn reset_admin(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        name: &str,
    ) -> CoreResult<Reset> {
        let actor = proof.actor();
        let Some(by) = actor.admin() else {
            actor.host_only()?;
            let (reset, revoked) = self.reset_admin_now(actor, ctx, name).await?;
            return Ok(Reset::Now(Box::new(reset), revoked));
        };
        self.require_step_up(by)?;
        if by.admin.name == name.trim() {
            return Err(CoreError::Conflict(
                "an administrator cannot reset their own account; ask another owner".into(),
            ));
        }
        let target = self.account_named(name).await?;
        if matches!(target.role, Role::Owner | Role::SecurityOfficer) {
            let approval = self
                .request_approval(
                    actor,
                    ctx,
                    crate::admin::approvals::Dangerous::ResetAdmin {
                        admin: target.name.clone(),
                    },
                    &format!("reset {} ({})", target.name, target.role),
                )
                .await?;
            return Ok(Reset::AwaitingApproval(Box::new(approval)));
        }
        let (reset, revoked) = self.reset_admin_now(actor, ctx, name).await?;
        self.record_control(&by.admin.id, &reset.admin.id, "reset")
            .await?;
        Ok(Reset::Now(Box::new(reset), revoked))
    }

    /// Changes an account's role (step-up; never one's own; the last owner
    /// stays an owner). Effective on the account's next request. Making
    /// someone an owner waits for a second owner's approval.
    pub async fn set_admin_role(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        name: &str,
        role: &str,
    ) -> CoreResult<RoleChange> {
        let actor = proof.require_admin()?;
        self.require_step_up(actor)?;
        let role = parse_role(role)?;
        let mut admin = self.account_named(name).await?;
        if admin.id == actor.admin.id {
            return Err(CoreError::Conflict(
                "an administrator cannot change their own role".into(),
            ));
        }
        // A disabled account keeps its role: demoting a disabled owner or
        // security officer would let one administrator re-enable it alone
        // (see `enable_admin`).
        if admin.disabled_at.is_some() {
            return Err(CoreError::Conflict(format!(
                "{} is disabled; its role changes once it is enabled again",
                admin.name
            )));
        }
        let granted = matches!(role, Role::Owner | Role::SecurityOfficer) && admin.role != role;
        if granted {
            let what = if role == Role::Owner {
                crate::admin::approvals::Dangerous::GrantOwner {
                    admin: admin.name.clone(),
                }
            } else {
                crate::admin::approvals::Dangerous::GrantRole {
                    admin: admin.name.clone(),
                    role,
                }
            };
            let approval = self
                .request_approval(
                    proof.actor(),
                    ctx,
                    what,
                    &format!("make {} {role}", admin.name),
                )
                .await?;
            return Ok(RoleChange::AwaitingApproval(Box::new(approval)));
        }
        if admin.role == Role::Owner && role != Role::Owner {
            let owners = self.enabled_owners().await?;
            if owners <= 1 {
                return Err(CoreError::Conflict("this is the last enabled owner".into()));
            }
        }
        self.ports.admin.set_role(&admin.id, role).await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminRole,
                Outcome::Success,
            )
            .target(&admin.name)
            .detail(format!("{} -> {role}", admin.role)),
        )
        .await?;
        self.record_control(&actor.admin.id, &admin.id, "role")
            .await?;
        admin.role = role;
        Ok(RoleChange::Changed(admin))
    }
}

pub(crate) fn parse_role(role: &str) -> CoreResult<Role> {
    Role::parse(role).ok_or_else(|| {
        CoreError::BadRequest(format!(
            "unknown role {role:?}; roles: viewer, helpdesk, device_admin, security_officer, owner"
        ))
    })
}

/// argon2id off the async runtime.
pub(crate) async fn hash_password(password: &str) -> CoreResult<String> {
    let p = zeroize::Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || mamori_crypto::password::hash_password(&p))
        .await
        .map_err(|e| CoreError::Internal(e.into()))?
        .map_err(|e| CoreError::Internal(e.into()))
}

/// Password verification off the async runtime; `None` hash does the same
/// work against a dummy (unknown account).
pub(crate) async fn verify_password(password: &str, hash: Option<String>) -> CoreResult<bool> {
    let p = zeroize::Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => mamori_crypto::password::verify_password(&p, &h),
        None => {
            mamori_crypto::password::verify_password_dummy(&p);
            false
        }
    })
    .await
    .map_err(|e| CoreError::Internal(e.into()))
}
