//! [`SimDevice`]: one simulated iPhone or Mac talking to an MDM server.

use std::time::Duration;

use mamori_crypto::{DigestAlg, RsaPrivateKey};
use mamori_protocol::cms::ContentEncryptionAlg;

use crate::behaviour::{builtin_response, DeviceState, InstalledApp, InstalledProfile};
use crate::checkin::{self, PushCredentials};
use crate::command::{idle_dict, response_dict, to_xml, Command, CommandStatus, Response};
use crate::error::{Result, SimError};
use crate::hardware::{DeviceInfo, DeviceKind};
use crate::profile::DeviceProfile;
use crate::scep::{self, ScepMethod, ScepParams};
use crate::tls::{parse_ca_certs, Credentials};

mod transport;

/// `Content-Type` of check-in requests.
pub const CHECKIN_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm-checkin";
/// Default `Content-Type` of connect requests.
pub const CONNECT_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm";

/// How the device proves its identity on check-in and connect requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Every body is signed (detached CMS with the identity certificate) and
    /// sent base64 in the `Mdm-Signature` header; no TLS client certificate.
    MdmSignature {
        /// Digest of the CMS signature. `Sha1` fails: `mamori-crypto` offers
        /// no SHA-1 signing.
        digest: DigestAlg,
    },
    /// The identity certificate is presented as TLS client certificate; no
    /// header.
    Mtls,
    /// Neither (for attack tests: what an unauthenticated client sends).
    Anonymous,
}

/// Simulator knobs. `Default` gives: identity from the profile's
/// `SignMessage`, SCEP via POST with AES-128 and SHA-256, connect with
/// `Content-Type: application/x-apple-aspen-mdm`, 30 s timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// Identity mode; `None`: `MdmSignature { Sha256 }` when the profile says
    /// `SignMessage`, else `Mtls`.
    pub identity: Option<Identity>,
    /// How PKIOperation is sent.
    pub scep_method: ScepMethod,
    /// Content encryption of the SCEP request envelope.
    pub content_alg: ContentEncryptionAlg,
    /// Digest of the SCEP request signature.
    pub scep_digest: DigestAlg,
    /// `Content-Type` of connect requests (`None`: header omitted).
    pub connect_content_type: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// `run_queue` gives up after this many commands in one session.
    pub max_commands: usize,
    /// `User-Agent` (`None`: `MDM/1.0` on iPhone, `MDM-OSX/1.0` on Mac).
    pub user_agent: Option<String>,
    /// Resume TLS sessions across connections (session tickets), as real
    /// devices do. Default true.
    pub tls_resumption: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            identity: None,
            scep_method: ScepMethod::Post,
            content_alg: ContentEncryptionAlg::Aes128Cbc,
            scep_digest: DigestAlg::Sha256,
            connect_content_type: Some(CONNECT_CONTENT_TYPE.to_owned()),
            timeout: Duration::from_secs(30),
            max_commands: 1000,
            user_agent: None,
            tls_resumption: true,
        }
    }
}

/// A raw HTTP answer (for attack tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Body.
    pub body: Vec<u8>,
}

/// One command handled by [`SimDevice::run_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// `RequestType`.
    pub request_type: String,
    /// `CommandUUID`.
    pub command_uuid: String,
    /// The status the device answered with.
    pub status: CommandStatus,
}

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Checkin,
    Connect,
}

/// A simulated Apple device. It knows only what a device knows: its own
/// hardware identity, the enrollment profile, the TLS CA and its SCEP-issued
/// credentials.
#[derive(Debug)]
pub struct SimDevice {
    info: DeviceInfo,
    options: SimOptions,
    state: DeviceState,
    profile: Option<DeviceProfile>,
    tls_roots: Vec<Vec<u8>>,
    credentials: Option<Credentials>,
    claimed_udid: Option<String>,
    push_magic: String,
    unlock_token: Option<Vec<u8>>,
    scep_caps: Vec<String>,
    anon_client: Option<reqwest::Client>,
    mtls_client: Option<reqwest::Client>,
    /// TLS session caches that outlive connections, as a real device's do
    /// (separate for connections with and without the client certificate).
    anon_sessions: TlsSessions,
    mtls_sessions: TlsSessions,
    erased: bool,
}

/// A device's TLS session cache (for resumption with session tickets).
pub(crate) type TlsSessions = std::sync::Arc<rustls::client::ClientSessionMemoryCache>;

fn new_sessions() -> TlsSessions {
    std::sync::Arc::new(rustls::client::ClientSessionMemoryCache::new(16))
}

