//! The data directory's key material: created at first start with 0600
//! permissions, loaded afterwards. Private keys never leave these files except
//! into memory.

pub mod ring;
mod rotate;

pub use rotate::{prepare_people_key, rotate_people_key, Prepared, RingAt, Rotation};

use anyhow::{bail, Context};
use mamori_core::pki::Pki;
use mamori_crypto::certs::{CertAuthority, CertProfile, IssueRequest};
use mamori_crypto::{EcPrivateKey, RsaPrivateKey, SecretBox};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// TLS material for the listeners: one or more certificates for the same
/// names, in order of preference.
pub struct TlsMaterial {
    /// Each certificate: chain (leaf first, DER) and key (PKCS#8 PEM).
    pub certs: Vec<(Vec<Vec<u8>>, Zeroizing<String>)>,
}

/// Creates the directory (0700) if missing.
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        set_mode(dir, 0o700)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions on {}", p.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}

/// Writes a secret file readable by the owner only.
fn write_private(p: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(p)
        .with_context(|| format!("cannot create {}", p.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write {}", p.display()))?;
    f.sync_all()?;
    Ok(())
}

/// Refuses key files others can read.
#[cfg(unix)]
fn check_private(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p)?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {:o}); run: chmod 600 {}",
            p.display(),
            mode & 0o777,
            p.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Reads a private key file, refusing one that others can read.
fn read_key<K: LeafKey>(p: &Path) -> anyhow::Result<K> {
    check_private(p)?;
    let pem = Zeroizing::new(
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
    );
    K::from_pem(&pem).with_context(|| format!("invalid key in {}", p.display()))
}

fn read_pem_cert(p: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    let mut certs = pem_certs(&pem)?;
    if certs.is_empty() {
        bail!("no certificate in {}", p.display());
    }
    Ok(certs.remove(0))
}

/// Every CERTIFICATE block of a PEM text, as DER.
pub fn pem_certs(pem: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| {
            c.map(|c| c.as_ref().to_vec())
                .map_err(|e| anyhow::anyhow!("PEM: {e:?}"))
        })
        .collect()
}

/// PEM of one DER certificate.
pub fn cert_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Loads a CA from `name.pem`/`name.key`, generating it on first start.
fn load_or_create_ca(dir: &Path, name: &str, cn: &str) -> anyhow::Result<CertAuthority> {
    let (cert_p, key_p) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    match (cert_p.exists(), key_p.exists()) {
        (true, true) => {
            let key = read_key(&key_p)?;
            let cert_der = read_pem_cert(&cert_p)?;
            Ok(CertAuthority { cert_der, key })
        }
        (false, false) => {
            let ca = CertAuthority::generate(cn, 20)?;
            write_private(&key_p, ca.key.to_pkcs8_pem().as_bytes())?;
            std::fs::write(&cert_p, cert_pem(&ca.cert_der))?;
            tracing::info!(file = %cert_p.display(), "generated {cn}");
            Ok(ca)
        }
        _ => bail!(
            "{} and {} must both exist or both be absent",
            cert_p.display(),
            key_p.display()
        ),
    }
}

/// A private key type a leaf certificate can be issued for.
trait LeafKey: Sized {
    fn generate() -> anyhow::Result<Self>;
    fn from_pem(pem: &str) -> anyhow::Result<Self>;
    fn spki(&self) -> Vec<u8>;
    fn pem(&self) -> Zeroizing<String>;
}

impl LeafKey for RsaPrivateKey {
    fn generate() -> anyhow::Result<Self> {
        Ok(Self::generate_2048()?)
    }
    fn from_pem(pem: &str) -> anyhow::Result<Self> {
        Ok(Self::from_pkcs8_pem(pem)?)
    }
    fn spki(&self) -> Vec<u8> {
        self.public_key_spki_der()
    }
    fn pem(&self) -> Zeroizing<String> {
        self.to_pkcs8_pem()
    }
}

impl LeafKey for EcPrivateKey {
    fn generate() -> anyhow::Result<Self> {
        Ok(Self::generate_p256()?)
    }
    fn from_pem(pem: &str) -> anyhow::Result<Self> {
        Ok(Self::from_pkcs8_pem(pem)?)
    }
    fn spki(&self) -> Vec<u8> {
        self.public_key_spki_der()
    }
    fn pem(&self) -> Zeroizing<String> {
        self.to_pkcs8_pem()
    }
}

