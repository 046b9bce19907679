//! The server's key material, loaded (or generated) by the binary and handed
//! to the services. Nothing here is ever serialised to a client except
//! certificates.

use mamori_crypto::certs::CertAuthority;
use mamori_crypto::RsaPrivateKey;
use mamori_crypto::SecretBox;

/// Keys and certificates the services use.
pub struct Pki {
    /// The CA that signs device identity certificates.
    pub device_ca: CertAuthority,
    /// The SCEP registration authority certificate (DER): the only key that
    /// decrypts attacker-supplied SCEP envelopes.
    pub ra_cert: Vec<u8>,
    /// The RA private key.
    pub ra_key: RsaPrivateKey,
    /// Certificate that signs enrollment profiles (the TLS server certificate).
    pub signer_cert: Vec<u8>,
    /// Its private key.
    pub signer_key: RsaPrivateKey,
    /// Chain certificates to include with signed profiles (the TLS CA).
    pub signer_chain: Vec<Vec<u8>>,
    /// When the TLS certificate is self-generated: its CA, shipped in
    /// enrollment profiles as a root-certificate payload.
    pub tls_root: Option<Vec<u8>>,
    /// Seals secrets stored in the database (UnlockTokens, push key).
    pub secret_box: SecretBox,
    /// Signs audit-log checkpoints (ECDSA P-256).
    pub audit_key: mamori_crypto::EcPrivateKey,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki(..)")
    }
}

/// Where the database records which keys its installation uses.
pub const INSTALLATION_KEYS: &str = "installation-keys";

impl crate::Services {
    /// Refuses to run beside servers with other keys. Every server on one
    /// database must hold the same device CA (it vouches for every device
    /// identity), SCEP RA (a device may fetch the RA certificate from one
    /// server and send its request to another) and audit key (it signs
    /// the one log's checkpoints). The first server records their
    /// fingerprints; a server whose data directory holds others (a new
    /// one, set up by hand instead of from a copy) is refused at start,
    /// before it serves a device it would turn away or signs a checkpoint
    /// nobody could verify. Called at start, after the master key check.
    pub async fn check_installation_keys(&self) -> crate::CoreResult<()> {
        use mamori_ports::SecretStore;
        let ours = installation_fingerprints(&self.pki);
        let store: &dyn SecretStore = &*self.ports.admin;
        let aad = Some(INSTALLATION_KEYS.as_bytes());
        let seal = |text: &str| {
            self.pki
                .secret_box
                .seal(text.as_bytes(), aad)
                .map_err(|e| crate::CoreError::Internal(e.into()))
        };
        store
            .put_secret_if_absent(INSTALLATION_KEYS, &seal(&ours)?, self.clock.now())
            .await?;
        let stored = store.secret(INSTALLATION_KEYS).await?.ok_or_else(|| {
            crate::CoreError::Internal("the installation's key record vanished".into())
        })?;
        let theirs = self
            .pki
            .secret_box
            .open(&stored, aad)
            .map_err(|e| crate::CoreError::Internal(e.into()))?;
        let theirs = String::from_utf8_lossy(&theirs).into_owned();
        let differ: Vec<&str> = ours
            .split(' ')
            .zip(theirs.split(' '))
            .filter(|(a, b)| a != b)
            .filter_map(|(a, _)| a.split('=').next())
            .collect();
        if differ.is_empty() && ours.split(' ').count() == theirs.split(' ').count() {
            return Ok(());
        }
        Err(crate::CoreError::Internal(
            format!(
                "this data directory's keys ({}) are not the ones the other servers on this \
             database use; copy the first server's data directory (but for its lock) to \
             this server instead of starting it on a new one",
                if differ.is_empty() {
                    "device CA, SCEP RA, audit key".to_owned()
                } else {
                    differ.join(", ")
                }
            )
            .into(),
        ))
    }
}

/// `device-ca=HEX scep-ra=HEX audit-key=HEX`: SHA-256 of the certificates
/// and of the audit key's public key.
fn installation_fingerprints(pki: &Pki) -> String {
    format!(
        "device-ca={} scep-ra={} audit-key={}",
        mamori_crypto::sha256_hex(&pki.device_ca.cert_der),
        mamori_crypto::sha256_hex(&pki.ra_cert),
        mamori_crypto::sha256_hex(&pki.audit_key.public_key_spki_der()),
    )
}
