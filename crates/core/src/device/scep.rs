//! SCEP (RFC 8894) use-cases: hand out the CA/RA certificates and turn a
//! PKIOperation into a signed device identity certificate.
//!
//! Security shape: the RA key is the only key that decrypts attacker-supplied
//! envelopes (through aws-lc-rs, constant time); the CA key only ever signs
//! certificates built from values we checked.

use crate::{CoreError, CoreResult, Services};
use mamori_crypto::certs::{CertProfile, IssueRequest};
use mamori_domain::AuditAction;
use mamori_domain::Outcome;
use mamori_domain::{log_safe, DeviceCertificate, DeviceKey};
use mamori_protocol::cms::PkiError;
use mamori_protocol::scep::{self, FailInfo, MessageType, PkiMessage};
use time::Duration;

const BAD_MESSAGE_CHECK: FailInfo = FailInfo::BadMessageCheck;
const BAD_REQUEST: FailInfo = FailInfo::BadRequest;
const BAD_CERT_ID: FailInfo = FailInfo::BadCertId;

/// What the CA certificate request returns.
#[derive(Debug)]
pub struct CaCertResponse {
    /// `application/x-x509-ca-ra-cert` (degenerate PKCS#7 with CA and RA).
    pub body: Vec<u8>,
}

impl Services {
    /// GetCACaps.
    pub fn scep_ca_caps(&self) -> &'static str {
        scep::CA_CAPS
    }

    /// GetCACert: the RA and the CA certificate, as a certs-only PKCS#7.
    /// The RA comes first: clients that simply encrypt to the first
    /// certificate then reach the RA key, the only one that decrypts
    /// requests (clients that choose by key usage find it either way).
    pub fn scep_ca_certs(&self) -> CoreResult<CaCertResponse> {
        let body = mamori_protocol::cms::degenerate_certs_only(&[
            self.pki.ra_cert.clone(),
            self.pki.device_ca.cert_der.clone(),
        ])
        .map_err(|e| CoreError::Internal(e.into()))?;
        Ok(CaCertResponse { body })
    }

    /// PKIOperation: returns the CertRep message (success or failure).
    /// Malformed input that cannot even be answered with a CertRep (such as
    /// a transactionID the reply could not echo) is a BadRequest.
    /// Refusals are audited (rate-limited per source), issuances too.
    ///
    /// Order: everything is checked and the reply is built first; only then
    /// does one store transaction spend the challenge use, record the
    /// certificate and append the audit record. A refusal or failure before
    /// that leaves nothing behind, and the transaction is all or nothing.
    pub async fn scep_pki_operation(
        &self,
        der: &[u8],
        source: Option<std::net::IpAddr>,
    ) -> CoreResult<Vec<u8>> {
        let msg = match scep::parse_pki_message(der) {
            Ok(m) => m,
            Err(e) => {
                let reason = e.to_string();
                match &e {
                    PkiError::TransactionId(raw) => tracing::warn!(
                        transaction = %log_safe(raw), reason = %log_safe(&reason),
                        "SCEP message refused"
                    ),
                    _ => tracing::warn!(reason = %log_safe(&reason), "SCEP message refused"),
                }
                let err = CoreError::BadRequest("malformed SCEP message".into());
                self.device_rejected(source, "scep", &err).await;
                return Err(err);
            }
        };
        match self.issue_for(&msg, source).await {
            Ok(rep) => Ok(rep),
            Err(Refusal::Fail(info, why)) => {
                tracing::warn!(
                    transaction = %log_safe(&msg.transaction_id), reason = %log_safe(&why),
                    fail_info = info.code(), "SCEP request refused"
                );
                self.device_rejected(source, "scep", &CoreError::BadRequest(why.clone()))
                    .await;
                scep::build_cert_rep_failure(&msg, info, &self.pki.ra_cert, &self.pki.ra_key)
                    .map_err(|e| CoreError::Internal(e.into()))
            }
            Err(Refusal::Core(e)) => Err(e),
        }
    }

    async fn issue_for(
        &self,
        msg: &PkiMessage,
        source: Option<std::net::IpAddr>,
    ) -> Result<Vec<u8>, Refusal> {
        let kind = msg.message_type;
        if kind != MessageType::PkcsReq && kind != MessageType::RenewalReq {
            return Err(Refusal::Fail(BAD_REQUEST, format!("message type {kind:?}")));
        }
        let ra_key = &self.pki.ra_key;
        let (csr_der, alg) = mamori_protocol::cms::decrypt_enveloped(
            &msg.enveloped_der,
            &self.pki.ra_cert,
            self.config.allow_single_des,
            |ct| ra_key.decrypt_pkcs1v15(ct),
        )
        .map_err(|e| Refusal::Fail(BAD_MESSAGE_CHECK, format!("envelope: {e}")))?;
        let csr = mamori_protocol::csr::parse_csr(&csr_der)
            .map_err(|e| Refusal::Fail(BAD_REQUEST, format!("CSR: {e}")))?;
        let origin = if kind == MessageType::RenewalReq {
            self.renewal_origin(&msg.signer_cert_der).await?
        } else {
            self.challenge_origin(csr.challenge_password.as_deref())
                .await?
        };
        let (der, record) = self.sign_device_cert(&csr.subject_cn, &csr.spki_der, &origin)?;
        // Built before anything is recorded: a reply that cannot be built
        // leaves no certificate and no spent challenge behind.
        let rep = scep::build_cert_rep_success(msg, &der, alg, &self.pki.ra_cert, ra_key)
            .map_err(|e| Refusal::Core(CoreError::Internal(e.into())))?;
        let event = mamori_domain::AuditEvent {
            at: self.clock.now(),
            actor: "anonymous".into(),
            source: source.map(|s| s.to_string()),
            action: AuditAction::DeviceCertificateIssue.as_str().into(),
            target: None,
            outcome: Outcome::Success.as_str().into(),
            request_id: None,
            detail: Some(format!(
                "scep transaction={}",
                msg.transaction_id.chars().take(64).collect::<String>()
            )),
        };
        let store = &*self.ports.device;
        let profile = origin.profile.as_deref();
        let spent = self
            .chain
            .in_turn(|linker| {
                store.record_issuance(profile, &record, &event, linker, record.issued_at)
            })
            .await
            .map_err(Refusal::Core)?;
        if !spent {
            // Since the request's own check, the last use of the challenge
            // went to a concurrent request, or the identity being renewed
            // was retired (checked again where the certificate is stored).
            return Err(match &record.renewed_from {
                Some(_) => Refusal::Fail(
                    BAD_CERT_ID,
                    "renewal signer unknown, revoked or expired".into(),
                ),
                None => Refusal::Fail(BAD_REQUEST, "challenge unknown, expired or used up".into()),
            });
        }
        tracing::info!(
            fingerprint = %record.fingerprint, transaction = %log_safe(&msg.transaction_id),
            "device identity certificate issued"
        );
        Ok(rep)
    }

    /// The enrollment profile of the challenge, if it has a use left. The
    /// use is spent only with the issuance ([`mamori_ports::CertStore::record_issuance`]).
    async fn challenge_origin(&self, challenge: Option<&str>) -> Result<Origin, Refusal> {
        let Some(challenge) = challenge else {
            return Err(Refusal::Fail(BAD_REQUEST, "no challenge password".into()));
        };
        let hash = mamori_crypto::sha256_hex(challenge.as_bytes());
        match self
            .ports
            .device
            .challenge_profile(&hash, self.clock.now())
            .await
        {
            Ok(Some(profile)) => Ok(Origin {
                profile: Some(profile),
                device: None,
                renewed_from: None,
            }),
            Ok(None) => Err(Refusal::Fail(
                BAD_REQUEST,
                "challenge unknown, expired or used up".into(),
            )),
            Err(e) => Err(Refusal::Core(e.into())),
        }
    }

    /// A renewal must be signed by a live identity certificate of ours:
    /// bound to an enrollment (it Authenticated), unrevoked, unexpired and
    /// not held for an administrator (`crate::device::reenroll`). The new
    /// certificate belongs to the same enrollment.
    ///
    /// A renewal spends no challenge, so a signer that merely holds a
    /// certificate (unbound: SCEP done, never Authenticated; or held) would
    /// otherwise mint fresh identities without end from one challenge use,
    /// outliving the profile, each new held identity raising a new alert.
    async fn renewal_origin(&self, signer: &[u8]) -> Result<Origin, Refusal> {
        let now = self.clock.now();
        let parsed = self
            .pki
            .device_ca
            .verify_issued(signer, now)
            .map_err(|e| Refusal::Fail(BAD_CERT_ID, format!("renewal signer: {e}")))?;
        let record = self
            .ports
            .device
            .certificate(&parsed.fingerprint_sha256_hex)
            .await
            .map_err(|e| Refusal::Core(e.into()))?;
        let r = match record {
            Some(r) if r.revoked_at.is_none() && r.not_after > now => r,
            _ => {
                return Err(Refusal::Fail(
                    BAD_CERT_ID,
                    "renewal signer unknown, revoked or expired".into(),
                ))
            }
        };
        let Some(device) = r.device else {
            return Err(Refusal::Fail(
                BAD_CERT_ID,
                "renewal signer is not bound to an enrollment".into(),
            ));
        };
        let held = self
            .ports
            .device
            .held_reenrollment(&r.fingerprint)
            .await
            .map_err(|e| Refusal::Core(e.into()))?;
        if held.is_some() {
            return Err(Refusal::Fail(
                BAD_CERT_ID,
                "renewal signer is held for an administrator".into(),
            ));
        }
        Ok(Origin {
            profile: None,
            device: Some(device),
            renewed_from: Some(r.fingerprint),
        })
    }

    /// Signs the certificate (in memory only) and the record to store.
    fn sign_device_cert(
        &self,
        cn: &Option<String>,
        spki: &[u8],
        origin: &Origin,
    ) -> Result<(Vec<u8>, DeviceCertificate), Refusal> {
        let now = self.clock.now();
        let serial = mamori_crypto::random_serial()
            .map_err(|e| Refusal::Core(CoreError::Internal(e.into())))?;
        let req = IssueRequest {
            subject_cn: sanitize_cn(cn.as_deref()),
            spki_der: spki.to_vec(),
            serial: serial.clone(),
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(i64::from(self.config.device_cert_days)),
            profile: CertProfile::DeviceIdentity,
        };
        let der = self
            .pki
            .device_ca
            .issue(&req)
            .map_err(|e| Refusal::Core(CoreError::Internal(e.into())))?;
        let record = DeviceCertificate {
            fingerprint: mamori_crypto::sha256_hex(&der),
            serial: hex::encode(&serial),
            profile_id: origin.profile.clone(),
            device: origin.device.clone(),
            renewed_from: origin.renewed_from.clone(),
            not_after: req.not_after,
            issued_at: now,
            revoked_at: None,
        };
        Ok((der, record))
    }
}

struct Origin {
    profile: Option<String>,
    device: Option<DeviceKey>,
    renewed_from: Option<String>,
}

enum Refusal {
    Fail(FailInfo, String),
    Core(CoreError),
}

/// Keeps a CSR's common name printable and short; the certificate's identity
/// is its fingerprint, not this name.
fn sanitize_cn(cn: Option<&str>) -> String {
    let clean: String = cn
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " -_.:@".contains(*c))
        .take(64)
        .collect();
    if clean.trim().is_empty() {
        "Mamori device".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize_cn;

    #[test]
    fn cn_is_sanitized() {
        assert_eq!(sanitize_cn(None), "Mamori device");
        assert_eq!(sanitize_cn(Some("<script>x")), "scriptx");
        assert_eq!(sanitize_cn(Some(&"a".repeat(100))).len(), 64);
    }
}
