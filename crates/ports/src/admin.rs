//! Ports of administrator identity: accounts, factors, sessions, tokens,
//! approvals, control links, sealed secrets.

use crate::StoreResult;
use async_trait::async_trait;
use mamori_domain::{
    AdminAccount, AdminCredentials, AdminId, AdminSession, ApiToken, Approval, ApprovalStatus,
    Role, SessionId, TokenId, WebauthnCredential,
};
use time::OffsetDateTime;

/// Administrator API tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Records a token with the hash of its secret.
    async fn insert_token(&self, token: &ApiToken, secret_hash: &str) -> StoreResult<()>;
    /// A token and its secret hash.
    async fn token(&self, id: &TokenId) -> StoreResult<Option<(ApiToken, String)>>;
    /// Records a successful use.
    async fn touch_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<()>;
    /// Revokes a token; false when unknown or already revoked.
    async fn revoke_token(&self, id: &TokenId, now: OffsetDateTime) -> StoreResult<bool>;
    /// Every token, or only those of one account; oldest first.
    async fn list_tokens(&self, admin: Option<&AdminId>) -> StoreResult<Vec<ApiToken>>;
}

/// Administrator accounts, their factors and their sessions.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Records a new account; false when the name is taken.
    async fn insert_admin(
        &self,
        admin: &AdminAccount,
        credentials: &AdminCredentials,
    ) -> StoreResult<bool>;
    /// An account by ID.
    async fn admin(&self, id: &AdminId) -> StoreResult<Option<AdminAccount>>;
    /// An account by login name (exact match).
    async fn admin_by_name(&self, name: &str) -> StoreResult<Option<AdminAccount>>;
    /// Every account, by name.
    async fn list_admins(&self) -> StoreResult<Vec<AdminAccount>>;
    /// An account's secrets.
    async fn admin_credentials(&self, id: &AdminId) -> StoreResult<Option<AdminCredentials>>;
    /// Replaces the password hash and the must-change flag; `now` is when
    /// the password was set.
    async fn set_password(
        &self,
        id: &AdminId,
        password_hash: &str,
        must_change: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Resets an account that lost its factors, in one transaction: a new
    /// one-time password (must be changed), no TOTP, no WebAuthn
    /// credentials, no recovery codes, no lock, and every session and token
    /// revoked. Returns (sessions, tokens) revoked; `None` for no account.
    async fn reset_admin(
        &self,
        id: &AdminId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Removes the enrolled TOTP secret; false when none was enrolled.
    async fn clear_totp(&self, id: &AdminId) -> StoreResult<bool>;
    /// Removes one of the account's WebAuthn credentials; false when the
    /// account has no credential with that ID.
    async fn delete_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool>;
    /// Stores (or clears) a TOTP secret offered for enrollment.
    async fn set_totp_pending(&self, id: &AdminId, sealed: Option<&[u8]>) -> StoreResult<()>;
    /// Makes the pending TOTP secret the enrolled one, with its first
    /// accepted step, and clears the pending one. False when none was pending.
    async fn activate_totp(&self, id: &AdminId, step: u64) -> StoreResult<bool>;
    /// Replay protection: records `step` as the last accepted TOTP step only
    /// if it is later than the stored one (atomically); false otherwise.
    async fn advance_totp_step(&self, id: &AdminId, step: u64) -> StoreResult<bool>;
    /// Adds one failed login; returns the new count of consecutive failures.
    async fn add_login_failure(&self, id: &AdminId) -> StoreResult<u32>;
    /// Sets the backoff end and the lock (None clears).
    async fn set_login_block(
        &self,
        id: &AdminId,
        throttled_until: Option<OffsetDateTime>,
        locked_at: Option<OffsetDateTime>,
    ) -> StoreResult<()>;
    /// Unlocks: clears the lock, the backoff and the failure count.
    async fn unlock_admin(&self, id: &AdminId) -> StoreResult<()>;
    /// Records a completed login: clears failures, sets time and source.
    async fn record_login(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        source: &str,
    ) -> StoreResult<()>;
    /// Changes the role.
    async fn set_role(&self, id: &AdminId, role: Role) -> StoreResult<()>;
    /// Disables the account and, in the same transaction, revokes all its
    /// sessions and tokens. Returns (sessions, tokens) revoked; `None` when
    /// the account was already disabled or does not exist, or, with
    /// `keep_last_owner`, when it is the last enabled owner (checked in the
    /// same statement that disables it).
    async fn disable_admin(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        reason: &str,
        keep_last_owner: bool,
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Re-enables a disabled account (its old sessions and tokens stay
    /// revoked); false when it was not disabled.
    async fn enable_admin(&self, id: &AdminId) -> StoreResult<bool>;
    /// Suspends the account (kept until [`AdminStore::reinstate_admin`])
    /// and, in the same transaction, revokes all its sessions and tokens.
    /// Returns (sessions, tokens) revoked; `None` when the account was
    /// already suspended or does not exist.
    async fn suspend_admin(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        reason: &str,
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Lifts a suspension (the revoked sessions and tokens stay revoked);
    /// false when the account was not suspended.
    async fn reinstate_admin(&self, id: &AdminId) -> StoreResult<bool>;
    /// Replaces the account's recovery codes (SHA-256 hashes).
    async fn replace_recovery_codes(&self, id: &AdminId, hashes: &[String]) -> StoreResult<()>;
    /// Spends an unused recovery code; false when none matches.
    async fn use_recovery_code(
        &self,
        id: &AdminId,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Unused recovery codes left.
    async fn recovery_codes_left(&self, id: &AdminId) -> StoreResult<u32>;
    /// Records a WebAuthn credential; false when its ID is already registered.
    async fn insert_webauthn(&self, credential: &WebauthnCredential) -> StoreResult<bool>;
    /// Makes a pending credential (registered in a recovery session)
    /// usable now; `Ok(false)` when there is no such pending credential.
    async fn activate_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool>;
    /// The account's WebAuthn credentials, oldest first.
    async fn webauthn_credentials(&self, id: &AdminId) -> StoreResult<Vec<WebauthnCredential>>;
    /// Stores a credential's updated data (signature counter) and use time.
    async fn update_webauthn(
        &self,
        credential_id: &str,
        data: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Records a session with the SHA-256 of its secret.
    async fn insert_session(&self, session: &AdminSession, secret_hash: &str) -> StoreResult<()>;
    /// The session whose secret has this hash (revoked or not).
    async fn session_by_secret(&self, secret_hash: &str) -> StoreResult<Option<AdminSession>>;
    /// Records activity on a session.
    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()>;
    /// Records a re-authentication.
    async fn set_session_step_up(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()>;
    /// Revokes one session of an account; false when it is unknown, not the
    /// account's, or already revoked.
    async fn revoke_session(
        &self,
        admin: &AdminId,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Revokes every live session of an account, except `keep`; returns how
    /// many.
    async fn revoke_admin_sessions(
        &self,
        admin: &AdminId,
        keep: Option<&SessionId>,
        now: OffsetDateTime,
    ) -> StoreResult<u64>;
    /// The account's unrevoked, unexpired sessions, newest first.
    async fn list_sessions(
        &self,
        admin: &AdminId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<AdminSession>>;
}

/// Requests waiting for a second administrator.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Records a new request.
    async fn insert_approval(&self, approval: &Approval) -> StoreResult<()>;
    /// A request by ID.
    async fn approval(&self, id: &str) -> StoreResult<Option<Approval>>;
    /// Pending, unexpired requests, oldest first.
    async fn pending_approvals(&self, now: OffsetDateTime) -> StoreResult<Vec<Approval>>;
    /// Decides a request atomically: only a pending, unexpired one changes.
    /// False otherwise.
    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        decided_by: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Marks an approved request used (an export downloaded), atomically:
    /// false when it is not approved or was used already.
    async fn use_approval(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool>;
}

/// Sealed secrets (already encrypted by the caller) stored by name.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores or replaces a sealed secret.
    async fn put_secret(&self, name: &str, sealed: &[u8], now: OffsetDateTime) -> StoreResult<()>;
    /// Stores a sealed secret only if none of that name exists (in one
    /// statement: of several servers creating it at once, one wins);
    /// false when one existed.
    async fn put_secret_if_absent(
        &self,
        name: &str,
        sealed: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Reads a sealed secret.
    async fn secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Deletes a sealed secret; false when there was none.
    async fn delete_secret(&self, name: &str) -> StoreResult<bool>;
}

/// Who created, reset or changed the role of which administrator account
/// (and, from the API, re-enabled or unlocked it).
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Records that `controller` created (`create`), reset (`reset`),
    /// changed the role of (`role`), re-enabled (`enable`) or unlocked
    /// (`unlock`) `controlled`.
    async fn record_control(
        &self,
        controller: &AdminId,
        controlled: &AdminId,
        kind: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Whether the two accounts count as one person through rows at or
    /// after `since`: either controls the other, directly or through a
    /// chain (A created B, B created C: A and C), or one account controls
    /// both (A created B and C: B and C), following a few rows up from
    /// each side.
    async fn controls_either(
        &self,
        a: &AdminId,
        b: &AdminId,
        since: OffsetDateTime,
    ) -> StoreResult<bool>;
}