/// Loads a leaf certificate and its key from `name.pem`/`name.key`, or
/// generates a key and has `ca` issue the certificate.
fn load_or_issue<K: LeafKey>(
    dir: &Path,
    name: &str,
    ca: &CertAuthority,
    cn: &str,
    profile: CertProfile,
    years: i64,
) -> anyhow::Result<(Vec<u8>, K)> {
    let (cert_p, key_p) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    if cert_p.exists() && key_p.exists() {
        return Ok((read_pem_cert(&cert_p)?, read_key(&key_p)?));
    }
    let key = K::generate()?;
    let now = OffsetDateTime::now_utc();
    let der = ca.issue(&IssueRequest {
        subject_cn: cn.into(),
        spki_der: key.spki(),
        serial: mamori_crypto::random_serial()?,
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(365 * years),
        profile,
    })?;
    let _ = std::fs::remove_file(&key_p);
    write_private(&key_p, key.pem().as_bytes())?;
    std::fs::write(&cert_p, cert_pem(&der))?;
    Ok((der, key))
}

/// The environment variable that may carry the master key (64 hex digits)
/// instead of `master.key`.
pub const MASTER_KEY_ENV: &str = "MAMORI_MASTER_KEY";

fn parse_master(text: &str, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let raw = Zeroizing::new(
        hex::decode(text.trim()).with_context(|| format!("{what} is not 64 hex digits"))?,
    );
    anyhow::ensure!(raw.len() == 32, "{what} must hold 32 bytes (64 hex digits)");
    Ok(raw)
}

/// The master key: it seals secrets in the database and wraps every
/// person's data key. From `MAMORI_MASTER_KEY` or `master.key` (0600),
/// created at the first start. It is never created next to an existing
/// database: a lost key is reported, not silently replaced (everything
/// sealed with the old one would be unreadable).
fn load_or_create_master(dir: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let p = dir.join("master.key");
    let from_env = match std::env::var(MASTER_KEY_ENV) {
        Ok(v) if !v.trim().is_empty() => Some(parse_master(&v, MASTER_KEY_ENV)?),
        _ => None,
    };
    let from_file = if p.exists() {
        check_private(&p)?;
        let text = Zeroizing::new(std::fs::read_to_string(&p)?);
        Some(parse_master(&text, "master.key")?)
    } else {
        None
    };
    match (from_env, from_file) {
        (Some(e), Some(f)) => {
            anyhow::ensure!(
                mamori_crypto::constant_time_eq(&e, &f),
                "{MASTER_KEY_ENV} and {} hold different keys; keep only the right one",
                p.display()
            );
            Ok(e)
        }
        (Some(e), None) => Ok(e),
        (None, Some(f)) => Ok(f),
        (None, None) => {
            anyhow::ensure!(
                !dir.join("mamori.db").exists(),
                "the master key is missing ({} not found, {MASTER_KEY_ENV} not set) but the \
                 database exists: personal data and the secrets sealed in it cannot be read \
                 without it. Restore master.key from your key backup, or set {MASTER_KEY_ENV}.",
                p.display()
            );
            let key = SecretBox::generate_key()?;
            write_private(&p, hex::encode(key.as_slice()).as_bytes())?;
            Ok(Zeroizing::new(key.to_vec()))
        }
    }
}

/// The environment variable that may carry the people key ring: hex keys,
/// comma-separated, current first.
pub const PEOPLE_KEY_ENV: &str = "MAMORI_PEOPLE_KEY";
/// The people key ring file: one hex key per line, current first.
pub const PEOPLE_KEY_FILE: &str = "people.key";

/// Where the people keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `people.key` in the data directory.
    File,
    /// `MAMORI_PEOPLE_KEY`.
    Environment,
}

fn parse_ring(text: &str, what: &str, sep: char) -> anyhow::Result<Vec<Zeroizing<Vec<u8>>>> {
    let keys = text
        .split(sep)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_master(l, what))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!keys.is_empty(), "{what} holds no key");
    Ok(keys)
}

