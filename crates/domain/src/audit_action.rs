//! The audit log's vocabulary: every action a record can name and every
//! outcome, as types. The text of each is what the log stores and what
//! sinks, reports and evidence bundles show; it never changes once
//! released (records already written must keep their meaning).

use std::fmt;

macro_rules! actions {
    ($($variant:ident => $text:literal,)*) => {
        /// What an audit record says happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*
        }

        impl AuditAction {
            /// Every action, in the order of their text.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// The text the log stores.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $text,)*
                }
            }

            /// The action a stored text names, if it is one of ours.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(AuditAction::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    AccessDenied => "access.denied",
    ActorSuspend => "actor.suspend",
    AdminCreate => "admin.create",
    AdminDisable => "admin.disable",
    AdminEnable => "admin.enable",
    AdminLinkPerson => "admin.link_person",
    AdminLock => "admin.lock",
    AdminReinstate => "admin.reinstate",
    AdminReset => "admin.reset",
    AdminRole => "admin.role",
    AdminUnlock => "admin.unlock",
    AlertAuditChainBroken => "alert.audit_chain_broken",
    AlertBulkPersonalDataRead => "alert.bulk_personal_data_read",
    AlertDeviceReenrollment => "alert.device_reenrollment",
    AlertDeviceReenrollmentRetarget => "alert.device_reenrollment_retarget",
    AlertDeviceTwoPlaces => "alert.device_two_places",
    AlertMassCommand => "alert.mass_command",
    AlertMfaFailures => "alert.mfa_failures",
    AlertNewNetwork => "alert.new_network",
    AlertOffHours => "alert.off_hours",
    AlertReadBaseline => "alert.read_baseline",
    AlertRecoveryCodeUsed => "alert.recovery_code_used",
    AlertSessionAfterOffboarding => "alert.session_after_offboarding",
    AlertTokenAfterOffboarding => "alert.token_after_offboarding",
    ApiRequest => "api.request",
    ApprovalApprove => "approval.approve",
    ApprovalReject => "approval.reject",
    ApprovalRequest => "approval.request",
    AuditTruncate => "audit.truncate",
    AuthLogin => "auth.login",
    AuthLogout => "auth.logout",
    AuthPassword => "auth.password",
    AuthPasswordChange => "auth.password_change",
    AuthRecoveryCode => "auth.recovery_code",
    AuthSession => "auth.session",
    AuthSessionRevoke => "auth.session_revoke",
    AuthSessionRevokeAll => "auth.session_revoke_all",
    AuthStepUp => "auth.step_up",
    AuthToken => "auth.token",
    AuthTotp => "auth.totp",
    AuthWebauthn => "auth.webauthn",
    CommandQueue => "command.queue",
    CommandResult => "command.result",
    DeviceAssign => "device.assign",
    DeviceBootstrapToken => "device.bootstrap_token",
    DeviceCertificateIssue => "device.certificate_issue",
    DeviceCheckout => "device.checkout",
    DeviceEnroll => "device.enroll",
    DeviceOffboard => "device.offboard",
    DevicePersonalRead => "device.personal_read",
    DeviceReenrollApprove => "device.reenroll_approve",
    DeviceReenrollDeny => "device.reenroll_deny",
    DeviceReenrollHeld => "device.reenroll_held",
    DeviceReenrollRetarget => "device.reenroll_retarget",
    DeviceRejected => "device.rejected",
    DeviceRetire => "device.retire",
    EnrollmentLinkCreate => "enrollment.link_create",
    EnrollmentLinkRevoke => "enrollment.link_revoke",
    EnrollmentProfileCreate => "enrollment.profile_create",
    ExportDownload => "export.download",
    GroupCompliance => "group.compliance",
    GroupCreate => "group.create",
    GroupDelete => "group.delete",
    GroupMembers => "group.members",
    GroupPolicies => "group.policies",
    IncidentEvidence => "incident.evidence",
    IncidentNotify => "incident.notify",
    IncidentOpen => "incident.open",
    IncidentUpdate => "incident.update",
    KeysRewrap => "keys.rewrap",
    KeysRotate => "keys.rotate",
    MfaRecoveryCodes => "mfa.recovery_codes",
    MfaTotpEnroll => "mfa.totp_enroll",
    MfaTotpRemove => "mfa.totp_remove",
    MfaWebauthnActivate => "mfa.webauthn_activate",
    MfaWebauthnRegister => "mfa.webauthn_register",
    MfaWebauthnRemove => "mfa.webauthn_remove",
    PeopleCreate => "people.create",
    PeopleExport => "people.export",
    PeopleImport => "people.import",
    PeopleIndex => "people.index",
    PeopleLookup => "people.lookup",
    PeopleOffboard => "people.offboard",
    PeoplePurge => "people.purge",
    PeopleRead => "people.read",
    PeopleReadIntent => "people.read_intent",
    PeopleUpdate => "people.update",
    PolicyCreate => "policy.create",
    PolicyDelete => "policy.delete",
    PolicyReconcile => "policy.reconcile",
    PolicyUpdate => "policy.update",
    ReportBreachScope => "report.breach_scope",
    SettingsPushCertificate => "settings.push_certificate",
    TokenCreate => "token.create",
    TokenRevoke => "token.revoke",
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the recorded action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was tried and did not work (a wrong password, a name taken).
    Failure,
    /// It was refused for lack of a right.
    Denied,
    /// It is about to be done (recorded first: a change the log cannot
    /// record is not made).
    Attempt,
    /// A detection rule fired.
    Alert,
}

impl Outcome {
    /// The text the log stores.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
            Self::Attempt => "attempt",
            Self::Alert => "alert",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_as_itself_and_texts_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
            assert!(seen.insert(a.as_str()), "{a} twice");
            let (area, what) = a.as_str().split_once('.').unwrap_or_default();
            assert!(!area.is_empty() && !what.is_empty(), "{a}: area.what");
        }
        assert_eq!(AuditAction::parse("no.such_action"), None);
    }
}
