//! Authorization carried by types. An operation that needs a permission
//! takes an [`Authorized<P>`]; the only way to get one is
//! [`Actor::authorize`], which checks the permission (`P` is a type from
//! [`permit`]). So a caller that skipped the check cannot call the
//! operation at all, and the signature says what it needs.
//!
//! The host's command line and the server's own jobs hold every
//! permission: whoever runs `mamori` on the host can read the data
//! directory. Only the binary makes those actors ([`super::HostUser`],
//! [`super::Job`]); the HTTP layer gets its actors from the guard.

use super::{Actor, AdminActor};
use crate::{CoreError, CoreResult};
use mamori_domain::Permission;
use std::marker::PhantomData;

/// A permission as a type.
pub trait Permit: Send + Sync + 'static {
    /// The permission it stands for.
    const PERMISSION: Permission;
}

/// The permissions as types, one per [`Permission`].
pub mod permit {
    use super::Permit;
    use mamori_domain::Permission;

    macro_rules! permits {
        ($($name:ident,)*) => {
            $(
                #[doc = concat!("[`Permission::", stringify!($name), "`] as a type.")]
                #[derive(Debug)]
                pub enum $name {}

                impl Permit for $name {
                    const PERMISSION: Permission = Permission::$name;
                }
            )*

            /// Every permit's permission, to check the list is whole.
            pub const ALL: &[Permission] = &[$(Permission::$name,)*];
        };
    }

    permits! {
        DevicesRead,
        CommandsRead,
        DeviceActions,
        CommandsWrite,
        EnrollmentWrite,
        PeopleWrite,
        PersonalDataRead,
        AuditRead,
        AccountsManage,
        TokensOwn,
        SettingsWrite,
        IncidentsManage,
    }
}

/// Proof that an actor holds the permission `P`, made only by
/// [`Actor::authorize`].
#[derive(Debug)]
pub struct Authorized<P: Permit> {
    actor: Actor,
    permit: PhantomData<fn() -> P>,
}

impl<P: Permit> Authorized<P> {
    /// Who holds it.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The administrator who holds it, if it is one.
    pub fn admin(&self) -> Option<&AdminActor> {
        self.actor.admin()
    }

    /// The administrator who holds it, for an operation only an
    /// administrator can do (one's own session, a step-up, a personal
    /// export); the command line and jobs are refused.
    pub fn require_admin(&self) -> CoreResult<&AdminActor> {
        self.actor.admin().ok_or_else(|| {
            CoreError::Forbidden("this needs an administrator's session or token".into())
        })
    }

    /// How the holder appears in the audit log.
    pub fn label(&self) -> String {
        self.actor.label()
    }
}

impl Actor {
    /// Checks that the actor holds `P` and returns the proof: an
    /// administrator's full session or token must allow it (see
    /// [`AdminActor::allows`]); the host's command line and the server's
    /// jobs hold every permission.
    pub fn authorize<P: Permit>(self) -> CoreResult<Authorized<P>> {
        let allowed = match &self {
            Actor::Admin(a) => a.allows(P::PERMISSION),
            Actor::Host(_) | Actor::Job(_) => true,
        };
        if allowed {
            Ok(Authorized {
                actor: self,
                permit: PhantomData,
            })
        } else {
            Err(CoreError::Forbidden("permission denied".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::access::{HostUser, Job, Via};
    use mamori_domain::{
        AdminAccount, AdminId, AdminSession, ApiToken, Role, SessionId, SessionStage, TokenId,
    };
    use time::OffsetDateTime;

    fn account(role: Role) -> AdminAccount {
        let now = OffsetDateTime::UNIX_EPOCH;
        AdminAccount {
            id: AdminId::parse("00000000-0000-4000-8000-000000000001").unwrap(),
            name: "a".into(),
            role,
            must_change_password: false,
            created_at: now,
            password_set_at: now,
            last_login_at: None,
            last_login_source: None,
            failed_logins: 0,
            throttled_until: None,
            locked_at: None,
            disabled_at: None,
            disabled_reason: None,
            suspended: None,
            totp_enrolled: true,
        }
    }

    fn session(role: Role, stage: SessionStage) -> Actor {
        let admin = account(role);
        let now = OffsetDateTime::UNIX_EPOCH;
        let s = AdminSession {
            id: SessionId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            admin_id: admin.id.clone(),
            stage,
            created_at: now,
            last_seen_at: now,
            expires_at: now,
            source: String::new(),
            client_hash: String::new(),
            step_up_at: None,
            revoked_at: None,
        };
        Actor::from(AdminActor {
            admin,
            via: Via::Session(s),
        })
    }

    fn token(role: Role, scope: Option<Vec<Permission>>) -> Actor {
        let admin = account(Role::Owner);
        let now = OffsetDateTime::UNIX_EPOCH;
        let t = ApiToken {
            id: TokenId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            name: "t".into(),
            admin_id: admin.id.clone(),
            role,
            scope,
            created_at: now,
            expires_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        Actor::from(AdminActor {
            admin,
            via: Via::Token(t),
        })
    }

    #[test]
    fn a_proof_is_given_only_for_a_permission_the_actor_holds() {
        let viewer = session(Role::Viewer, SessionStage::Full);
        assert!(viewer.clone().authorize::<permit::DevicesRead>().is_ok());
        assert!(matches!(
            viewer.authorize::<permit::CommandsWrite>(),
            Err(CoreError::Forbidden(_))
        ));
        // A login waiting for its second factor holds nothing yet.
        let half = session(Role::Owner, SessionStage::SecondFactor);
        assert!(half.authorize::<permit::DevicesRead>().is_err());
        // A token holds what its scope and its role both allow.
        let scoped = token(Role::Owner, Some(vec![Permission::DevicesRead]));
        assert!(scoped.clone().authorize::<permit::DevicesRead>().is_ok());
        assert!(scoped.authorize::<permit::AccountsManage>().is_err());
        let helpdesk = token(Role::Helpdesk, None);
        assert!(helpdesk.authorize::<permit::PersonalDataRead>().is_err());
        // The host's command line and the server's jobs hold everything.
        let host = Actor::Host(HostUser::new("cli:root(uid=0)"));
        assert!(host.authorize::<permit::AccountsManage>().is_ok());
        let job = Actor::Job(Job::Fleet);
        let proof = job.authorize::<permit::CommandsWrite>().unwrap();
        assert_eq!(proof.label(), "system");
    }

    #[test]
    fn there_is_a_permit_for_every_permission() {
        assert_eq!(permit::ALL, Permission::ALL);
    }
}
