//! Device identity: a request is from device X only if it carries a
//! certificate that chains to Mamori's device CA, was issued and recorded by
//! Mamori, is unrevoked, and is bound to enrollment X. The certificate comes
//! from the `Mdm-Signature` header (a detached CMS signature over the body) or
//! from the TLS client certificate.

use crate::{CoreError, CoreResult, Services};
use base64::Engine;
use mamori_domain::{DeviceCertificate, DeviceKey};
use mamori_ports::IdentityChange;

/// What the transport saw of the client's identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The `Mdm-Signature` header, when present.
    pub mdm_signature: Option<&'a str>,
    /// The TLS client certificate (DER), when one was presented.
    pub tls_peer: Option<&'a [u8]>,
    /// Where the request came from.
    pub source: Option<std::net::IpAddr>,
}

/// The largest Mdm-Signature header accepted (base64 text).
const MAX_SIGNATURE_LEN: usize = 16 * 1024;

impl Services {
    /// Finds and checks the device certificate behind a request. Fails with
    /// Unauthorized when none is presented or it is not one of ours.
    pub async fn device_certificate(
        &self,
        ev: Evidence<'_>,
        body: &[u8],
    ) -> CoreResult<(DeviceCertificate, Vec<u8>)> {
        let cert_der = presented_certificate(ev, Some(body))?;
        let record = self.recorded_identity(&cert_der).await?;
        Ok((record, cert_der))
    }

    /// Whether a request claims a device identity of ours — recorded and
    /// unrevoked — before its body is read: the certificate the
    /// `Mdm-Signature` header names (its signature over the body is checked
    /// once the body has arrived, by [`Self::device_certificate`]) or the
    /// TLS client certificate. A request that claims none is refused
    /// without its body being read or held, so that nobody without a
    /// device identity can make the server buffer bodies.
    pub async fn claims_device_identity(&self, ev: Evidence<'_>) -> CoreResult<()> {
        let cert_der = presented_certificate(ev, None)?;
        self.recorded_identity(&cert_der).await.map(drop)
    }

    /// The record of a certificate that chains to our device CA, was
    /// recorded at issue and is unrevoked (cached while it is valid).
    async fn recorded_identity(&self, cert_der: &[u8]) -> CoreResult<DeviceCertificate> {
        let now = self.clock.now();
        let der_hash = mamori_crypto::sha256(cert_der);
        if let Some(rec) = self.identities.get(&der_hash) {
            if rec.not_after > now {
                return Ok(rec);
            }
        }
        let since = self.identities.generation();
        let parsed = self
            .pki
            .device_ca
            .verify_issued(cert_der, now)
            .map_err(|e| {
                tracing::warn!(reason = %mamori_domain::log_safe(&e.to_string()), "device certificate refused");
                CoreError::Unauthorized
            })?;
        let Some(record) = self
            .ports
            .device
            .certificate(&parsed.fingerprint_sha256_hex)
            .await?
        else {
            tracing::warn!(
                fingerprint = %parsed.fingerprint_sha256_hex,
                "device certificate chains to our CA but was never recorded"
            );
            return Err(CoreError::Unauthorized);
        };
        if record.revoked_at.is_some() {
            tracing::warn!(fingerprint = %record.fingerprint, "revoked device certificate used");
            return Err(CoreError::Unauthorized);
        }
        if record.device.is_some() {
            self.identities.put(der_hash, record.clone(), since);
        }
        Ok(record)
    }

    /// A device identity changed (revoked, or bound anew): this server's
    /// cache forgets it at once, and every other server on the database is
    /// told. The change is already stored; a failed announcement is
    /// logged, and the other servers' entries expire within the cache's
    /// TTL.
    pub(crate) async fn identity_changed(&self, change: IdentityChange) {
        self.identities.forget(&change);
        if let Err(e) = self.ports.device.announce_identity_change(&change).await {
            tracing::error!(error = %e, "a device identity change could not be announced to the other servers");
        }
    }

    /// Checks that the certificate may speak for `claimed`. An unbound
    /// certificate may only Authenticate (which binds it).
    pub fn authorize_device(
        cert: &DeviceCertificate,
        claimed: &DeviceKey,
        authenticating: bool,
    ) -> CoreResult<()> {
        match &cert.device {
            Some(bound) if bound == claimed => Ok(()),
            None if authenticating => Ok(()),
            Some(bound) => {
                tracing::warn!(
                    fingerprint = %cert.fingerprint, bound = %bound, claimed = %claimed,
                    "forged device identity: certificate belongs to another enrollment"
                );
                Err(CoreError::Forbidden(
                    "certificate does not belong to this device".into(),
                ))
            }
            None => {
                tracing::warn!(
                    fingerprint = %cert.fingerprint, claimed = %claimed,
                    "certificate used before Authenticate bound it"
                );
                Err(CoreError::Forbidden("device is not enrolled".into()))
            }
        }
    }
}

/// The certificate a request presents: the `Mdm-Signature` signer's
/// (verified over `body`, or only named while the body has not arrived),
/// else the TLS client certificate.
fn presented_certificate(ev: Evidence<'_>, body: Option<&[u8]>) -> CoreResult<Vec<u8>> {
    match (ev.mdm_signature, ev.tls_peer) {
        (Some(sig), _) => signer_of(sig, body),
        (None, Some(peer)) => Ok(peer.to_vec()),
        (None, None) => {
            tracing::warn!("device request without a certificate or Mdm-Signature");
            Err(CoreError::Unauthorized)
        }
    }
}

/// The signer's certificate from an `Mdm-Signature` header: verified over
/// `body`, or (None: the body has not arrived) only named.
fn signer_of(header: &str, body: Option<&[u8]>) -> CoreResult<Vec<u8>> {
    if header.len() > MAX_SIGNATURE_LEN {
        return Err(CoreError::BadRequest(
            "Mdm-Signature header too large".into(),
        ));
    }
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| {
            tracing::warn!("Mdm-Signature is not base64");
            CoreError::BadRequest("Mdm-Signature is not valid base64".into())
        })?;
    let signer = match body {
        Some(body) => {
            mamori_protocol::cms::verify_signed_data(&der, Some(body)).map(|v| v.signer_cert_der)
        }
        None => mamori_protocol::cms::signer_certificate(&der),
    };
    signer.map_err(|e| {
        tracing::warn!(reason = %mamori_domain::log_safe(&e.to_string()), "Mdm-Signature does not verify");
        CoreError::Unauthorized
    })
}