/// Reads the people key ring file (checking its permissions).
pub fn read_people_key_file(dir: &Path) -> anyhow::Result<Option<Vec<Zeroizing<Vec<u8>>>>> {
    let p = dir.join(PEOPLE_KEY_FILE);
    if !p.exists() {
        return Ok(None);
    }
    check_private(&p)?;
    let text = Zeroizing::new(std::fs::read_to_string(&p)?);
    parse_ring(&text, PEOPLE_KEY_FILE, '\n').map(Some)
}

/// The people key ring: the master keys that wrap every person's data key
/// (never stored in the database). From `MAMORI_PEOPLE_KEY` or
/// `people.key` (0600), created when neither exists and the database holds
/// no personal data yet; a missing ring next to personal data is refused.
pub fn load_people_keys(
    dir: &Path,
    holds_personal_data: bool,
) -> anyhow::Result<(Vec<Zeroizing<Vec<u8>>>, KeySource)> {
    if let Ok(v) = std::env::var(PEOPLE_KEY_ENV) {
        if !v.trim().is_empty() {
            let keys = parse_ring(&Zeroizing::new(v), PEOPLE_KEY_ENV, ',')?;
            return Ok((keys, KeySource::Environment));
        }
    }
    if let Some(keys) = read_people_key_file(dir)? {
        return Ok((keys, KeySource::File));
    }
    anyhow::ensure!(
        !holds_personal_data,
        "the people key is missing ({} not found, {PEOPLE_KEY_ENV} not set) but the database \
         holds personal data that cannot be read without it. Restore {PEOPLE_KEY_FILE} from your \
         key backup, or set {PEOPLE_KEY_ENV}.",
        dir.join(PEOPLE_KEY_FILE).display()
    );
    let key = Zeroizing::new(SecretBox::generate_key()?.to_vec());
    write_people_keys(dir, std::slice::from_ref(&key))?;
    Ok((vec![key], KeySource::File))
}

/// Writes the people key ring (current first) atomically, mode 0600.
pub fn write_people_keys(dir: &Path, keys: &[Zeroizing<Vec<u8>>]) -> anyhow::Result<()> {
    let text = Zeroizing::new(
        keys.iter()
            .map(|k| hex::encode(k.as_slice()))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    );
    let tmp = dir.join(format!("{PEOPLE_KEY_FILE}.new"));
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, dir.join(PEOPLE_KEY_FILE))
        .with_context(|| format!("cannot replace {PEOPLE_KEY_FILE}"))?;
    Ok(())
}

/// The key that signs audit checkpoints (`audit.key`, 0600) and its public
/// key (`audit-public.pem`, for verifying evidence offline).
fn load_or_create_audit_key(dir: &Path) -> anyhow::Result<EcPrivateKey> {
    let p = dir.join("audit.key");
    let key = if p.exists() {
        read_key::<EcPrivateKey>(&p)?
    } else {
        let k = EcPrivateKey::generate_p256()?;
        write_private(&p, k.to_pkcs8_pem().as_bytes())?;
        k
    };
    let public = dir.join("audit-public.pem");
    if !public.exists() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.public_key_spki_der());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        std::fs::write(&public, pem)?;
    }
    Ok(key)
}

/// Host names and addresses the generated TLS certificate must cover.
fn tls_names(public_host: &str) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = vec!["localhost".to_owned()];
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    match public_host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) if !ips.contains(&ip) => ips.push(ip),
        Ok(_) => {}
        Err(_) if public_host != "localhost" && !public_host.is_empty() => {
            dns.push(public_host.to_owned());
        }
        Err(_) => {}
    }
    (dns, ips)
}

/// Loads or creates every key the server needs.
pub fn bootstrap(
    dir: &Path,
    public_host: Option<&str>,
    tls: Option<&(PathBuf, PathBuf)>,
) -> anyhow::Result<(Pki, TlsMaterial)> {
    let master = load_or_create_master(dir)?;
    let device_ca = load_or_create_ca(dir, "device-ca", "Mamori Device CA")?;
    let (ra_cert, ra_key) = load_or_issue(
        dir,
        "scep-ra",
        &device_ca,
        "Mamori SCEP RA",
        CertProfile::ScepRa,
        10,
    )?;
    let tls = match tls {
        Some((cert_p, key_p)) => operator_tls(cert_p, key_p)?,
        None => self_generated_tls(dir, public_host)?,
    };
    let pki = Pki {
        device_ca,
        ra_cert,
        ra_key,
        signer_cert: tls.signer_cert,
        signer_key: tls.signer_key,
        signer_chain: tls.signer_chain,
        tls_root: tls.root,
        secret_box: SecretBox::from_slice(&master)?,
        audit_key: load_or_create_audit_key(dir)?,
    };
    Ok((pki, tls.material))
}

