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

/// `device-ca=HEX scep-ra=HEX audit-key=HEX`: SHA-256 of the certificates
/// and of the audit key's public key.
pub(crate) fn installation_fingerprints(pki: &Pki) -> String {
    format!(
        "device-ca={} scep-ra={} audit-key={}",
        mamori_crypto::sha256_hex(&pki.device_ca.cert_der),
        mamori_crypto::sha256_hex(&pki.ra_cert),
        mamori_crypto::sha256_hex(&pki.audit_key.public_key_spki_der()),
    )
}