impl SimDevice {
    /// A new, unenrolled device of `kind` with a random identity.
    pub fn new(kind: DeviceKind, options: SimOptions) -> Self {
        Self::with_info(DeviceInfo::random(kind), options)
    }

    /// A new, unenrolled device with the given hardware identity.
    pub fn with_info(info: DeviceInfo, options: SimOptions) -> Self {
        let unlock_token = info.is_ios().then(|| mamori_crypto::random_bytes(64));
        let state = DeviceState {
            apps: InstalledApp::defaults_for(&info),
            push_token: mamori_crypto::random_bytes(32),
            unlock_token: unlock_token.clone(),
            location: (35.6812, 139.7671),
            ..DeviceState::default()
        };
        Self {
            info,
            options,
            state,
            profile: None,
            tls_roots: Vec::new(),
            credentials: None,
            claimed_udid: None,
            push_magic: uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase(),
            unlock_token,
            scep_caps: Vec::new(),
            anon_client: None,
            mtls_client: None,
            anon_sessions: new_sessions(),
            mtls_sessions: new_sessions(),
            erased: false,
        }
    }

    // ----- accessors -------------------------------------------------------

    /// Installs an OS update: the device reports `version` from now on.
    pub fn set_os_version(&mut self, version: &str) {
        self.info.os_version = version.to_owned();
    }

    /// The hardware identity.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device's real UDID (see [`Self::claim_udid`] for what it sends).
    pub fn udid(&self) -> &str {
        &self.info.udid
    }

    /// The UDID put into check-in and connect messages.
    pub fn sent_udid(&self) -> &str {
        self.claimed_udid.as_deref().unwrap_or(&self.info.udid)
    }

    /// The serial number.
    pub fn serial_number(&self) -> &str {
        &self.info.serial_number
    }

    /// The options.
    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    /// The enrollment profile, once loaded.
    pub fn profile(&self) -> Option<&DeviceProfile> {
        self.profile.as_ref()
    }

    /// The identity mode in effect (after a profile is loaded, the
    /// profile-derived default applies when `SimOptions::identity` is `None`).
    pub fn identity(&self) -> Identity {
        match (self.options.identity, &self.profile) {
            (Some(i), _) => i,
            (None, Some(p)) if p.sign_message => Identity::MdmSignature {
                digest: DigestAlg::Sha256,
            },
            _ => Identity::Mtls,
        }
    }

    /// Overrides the identity mode for all further requests.
    pub fn set_identity(&mut self, identity: Identity) {
        self.options.identity = Some(identity);
    }