/// The TLS side of the bootstrap.
struct Tls {
    material: TlsMaterial,
    /// The self-generated TLS CA (shipped in profiles), if any.
    root: Option<Vec<u8>>,
    /// The RSA server certificate that also signs enrollment profiles.
    signer_cert: Vec<u8>,
    signer_key: RsaPrivateKey,
    signer_chain: Vec<Vec<u8>>,
}

/// An operator-supplied certificate chain and RSA key.
fn operator_tls(cert_p: &Path, key_p: &Path) -> anyhow::Result<Tls> {
    let pem = std::fs::read_to_string(cert_p)
        .with_context(|| format!("cannot read {}", cert_p.display()))?;
    let chain = pem_certs(&pem)?;
    let Some(leaf) = chain.first().cloned() else {
        bail!("no certificate in {}", cert_p.display());
    };
    let key: RsaPrivateKey = read_key(key_p)?;
    Ok(Tls {
        material: TlsMaterial {
            certs: vec![(chain.clone(), key.to_pkcs8_pem())],
        },
        root: None,
        signer_cert: leaf,
        signer_key: key,
        signer_chain: chain[1..].to_vec(),
    })
}

/// The generated TLS CA with two server certificates for the same names: an
/// ECDSA P-256 one (cheap handshakes) and an RSA one (older clients, and the
/// signer of enrollment profiles). The server passes its public host so a
/// changed host gets new certificates; CLI commands pass None and leave TLS
/// alone.
fn self_generated_tls(dir: &Path, public_host: Option<&str>) -> anyhow::Result<Tls> {
    let tls_ca = load_or_create_ca(dir, "tls-ca", "Mamori TLS CA")?;
    let (dns, ips) = tls_names(public_host.unwrap_or("localhost"));
    let marker = dir.join("tls.hosts");
    let wanted = format!("{dns:?} {ips:?}");
    let current = std::fs::read_to_string(&marker).ok();
    if public_host.is_some() && current.as_deref() != Some(wanted.as_str()) {
        for f in ["tls.pem", "tls.key", "tls-ec.pem", "tls-ec.key"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
    let cn = dns.last().map_or("localhost", String::as_str).to_owned();
    let profile = || CertProfile::TlsServer {
        dns_names: dns.clone(),
        ip_addrs: ips.clone(),
    };
    let (leaf, key) = load_or_issue::<RsaPrivateKey>(dir, "tls", &tls_ca, &cn, profile(), 2)?;
    let (ec_leaf, ec_key) =
        load_or_issue::<EcPrivateKey>(dir, "tls-ec", &tls_ca, &cn, profile(), 2)?;
    if public_host.is_some() {
        std::fs::write(&marker, wanted)?;
    }
    let ca = tls_ca.cert_der;
    Ok(Tls {
        material: TlsMaterial {
            certs: vec![
                (vec![ec_leaf, ca.clone()], ec_key.to_pkcs8_pem()),
                (vec![leaf.clone(), ca.clone()], key.to_pkcs8_pem()),
            ],
        },
        root: Some(ca.clone()),
        signer_cert: leaf,
        signer_key: key,
        signer_chain: vec![ca],
    })
}

/// The HMAC key of webhook audit sink `name`: `audit-sink-NAME.key` (64 hex
/// digits, 0600), created at the first start; the receiver is given a copy
/// to check the `X-Mamori-Signature` header.
pub fn load_or_create_sink_secret(dir: &Path, name: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let p = dir.join(format!("audit-sink-{name}.key"));
    if p.exists() {
        check_private(&p)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?,
        );
        return parse_master(&text, &p.display().to_string());
    }
    let key = Zeroizing::new(mamori_crypto::try_random_bytes(32)?);
    write_private(&p, hex::encode(key.as_slice()).as_bytes())?;
    tracing::info!(sink = %name, file = %p.display(), "webhook signing key created; give the receiver a copy");
    Ok(key)
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}
