//! Enrollment profiles: each carries its own SCEP challenge, limited in uses
//! and lifetime; signed with the server certificate unless asked otherwise.

use crate::access::permit::EnrollmentWrite;
use crate::access::{Authorized, ClientContext};
use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_crypto::DigestAlg;
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{EnrollmentLink, EnrollmentProfile};
use mamori_protocol::mobileconfig::{build_enrollment_profile, EnrollmentProfileParams};
use time::Duration;

/// What an administrator asks for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    /// Sign the profile (default true).
    pub signed: Option<bool>,
    /// Certificates the challenge may obtain (default 1).
    pub max_uses: Option<u32>,
    /// Lifetime of the challenge in hours (default 24).
    pub ttl_hours: Option<u32>,
}

/// What an administrator asks for when creating a download link.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Sign downloaded profiles (default true).
    pub signed: Option<bool>,
    /// Downloads allowed (default 1).
    pub max_uses: Option<u32>,
    /// Lifetime of the link in hours (default 24).
    pub ttl_hours: Option<u32>,
}

/// A created download link; the URL holds the secret and is shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedLink {
    /// Link identifier.
    pub id: String,
    /// The URL to open on the device.
    pub url: String,
    /// Downloads allowed.
    pub max_uses: u32,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

/// Lifetime of the challenge in a profile downloaded through a link.
const DOWNLOADED_PROFILE_TTL_HOURS: u32 = 1;

/// Upper bounds on a profile's challenge.
pub const MAX_USES: u32 = 100_000;
/// Longest challenge lifetime: 90 days.
pub const MAX_TTL_HOURS: u32 = 24 * 90;

/// OID id-data.
const ID_DATA: &str = "1.2.840.113549.1.7.1";

fn check_limits(max_uses: Option<u32>, ttl_hours: Option<u32>) -> CoreResult<(u32, u32)> {
    let max_uses = max_uses.unwrap_or(1);
    let ttl_hours = ttl_hours.unwrap_or(24);
    if max_uses == 0 || max_uses > MAX_USES {
        return Err(CoreError::BadRequest(format!(
            "max_uses must be 1-{MAX_USES}"
        )));
    }
    if ttl_hours == 0 || ttl_hours > MAX_TTL_HOURS {
        return Err(CoreError::BadRequest(format!(
            "ttl_hours must be 1-{MAX_TTL_HOURS}"
        )));
    }
    Ok((max_uses, ttl_hours))
}

