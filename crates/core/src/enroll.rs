//! Enrollment profiles: each carries its own SCEP challenge, limited in uses
//! and lifetime; signed with the server certificate unless asked otherwise.

use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_crypto::DigestAlg;
use mamori_domain::EnrollmentProfile;
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

/// Upper bounds on a profile's challenge.
pub const MAX_USES: u32 = 100_000;
/// Longest challenge lifetime: 90 days.
pub const MAX_TTL_HOURS: u32 = 24 * 90;

/// OID id-data.
const ID_DATA: &str = "1.2.840.113549.1.7.1";

impl Services {
    /// Creates an enrollment profile and returns the `.mobileconfig` bytes.
    pub async fn create_enrollment_profile(&self, req: &ProfileRequest) -> CoreResult<Vec<u8>> {
        let max_uses = req.max_uses.unwrap_or(1);
        let ttl_hours = req.ttl_hours.unwrap_or(24);
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
        self.store.insert_profile(&profile).await?;
        let xml = build_enrollment_profile(&self.profile_params(uuid, challenge))
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        tracing::info!(profile = %id, max_uses, ttl_hours, "enrollment profile created");
        if req.signed.unwrap_or(true) {
            self.sign_profile(&xml)
        } else {
            Ok(xml)
        }
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
            profile_identifier: format!("com.mamori.enrollment.{id}"),
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
        .map_err(|e| CoreError::Internal(e.to_string()))
    }
}
