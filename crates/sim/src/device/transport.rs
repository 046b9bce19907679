//! The raw escape hatches and the HTTP transport of [`SimDevice`].

use base64::Engine as _;
use mamori_crypto::DigestAlg;
use mamori_protocol::cms::{oids as cms_oids, sign_detached};

use super::{Endpoint, Identity, RawResponse, SimDevice, CHECKIN_CONTENT_TYPE};
use crate::command::to_xml;
use crate::error::{Result, SimError};
use crate::hardware::DeviceKind;
use crate::tls::build_client;

impl SimDevice {
    // ----- raw escape hatches ----------------------------------------------

    /// PUTs `body` verbatim to the check-in URL, authenticated per `identity`
    /// (`None`: the device's mode).
    pub async fn checkin_raw(
        &mut self,
        body: Vec<u8>,
        identity: Option<Identity>,
    ) -> Result<RawResponse> {
        let identity = identity.unwrap_or_else(|| self.identity());
        self.send(Endpoint::Checkin, body, identity, "raw check-in")
            .await
    }

    /// PUTs `dict` (as XML plist) to the server URL with the device's
    /// identity mode.
    pub async fn connect_raw(&mut self, dict: plist::Dictionary) -> Result<RawResponse> {
        let identity = self.identity();
        self.send(Endpoint::Connect, to_xml(dict)?, identity, "raw connect")
            .await
    }

    /// PUTs `body` verbatim to the server URL, authenticated per `identity`
    /// (`None`: the device's mode).
    pub async fn connect_raw_bytes(
        &mut self,
        body: Vec<u8>,
        identity: Option<Identity>,
    ) -> Result<RawResponse> {
        let identity = identity.unwrap_or_else(|| self.identity());
        self.send(Endpoint::Connect, body, identity, "raw connect")
            .await
    }

    /// The `Mdm-Signature` header value for `body`: base64 of a detached CMS
    /// SignedData made with the current credentials.
    pub fn mdm_signature(&self, body: &[u8], digest: DigestAlg) -> Result<String> {
        let creds = self.credentials.as_ref().ok_or(SimError::NotEnrolled)?;
        let cms = sign_detached(
            body,
            cms_oids::DATA,
            &creds.cert_der,
            &creds.key,
            digest,
            &[],
            &[],
        )?;
        Ok(base64::engine::general_purpose::STANDARD.encode(cms))
    }

    // ----- transport -------------------------------------------------------

    pub(super) fn ensure_alive(&self) -> Result<()> {
        if self.erased {
            Err(SimError::Erased)
        } else {
            Ok(())
        }
    }

    pub(super) fn client(&mut self, mtls: bool) -> Result<reqwest::Client> {
        let ua = self.options.user_agent.clone().unwrap_or_else(|| {
            match self.info.kind {
                DeviceKind::IPhone => "MDM/1.0",
                DeviceKind::Mac => "MDM-OSX/1.0 mdmclient/1.0",
            }
            .to_owned()
        });
        let slot = if mtls {
            &mut self.mtls_client
        } else {
            &mut self.anon_client
        };
        if let Some(c) = slot {
            return Ok(c.clone());
        }
        let creds = if mtls {
            Some(self.credentials.as_ref().ok_or(SimError::NotEnrolled)?)
        } else {
            None
        };
        let sessions = if mtls {
            std::sync::Arc::clone(&self.mtls_sessions)
        } else {
            std::sync::Arc::clone(&self.anon_sessions)
        };
        let client = build_client(
            &self.tls_roots,
            creds,
            self.options.timeout,
            &ua,
            self.options.tls_resumption.then_some(sessions),
        )?;
        *slot = Some(client.clone());
        Ok(client)
    }

    pub(super) async fn send(
        &mut self,
        endpoint: Endpoint,
        body: Vec<u8>,
        identity: Identity,
        op: &'static str,
    ) -> Result<RawResponse> {
        self.ensure_alive()?;
        let profile = self.profile.as_ref().ok_or(SimError::NotEnrolled)?;
        let (url, content_type) = match endpoint {
            Endpoint::Checkin => (
                profile.effective_checkin_url().to_owned(),
                Some(CHECKIN_CONTENT_TYPE.to_owned()),
            ),
            Endpoint::Connect => (
                profile.server_url.clone(),
                self.options.connect_content_type.clone(),
            ),
        };
        let signature = match identity {
            Identity::MdmSignature { digest } => Some(self.mdm_signature(&body, digest)?),
            Identity::Mtls | Identity::Anonymous => None,
        };
        let http = self.client(identity == Identity::Mtls)?;
        let mut req = http.put(&url).body(body);
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(sig) = signature {
            req = req.header("Mdm-Signature", sig);
        }
        let resp = req.send().await.map_err(SimError::transport(op))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .bytes()
            .await
            .map_err(SimError::transport(op))?
            .to_vec();
        Ok(RawResponse {
            status,
            content_type,
            body,
        })
    }
}