    /// The current identity certificate and key (`None` before enrollment).
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials.clone()
    }

    /// Replaces the identity credentials (e.g. with another device's, for
    /// impersonation tests). Used for signing and as TLS client certificate.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = Some(credentials);
        self.mtls_client = None;
        self.mtls_sessions = new_sessions();
    }

    /// Makes the device send `udid` instead of its own UDID (`None`: stop
    /// lying).
    pub fn claim_udid(&mut self, udid: Option<String>) {
        self.claimed_udid = udid;
    }

    /// The APNs token sent in `TokenUpdate`.
    pub fn push_token(&self) -> &[u8] {
        &self.state.push_token
    }

    /// The `PushMagic` sent in `TokenUpdate`.
    pub fn push_magic(&self) -> &str {
        &self.push_magic
    }

    /// Capabilities from the last SCEP GetCACaps.
    pub fn scep_caps(&self) -> &[String] {
        &self.scep_caps
    }

    /// Device-side state (installed profiles, apps, lock...).
    pub fn state(&self) -> &DeviceState {
        &self.state
    }

    /// Mutable device-side state (e.g. to pre-install apps).
    pub fn state_mut(&mut self) -> &mut DeviceState {
        &mut self.state
    }

    /// Answer the next `n` commands with `NotNow`.
    pub fn set_not_now(&mut self, n: usize) {
        self.state.not_now_remaining = n;
    }

    /// Whether a `DeviceLock` was acknowledged.
    pub fn is_locked(&self) -> bool {
        self.state.locked
    }

    /// Whether an `EraseDevice` was acknowledged (the device no longer talks).
    pub fn is_erased(&self) -> bool {
        self.erased
    }

    // ----- enrollment -----------------------------------------------------

    /// Full enrollment: [`Self::load_profile`], [`Self::scep_enroll`],
    /// [`Self::authenticate`] and [`Self::token_update`].
    ///
    /// `tls_ca` (PEM or DER) overrides the profile's root payload as the only
    /// TLS trust anchor.
    pub async fn enroll(&mut self, profile_bytes: &[u8], tls_ca: Option<&[u8]>) -> Result<()> {
        self.load_profile(profile_bytes, tls_ca)?;
        self.scep_enroll().await?;
        self.authenticate().await?;
        self.token_update().await
    }

    /// Parses the profile and sets up TLS trust, without network traffic.
    pub fn load_profile(&mut self, profile_bytes: &[u8], tls_ca: Option<&[u8]>) -> Result<()> {
        self.ensure_alive()?;
        let profile = DeviceProfile::parse(profile_bytes)?;
        let roots = match tls_ca {
            Some(ca) => parse_ca_certs(ca)?,
            None => profile.root_certs.clone(),
        };
        let needs_tls = [
            profile.scep_url.as_str(),
            profile.server_url.as_str(),
            profile.effective_checkin_url(),
        ]
        .iter()
        .any(|u| u.starts_with("https://"));
        if roots.is_empty() && needs_tls {
            return Err(SimError::NoTlsCa);
        }
        if let Some(enrollment) = InstalledProfile::from_dict(profile.raw.clone(), false) {
            self.state
                .profiles
                .retain(|p| p.identifier != enrollment.identifier);
            self.state.profiles.insert(0, enrollment);
        }
        self.tls_roots = roots;
        self.profile = Some(profile);
        self.anon_client = None;
        self.mtls_client = None;
        Ok(())
    }

    fn scep_params(&self) -> Result<(ScepParams<'_>, String)> {
        let p = self.profile.as_ref().ok_or(SimError::NotEnrolled)?;
        let cn = p
            .subject_cn()
            .map(str::to_owned)
            .unwrap_or_else(|| self.info.udid.clone());
        let params = ScepParams {
            url: &p.scep_url,
            ca_name: p.scep_name.as_deref(),
            method: self.options.scep_method,
            content_alg: self.options.content_alg,
            digest: self.options.scep_digest,
        };
        Ok((params, cn))
    }

    /// SCEP enrollment (PKCSReq with the profile's challenge); keeps the
    /// issued certificate and key.
    pub async fn scep_enroll(&mut self) -> Result<()> {
        self.scep_enroll_inner(None).await
    }

    /// [`Self::scep_enroll`] with a key pair the caller supplies instead of
    /// a new one: for load generation, where generating an RSA-2048 key per
    /// device would cost the simulator far more CPU than the server spends
    /// on the enrollment. The server's work is the same; real devices never
    /// share keys.
    pub async fn scep_enroll_with_key(&mut self, key: &RsaPrivateKey) -> Result<()> {
        self.scep_enroll_inner(Some(key)).await
    }

    async fn scep_enroll_inner(&mut self, key: Option<&RsaPrivateKey>) -> Result<()> {
        self.ensure_alive()?;
        let http = self.client(false)?;
        let (params, cn) = self.scep_params()?;
        let challenge = self.profile.as_ref().and_then(|p| p.scep_challenge.clone());
        let result = scep::enroll(&http, &params, &cn, challenge.as_deref(), None, key).await?;
        self.scep_caps = result.caps;
        self.set_credentials(result.credentials);
        Ok(())
    }

    /// SCEP renewal: RenewalReq signed with the current identity, new key,
    /// no challenge; adopts the new certificate.
    pub async fn renew(&mut self) -> Result<()> {
        self.ensure_alive()?;
        let current = self.credentials.clone().ok_or(SimError::NotEnrolled)?;
        let http = self.client(false)?;
        let (params, cn) = self.scep_params()?;
        let result = scep::enroll(&http, &params, &cn, None, Some(&current), None).await?;
        self.scep_caps = result.caps;
        self.set_credentials(result.credentials);
        Ok(())
    }

    fn topic(&self) -> Result<String> {
        Ok(self
            .profile
            .as_ref()
            .ok_or(SimError::NotEnrolled)?
            .topic
            .clone())
    }

    /// Sends the `Authenticate` check-in message.
    pub async fn authenticate(&mut self) -> Result<()> {
        let dict = checkin::authenticate(&self.info, &self.topic()?, self.sent_udid());
        self.checkin(dict, "Authenticate").await
    }

    /// Sends the `TokenUpdate` check-in message.
    pub async fn token_update(&mut self) -> Result<()> {
        let push = PushCredentials {
            token: &self.state.push_token,
            push_magic: &self.push_magic,
            unlock_token: self.unlock_token.as_deref(),
        };
        let dict = checkin::token_update(&self.topic()?, self.sent_udid(), &push);
        self.checkin(dict, "TokenUpdate").await
    }

    /// Sends the `CheckOut` check-in message.
    pub async fn check_out(&mut self) -> Result<()> {
        let dict = checkin::check_out(&self.topic()?, self.sent_udid());
        self.checkin(dict, "CheckOut").await
    }

    async fn checkin(&mut self, dict: plist::Dictionary, op: &'static str) -> Result<()> {
        let identity = self.identity();
        let resp = self
            .send(Endpoint::Checkin, to_xml(dict)?, identity, op)
            .await?;
        if resp.status != 200 {
            return Err(SimError::http(op, resp.status, &resp.body));
        }
        Ok(())
    }

    // ----- command channel -------------------------------------------------

    /// Sends `{UDID, Status: Idle}`; returns the server's command, or `None`
    /// on an empty 200 answer.
    pub async fn connect_idle(&mut self) -> Result<Option<Command>> {
        let dict = idle_dict(self.sent_udid());
        self.connect(dict).await
    }

    /// Sends `response` to `command`; returns the next command, if any.
    ///
    /// Acknowledging `EraseDevice` wipes the device (later calls fail with
    /// [`SimError::Erased`]); acknowledging `RemoveProfile` of the enrollment
    /// profile unenrolls it (sending `CheckOut` if `CheckOutWhenRemoved`).
    pub async fn respond(
        &mut self,
        command: &Command,
        response: Response,
    ) -> Result<Option<Command>> {
        let acked = matches!(response, Response::Acknowledged(_));
        let dict = response_dict(self.sent_udid(), &command.command_uuid, &response);
        let next = self.connect(dict).await?;
        if acked && command.request_type == "EraseDevice" {
            self.wipe();
            return Ok(None);
        }
        if acked && self.removes_enrollment(command) {
            self.unenroll().await?;
            return Ok(None);
        }
        Ok(next)
    }

    fn removes_enrollment(&self, command: &Command) -> bool {
        command.request_type == "RemoveProfile"
            && self.profile.as_ref().is_some_and(|p| {
                command.get("Identifier").and_then(plist::Value::as_string) == Some(&p.identifier)
            })
    }

    async fn unenroll(&mut self) -> Result<()> {
        if self
            .profile
            .as_ref()
            .is_some_and(|p| p.check_out_when_removed)
        {
            // Like a real device, it unenrolls whatever the server answers
            // (the server may already have retired its identity).
            let _ = self.check_out().await;
        }
        self.credentials = None;
        self.mtls_client = None;
        self.profile = None;
        Ok(())
    }

    fn wipe(&mut self) {
        self.erased = true;
        self.credentials = None;
        self.profile = None;
        self.anon_client = None;
        self.mtls_client = None;
        self.state = DeviceState::default();
    }

    /// The simulator's built-in answer to `command` (updates device state).
    pub fn builtin_response(&mut self, command: &Command) -> Response {
        builtin_response(&self.info, &mut self.state, command)
    }

    /// Connects and answers every command with the built-in behaviour until
    /// the server sends an empty answer (or the device is erased).
    pub async fn run_queue(&mut self) -> Result<Vec<QueueEntry>> {
        let mut handled = Vec::new();
        let mut next = self.connect_idle().await?;
        while let Some(command) = next {
            if handled.len() >= self.options.max_commands {
                return Err(SimError::TooManyCommands(self.options.max_commands));
            }
            let response = self.builtin_response(&command);
            handled.push(QueueEntry {
                request_type: command.request_type.clone(),
                command_uuid: command.command_uuid.clone(),
                status: response.status(),
            });
            next = self.respond(&command, response).await?;
        }
        Ok(handled)
    }

    async fn connect(&mut self, dict: plist::Dictionary) -> Result<Option<Command>> {
        const OP: &str = "connect";
        let identity = self.identity();
        let resp = self
            .send(Endpoint::Connect, to_xml(dict)?, identity, OP)
            .await?;
        if resp.status != 200 {
            return Err(SimError::http(OP, resp.status, &resp.body));
        }
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        Command::parse(&resp.body).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn device_and_its_futures_are_send() {
        let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
        is_send(&dev);
        is_send(&dev.enroll(b"", None));
        is_send(&dev.run_queue());
        is_send(&dev.renew());
        assert_eq!(dev.identity(), Identity::Mtls);
        assert!(dev.credentials().is_none());
        assert!(matches!(
            dev.mdm_signature(b"x", DigestAlg::Sha256),
            Err(SimError::NotEnrolled)
        ));
    }
}