impl Services {
    /// Creates an enrollment profile and returns the `.mobileconfig` bytes.
    pub async fn create_enrollment_profile(
        &self,
        by: &Authorized<EnrollmentWrite>,
        ctx: &ClientContext,
        req: &ProfileRequest,
    ) -> CoreResult<Vec<u8>> {
        let (bytes, max_uses, ttl_hours) = self.make_enrollment_profile(req).await?;
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::EnrollmentProfileCreate,
                Outcome::Success,
            )
            .detail(format!("max_uses={max_uses} ttl_hours={ttl_hours}")),
        )
        .await?;
        Ok(bytes)
    }

    /// Makes a profile with its own challenge; returns it with its limits.
    async fn make_enrollment_profile(
        &self,
        req: &ProfileRequest,
    ) -> CoreResult<(Vec<u8>, u32, u32)> {
        let (max_uses, ttl_hours) = check_limits(req.max_uses, req.ttl_hours)?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(mamori_crypto::random_bytes(24));
        let now = self.clock.now();
        let uuid = uuid::Uuid::new_v4();
        let id = uuid.to_string().to_uppercase();
        let profile = EnrollmentProfile {
            id: id.clone(),
            challenge_hash: mamori_crypto::sha256_hex(challenge.as_bytes()),
            max_uses,
            uses: 0,
            created_at: now,
            expires_at: now + Duration::hours(i64::from(ttl_hours)),
        };
        self.ports.device.insert_profile(&profile).await?;
        let xml = build_enrollment_profile(&self.profile_params(uuid, challenge))
            .map_err(|e| CoreError::Internal(e.into()))?;
        tracing::info!(profile = %id, max_uses, ttl_hours, "enrollment profile created");
        let bytes = if req.signed.unwrap_or(true) {
            self.sign_profile(&xml)?
        } else {
            xml
        };
        Ok((bytes, max_uses, ttl_hours))
    }

    /// Creates a secret download link for enrollment profiles.
    pub async fn create_enrollment_link(
        &self,
        by: &Authorized<EnrollmentWrite>,
        ctx: &ClientContext,
        req: &LinkRequest,
    ) -> CoreResult<CreatedLink> {
        let (max_uses, ttl_hours) = check_limits(req.max_uses, req.ttl_hours)?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(mamori_crypto::random_bytes(32));
        let now = self.clock.now();
        let link = EnrollmentLink {
            id: uuid::Uuid::new_v4().to_string().to_uppercase(),
            secret_hash: mamori_crypto::sha256_hex(secret.as_bytes()),
            max_uses,
            uses: 0,
            signed: req.signed.unwrap_or(true),
            created_at: now,
            expires_at: now + Duration::hours(i64::from(ttl_hours)),
        };
        self.ports.device.insert_link(&link).await?;
        tracing::info!(link = %link.id, max_uses, ttl_hours, "enrollment link created");
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::EnrollmentLinkCreate,
                Outcome::Success,
            )
            .target(&link.id)
            .detail(format!("max_uses={max_uses}")),
        )
        .await?;
        let base = self.config.public_url.trim_end_matches('/');
        Ok(CreatedLink {
            id: link.id,
            url: format!("{base}/enroll/{secret}"),
            max_uses,
            expires_at: link.expires_at,
        })
    }

    /// The download links still usable (newest first, at most 200). The
    /// secrets are not stored, so no URL is shown again.
    pub async fn enrollment_links(
        &self,
        _by: &Authorized<EnrollmentWrite>,
    ) -> CoreResult<Vec<EnrollmentLink>> {
        Ok(self
            .ports
            .device
            .active_links(self.clock.now(), 200)
            .await?)
    }

    /// Ends a download link now (a link shared too widely, or no longer
    /// needed); profiles already downloaded keep their own single-use
    /// challenge.
    pub async fn revoke_enrollment_link(
        &self,
        by: &Authorized<EnrollmentWrite>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<()> {
        if !self.ports.device.revoke_link(id, self.clock.now()).await? {
            return Err(CoreError::NotFound(
                "no such link, or it is already over".into(),
            ));
        }
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::EnrollmentLinkRevoke,
                Outcome::Success,
            )
            .target(id),
        )
        .await
    }

    /// A device downloads a profile through a link: each download gets its
    /// own single-use challenge. Unknown, expired and used-up links look the
    /// same (NotFound).
    pub async fn download_enrollment_profile(&self, secret: &str) -> CoreResult<Vec<u8>> {
        let not_found = || CoreError::NotFound("no such enrollment link".into());
        if secret.is_empty() || secret.len() > 128 {
            return Err(not_found());
        }
        let hash = mamori_crypto::sha256_hex(secret.as_bytes());
        let Some(link) = self
            .ports
            .device
            .consume_link(&hash, self.clock.now())
            .await?
        else {
            tracing::warn!("enrollment link unknown, expired or used up");
            return Err(not_found());
        };
        tracing::info!(link = %link.id, uses = link.uses, "enrollment profile downloaded");
        let (bytes, ..) = self
            .make_enrollment_profile(&ProfileRequest {
                signed: Some(link.signed),
                max_uses: Some(1),
                ttl_hours: Some(DOWNLOADED_PROFILE_TTL_HOURS),
            })
            .await?;
        Ok(bytes)
    }

    fn profile_params(&self, uuid: uuid::Uuid, challenge: String) -> EnrollmentProfileParams {
        let base = self.config.public_url.trim_end_matches('/');
        let id = uuid.to_string().to_uppercase();
        let new_uuid = uuid::Uuid::new_v4;
        EnrollmentProfileParams {
            server_url: format!("{base}/mdm/connect"),
            checkin_url: format!("{base}/mdm/checkin"),
            topic: self
                .pusher
                .topic()
                .unwrap_or_else(|| self.config.push_topic.clone()),
            scep_url: format!("{base}/scep"),
            scep_challenge: challenge,
            scep_subject_cn: "Mamori device identity".into(),
            scep_ca_name: "Mamori".into(),
            tls_root_der: self.pki.tls_root.clone(),
            sign_message: true,
            check_out_when_removed: true,
            access_rights: 8191,
            organization: self.config.organization.clone(),
            profile_identifier: profile_identifier(&id),
            profile_uuid: uuid,
            scep_payload_uuid: new_uuid(),
            mdm_payload_uuid: new_uuid(),
            root_payload_uuid: new_uuid(),
        }
    }

    fn sign_profile(&self, xml: &[u8]) -> CoreResult<Vec<u8>> {
        let oid = ID_DATA
            .parse()
            .map_err(|_| CoreError::Internal("id-data OID".into()))?;
        mamori_protocol::cms::sign_attached(
            xml,
            oid,
            &self.pki.signer_cert,
            &self.pki.signer_key,
            DigestAlg::Sha256,
            &[],
            &self.pki.signer_chain,
        )
        .map_err(|e| CoreError::Internal(e.into()))
    }
}

/// The `PayloadIdentifier` of the enrollment profile with this ID.
pub fn profile_identifier(profile_id: &str) -> String {
    format!("com.mamori.enrollment.{profile_id}")
}
