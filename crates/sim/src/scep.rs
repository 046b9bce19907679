//! SCEP client (RFC 8894) as Apple devices speak it: GetCACaps, GetCACert,
//! PKIOperation with PKCSReq (enrollment) or RenewalReq (renewal).

use base64::Engine as _;
use der::Decode;
use mamori_crypto::{DigestAlg, RsaPrivateKey};
use mamori_protocol::cms::{
    certs_from_degenerate, verify_signed_data, ContentEncryptionAlg, PkiError,
};
use mamori_protocol::scep::{build_pki_request, parse_cert_rep, CertRepOutcome, MessageType};

use crate::error::{Result, SimError};
use crate::tls::Credentials;

/// How the PKIOperation request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScepMethod {
    /// `POST ?operation=PKIOperation` with the DER body
    /// (`Content-Type: application/x-pki-message`).
    #[default]
    Post,
    /// `GET ?operation=PKIOperation&message=<base64>`.
    Get,
}

/// SCEP parameters of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScepParams<'a> {
    pub url: &'a str,
    pub ca_name: Option<&'a str>,
    pub method: ScepMethod,
    pub content_alg: ContentEncryptionAlg,
    pub digest: DigestAlg,
}

/// The CA and RA certificates returned by GetCACert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaCerts {
    /// All certificates, in the order received.
    pub all: Vec<Vec<u8>>,
    /// The certificate SCEP requests are encrypted to.
    pub recipient: Vec<u8>,
}

/// What a SCEP enrollment produced.
#[derive(Debug, Clone)]
pub(crate) struct ScepResult {
    pub caps: Vec<String>,
    pub credentials: Credentials,
}

async fn get(
    http: &reqwest::Client,
    p: &ScepParams<'_>,
    operation: &str,
    op: &'static str,
) -> Result<(Option<String>, Vec<u8>)> {
    let mut query = vec![("operation", operation.to_owned())];
    if let Some(name) = p.ca_name {
        query.push(("message", name.to_owned()));
    }
    let resp = http
        .get(p.url)
        .query(&query)
        .send()
        .await
        .map_err(SimError::transport(op))?;
    read(resp, op).await
}

async fn read(resp: reqwest::Response, op: &'static str) -> Result<(Option<String>, Vec<u8>)> {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let body = resp
        .bytes()
        .await
        .map_err(SimError::transport(op))?
        .to_vec();
    if status != 200 {
        return Err(SimError::http(op, status, &body));
    }
    Ok((ctype, body))
}

/// `GetCACaps`: the capability keywords (one per line).
pub(crate) async fn get_ca_caps(http: &reqwest::Client, p: &ScepParams<'_>) -> Result<Vec<String>> {
    let (_, body) = get(http, p, "GetCACaps", "SCEP GetCACaps").await?;
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `GetCACert`: a single DER certificate (`application/x-x509-ca-cert`) or a
/// certs-only PKCS#7 (`application/x-x509-ca-ra-cert`).
pub(crate) async fn get_ca_cert(http: &reqwest::Client, p: &ScepParams<'_>) -> Result<CaCerts> {
    let (ctype, body) = get(http, p, "GetCACert", "SCEP GetCACert").await?;
    let all = match ctype.as_deref() {
        Some(t) if t.starts_with("application/x-x509-ca-ra-cert") => certs_from_degenerate(&body)?,
        Some(t) if t.starts_with("application/x-x509-ca-cert") => vec![body],
        other => {
            return Err(SimError::Scep(format!(
                "GetCACert: unexpected Content-Type {other:?}"
            )))
        }
    };
    let recipient = pick_recipient(&all)?;
    Ok(CaCerts { all, recipient })
}

/// The RA certificate: one that is not self-signed and allows key
/// encipherment; else any that allows key encipherment; else the CA.
pub(crate) fn pick_recipient(certs: &[Vec<u8>]) -> Result<Vec<u8>> {
    let mut best: Option<(u8, &Vec<u8>)> = None;
    for der in certs {
        let parsed = mamori_crypto::certs::parse_cert(der)
            .map_err(|e| SimError::Scep(format!("GetCACert: bad certificate: {e}")))?;
        let self_signed = parsed.issuer_der == parsed.subject_der;
        let score = match (self_signed, key_encipherment(der)) {
            (false, Some(true) | None) => 3,
            (true, Some(true)) => 2,
            (false, Some(false)) => 1,
            (true, _) => 0,
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, der));
        }
    }
    best.map(|(_, d)| d.clone())
        .ok_or_else(|| SimError::Scep("GetCACert returned no certificate".into()))
}

/// `Some(bit)` if the certificate has a KeyUsage extension.
fn key_encipherment(der: &[u8]) -> Option<bool> {
    use x509_cert::ext::pkix::KeyUsage;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let ext = cert
        .tbs_certificate
        .extensions?
        .into_iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_KEY_USAGE)?;
    let ku = KeyUsage::from_der(ext.extn_value.as_bytes()).ok()?;
    Some(ku.key_encipherment())
}

