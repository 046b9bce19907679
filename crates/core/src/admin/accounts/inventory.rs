//! The account inventory: every account with its factors and last
//! activity, and the sweep that disables accounts unused for too long.

use crate::access::permit::AccountsManage;
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::access::Operator;
use crate::{CoreResult, Services};
use mamori_domain::{AdminAccount, Role};
use mamori_domain::{AuditAction, Outcome};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// One line of the account inventory.
#[derive(Debug, Clone, Serialize)]
pub struct AdminSummary {
    /// The account.
    #[serde(flatten)]
    pub admin: AdminAccount,
    /// Enrolled factors: `totp`, `webauthn`.
    pub factors: Vec<&'static str>,
    /// Registered WebAuthn credentials.
    pub webauthn_credentials: usize,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Live (unrevoked, unexpired) API tokens.
    pub token_count: usize,
    /// Unused for longer than the policy allows.
    pub stale: bool,
    /// The role must log in with WebAuthn.
    pub webauthn_required: bool,
}

impl Services {
    /// The account inventory.
    pub async fn admin_inventory(
        &self,
        _by: &Authorized<AccountsManage>,
    ) -> CoreResult<Vec<AdminSummary>> {
        let now = self.now();
        let tokens = self.ports.admin.list_tokens(None).await?;
        let mut out = Vec::new();
        for admin in self.ports.admin.list_admins().await? {
            let creds = self.ports.admin.webauthn_credentials(&admin.id).await?;
            let mut factors = Vec::new();
            if admin.totp_enrolled {
                factors.push("totp");
            }
            if !creds.is_empty() {
                factors.push("webauthn");
            }
            let token_count = tokens
                .iter()
                .filter(|t| t.admin_id == admin.id && t.revoked_at.is_none() && t.expires_at > now)
                .count();
            out.push(AdminSummary {
                stale: self.is_stale(&admin, now),
                webauthn_required: self.config.auth.requires_webauthn(admin.role),
                recovery_codes_left: self.ports.admin.recovery_codes_left(&admin.id).await?,
                webauthn_credentials: creds.len(),
                factors,
                token_count,
                admin,
            });
        }
        Ok(out)
    }

    pub(super) fn is_stale(&self, admin: &AdminAccount, now: OffsetDateTime) -> bool {
        let last = admin.last_login_at.unwrap_or(admin.created_at);
        admin.disabled_at.is_none()
            && now - last > Duration::days(i64::from(self.config.auth.stale_after_days))
    }

    /// The hygiene job: reports accounts unused for longer than the policy
    /// allows and, when the policy says so, disables them. Returns the names.
    /// It also sweeps the shared sign-in state that has run out (counters,
    /// ceremonies, checks a stopped server left).
    pub async fn sweep_stale_admins(&self, _by: &Operator) -> CoreResult<Vec<String>> {
        let now = self.now();
        match self.ports.admin.sweep_ephemeral(now).await {
            Ok(n) => tracing::debug!(entries = n, "expired sign-in state swept"),
            Err(e) => tracing::warn!(error = %e, "expired sign-in state not swept"),
        }
        let mut stale = Vec::new();
        for admin in self.ports.admin.list_admins().await? {
            if !self.is_stale(&admin, now) {
                continue;
            }
            tracing::warn!(admin = %admin.name, "administrator account unused for {} days", self.config.auth.stale_after_days);
            if self.config.auth.disable_stale {
                let reason = format!("unused for {} days", self.config.auth.stale_after_days);
                // An owner who works only through tokens looks unused; the
                // last enabled owner stays (the store checks it).
                let disabled = self
                    .ports
                    .admin
                    .disable_admin(&admin.id, now, &reason, true)
                    .await?;
                if disabled.is_none() && admin.role == Role::Owner {
                    tracing::warn!(admin = %admin.name, "stale, but the last enabled owner: kept");
                }
                if let Some(revoked) = disabled {
                    self.audit(
                        self.audit_record(
                            "system",
                            &ClientContext::default(),
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
                }
            }
            stale.push(admin.name);
        }
        Ok(stale)
    }
}