/// `PKIOperation`: sends `message`, returns the CertRep DER.
async fn pki_operation(
    http: &reqwest::Client,
    p: &ScepParams<'_>,
    message: Vec<u8>,
) -> Result<Vec<u8>> {
    const OP: &str = "SCEP PKIOperation";
    let req = match p.method {
        ScepMethod::Post => http
            .post(p.url)
            .query(&[("operation", "PKIOperation")])
            .header(reqwest::header::CONTENT_TYPE, "application/x-pki-message")
            .body(message),
        ScepMethod::Get => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&message);
            http.get(p.url)
                .query(&[("operation", "PKIOperation"), ("message", b64.as_str())])
        }
    };
    let resp = req.send().await.map_err(SimError::transport(OP))?;
    let (ctype, body) = read(resp, OP).await?;
    if !ctype.is_some_and(|t| t.starts_with("application/x-pki-message")) {
        return Err(SimError::Scep(
            "PKIOperation: unexpected Content-Type".into(),
        ));
    }
    Ok(body)
}

/// Full enrollment (`signer` = `None`: PKCSReq with a throw-away self-signed
/// signer and `challenge`) or renewal (`signer` = current identity:
/// RenewalReq, no challenge). Generates a new RSA-2048 key unless `key`
/// gives one (load generation: see [`crate::SimDevice::scep_enroll_with_key`]).
pub(crate) async fn enroll(
    http: &reqwest::Client,
    p: &ScepParams<'_>,
    cn: &str,
    challenge: Option<&str>,
    signer: Option<&Credentials>,
    key: Option<&RsaPrivateKey>,
) -> Result<ScepResult> {
    let caps = get_ca_caps(http, p).await?;
    let ca = get_ca_cert(http, p).await?;
    let (key, shared) = match key {
        Some(k) => (k.clone(), true),
        None => (RsaPrivateKey::generate_2048()?, false),
    };
    let csr = mamori_protocol::csr::build_csr(&key, cn, challenge)?;
    let (message_type, signer_cert, signer_key) = match signer {
        Some(c) => (MessageType::RenewalReq, c.cert_der.clone(), c.key.clone()),
        None => (
            MessageType::PkcsReq,
            mamori_crypto::certs::self_signed_cert(&key, cn)?,
            key.clone(),
        ),
    };
    // A device's transaction ID is a hash of its public key; devices sharing
    // a key (load generation) add their name so that each stays its own.
    let mut digest_input = key.public_key_spki_der();
    if shared {
        digest_input.extend_from_slice(cn.as_bytes());
    }
    let transaction_id = mamori_crypto::sha256_hex(&digest_input).to_uppercase();
    let message = build_pki_request(
        message_type,
        &csr,
        &signer_cert,
        &signer_key,
        &ca.recipient,
        p.content_alg,
        p.digest,
        &transaction_id,
    )?;
    let rep = pki_operation(http, p, message).await?;
    check_cert_rep_signer(&rep, &ca.all)?;
    match parse_cert_rep(&rep, &signer_cert, &signer_key)? {
        CertRepOutcome::Success { cert_der } => {
            let parsed = mamori_crypto::certs::parse_cert(&cert_der)?;
            if parsed.spki_der != key.public_key_spki_der() {
                return Err(SimError::Scep(
                    "issued certificate is not for our key".into(),
                ));
            }
            Ok(ScepResult {
                caps,
                credentials: Credentials { cert_der, key },
            })
        }
        CertRepOutcome::Pending => Err(SimError::ScepPending),
        CertRepOutcome::Failure { fail_info } => {
            Err(SimError::ScepFailure(format!("{fail_info:?}")))
        }
    }
}

/// A device only accepts a CertRep signed by a certificate from GetCACert.
fn check_cert_rep_signer(rep: &[u8], ca_certs: &[Vec<u8>]) -> Result<()> {
    let v = match verify_signed_data(rep, None) {
        Err(PkiError::Content(_)) => verify_signed_data(rep, Some(&[]))?,
        other => other?,
    };
    if ca_certs.contains(&v.signer_cert_der) {
        Ok(())
    } else {
        Err(SimError::Scep(
            "CertRep is not signed by the SCEP CA/RA".into(),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mamori_crypto::certs::{CertAuthority, CertProfile, IssueRequest};

    #[test]
    fn picks_the_ra_certificate() {
        let ca = CertAuthority::generate("Test CA", 1).unwrap();
        let ra_key = RsaPrivateKey::generate_2048().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let ra = ca
            .issue(&IssueRequest {
                subject_cn: "Test RA".into(),
                spki_der: ra_key.public_key_spki_der(),
                serial: mamori_crypto::random_serial().unwrap(),
                not_before: now,
                not_after: now + time::Duration::days(1),
                profile: CertProfile::ScepRa,
            })
            .unwrap();
        assert_eq!(
            pick_recipient(&[ca.cert_der.clone(), ra.clone()]).unwrap(),
            ra
        );
        assert_eq!(
            pick_recipient(&[ra.clone(), ca.cert_der.clone()]).unwrap(),
            ra
        );
        assert_eq!(
            pick_recipient(std::slice::from_ref(&ca.cert_der)).unwrap(),
            ca.cert_der
        );
        assert!(pick_recipient(&[]).is_err());
        assert!(pick_recipient(&[b"junk".to_vec()]).is_err());
    }
}
