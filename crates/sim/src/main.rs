//! `mamori-sim`: enroll simulated devices in an MDM server and answer their
//! command queues, for manual trials.
//!
//! ```text
//! mamori-sim enroll --profile enroll.mobileconfig --ca ca.pem --count 3 --state-dir ./devs
//! mamori-sim run-queue --state-dir ./devs
//! mamori-sim renew --state-dir ./devs
//! mamori-sim check-out --state-dir ./devs
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::{Parser, Subcommand, ValueEnum};
use mamori_crypto::RsaPrivateKey;
use mamori_sim::{
    ContentEncryptionAlg, Credentials, DeviceInfo, DeviceKind, DigestAlg, Identity, ScepMethod,
    SimDevice, SimOptions,
};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(name = "mamori-sim", about = "Apple device simulator for Mamori")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enroll N new devices (SCEP, Authenticate, TokenUpdate).
    Enroll(EnrollArgs),
    /// Connect with every saved device and answer its queued commands.
    RunQueue(StateArgs),
    /// Renew the identity certificate of every saved device (SCEP RenewalReq).
    Renew(StateArgs),
    /// Send CheckOut for every saved device.
    CheckOut(StateArgs),
}

#[derive(Parser)]
struct EnrollArgs {
    /// Enrollment profile (.mobileconfig, signed or not).
    #[arg(long)]
    profile: PathBuf,
    /// TLS CA certificate (PEM or DER); default: the profile's root payload.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Device kind.
    #[arg(long, value_enum, default_value_t = Kind::Iphone)]
    kind: Kind,
    /// Authenticate with the TLS client certificate instead of Mdm-Signature.
    #[arg(long, conflicts_with = "signature")]
    mtls: bool,
    /// Sign every message (Mdm-Signature) with this digest.
    #[arg(long, value_enum)]
    signature: Option<Digest>,
    /// Number of devices to enroll.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Send PKIOperation with GET instead of POST.
    #[arg(long)]
    scep_get: bool,
    /// SCEP content encryption.
    #[arg(long, value_enum, default_value_t = Cipher::Aes128)]
    cipher: Cipher,
    /// SCEP signature digest.
    #[arg(long, value_enum, default_value_t = Digest::Sha256)]
    scep_digest: Digest,
    /// Answer the command queue right after enrolling.
    #[arg(long)]
    run_queue: bool,
    /// Save the enrolled devices here (for `run-queue` / `check-out`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

#[derive(Parser)]
struct StateArgs {
    /// Directory written by `enroll --state-dir`.
    #[arg(long)]
    state_dir: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Iphone,
    Mac,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
enum Digest {
    Sha1,
    Sha256,
}

impl From<Digest> for DigestAlg {
    fn from(d: Digest) -> Self {
        match d {
            Digest::Sha1 => DigestAlg::Sha1,
            Digest::Sha256 => DigestAlg::Sha256,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Cipher {
    Des,
    #[value(name = "3des")]
    Des3,
    Aes128,
    Aes256,
}

/// What `enroll --state-dir` saves per device.
#[derive(Serialize, Deserialize)]
struct Saved {
    info: DeviceInfo,
    profile_b64: String,
    ca_b64: Option<String>,
    cert_b64: String,
    key_pem: String,
    /// `None`: Mdm-Signature/mTLS per profile; `Some(d)`: forced signature.
    signature: Option<Digest>,
    mtls: bool,
    push_token_hex: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match Cli::parse().command {
        Cmd::Enroll(args) => enroll(args).await,
        Cmd::RunQueue(args) => {
            for (path, mut dev) in load_all(&args.state_dir)? {
                run_queue(&mut dev)
                    .await
                    .with_context(|| format!("{}", path.display()))?;
            }
            Ok(())
        }
        Cmd::Renew(args) => {
            for (path, mut dev) in load_all(&args.state_dir)? {
                dev.renew()
                    .await
                    .with_context(|| format!("{}", path.display()))?;
                update_credentials(&path, &dev)?;
                let fp = dev.credentials().map(|c| c.fingerprint_sha256_hex());
                println!(
                    "{}: renewed, cert-sha256={}",
                    dev.udid(),
                    fp.unwrap_or_default()
                );
            }
            Ok(())
        }
        Cmd::CheckOut(args) => {
            for (path, mut dev) in load_all(&args.state_dir)? {
                dev.check_out()
                    .await
                    .with_context(|| format!("{}", path.display()))?;
                println!("{}: CheckOut sent", dev.udid());
            }
            Ok(())
        }
    }
}

fn identity_of(mtls: bool, signature: Option<Digest>) -> Option<Identity> {
    match (mtls, signature) {
        (true, _) => Some(Identity::Mtls),
        (false, Some(d)) => Some(Identity::MdmSignature { digest: d.into() }),
        (false, None) => None,
    }
}

async fn enroll(args: EnrollArgs) -> anyhow::Result<()> {
    let profile = std::fs::read(&args.profile)
        .with_context(|| format!("reading {}", args.profile.display()))?;
    let ca = match &args.ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let options = SimOptions {
        identity: identity_of(args.mtls, args.signature),
        scep_method: if args.scep_get {
            ScepMethod::Get
        } else {
            ScepMethod::Post
        },
        content_alg: match args.cipher {
            Cipher::Des => ContentEncryptionAlg::DesCbc,
            Cipher::Des3 => ContentEncryptionAlg::DesEde3Cbc,
            Cipher::Aes128 => ContentEncryptionAlg::Aes128Cbc,
            Cipher::Aes256 => ContentEncryptionAlg::Aes256Cbc,
        },
        scep_digest: args.scep_digest.into(),
        ..SimOptions::default()
    };
    let kind = match args.kind {
        Kind::Iphone => DeviceKind::IPhone,
        Kind::Mac => DeviceKind::Mac,
    };
    if let Some(dir) = &args.state_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for _ in 0..args.count {
        let mut dev = SimDevice::new(kind, options.clone());
        dev.enroll(&profile, ca.as_deref())
            .await
            .with_context(|| format!("enrolling {}", dev.udid()))?;
        let fp = dev
            .credentials()
            .map(|c| c.fingerprint_sha256_hex())
            .unwrap_or_default();
        println!(
            "enrolled {} UDID={} serial={} identity={:?} cert-sha256={fp}",
            dev.info().product_name,
            dev.udid(),
            dev.serial_number(),
            dev.identity(),
        );
        if let Some(dir) = &args.state_dir {
            save(dir, &dev, &profile, ca.as_deref(), &args)?;
        }
        if args.run_queue {
            run_queue(&mut dev).await?;
        }
    }
    Ok(())
}

async fn run_queue(dev: &mut SimDevice) -> anyhow::Result<()> {
    let done = dev.run_queue().await?;
    if done.is_empty() {
        println!("{}: no commands", dev.udid());
    }
    for e in done {
        println!(
            "{}: {} {} -> {}",
            dev.udid(),
            e.request_type,
            e.command_uuid,
            e.status
        );
    }
    Ok(())
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(s: &str) -> anyhow::Result<Vec<u8>> {
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

fn save(
    dir: &Path,
    dev: &SimDevice,
    profile: &[u8],
    ca: Option<&[u8]>,
    args: &EnrollArgs,
) -> anyhow::Result<()> {
    let Some(creds) = dev.credentials() else {
        bail!("device {} has no credentials", dev.udid());
    };
    let saved = Saved {
        info: dev.info().clone(),
        profile_b64: b64(profile),
        ca_b64: ca.map(b64),
        cert_b64: b64(&creds.cert_der),
        key_pem: creds.key.to_pkcs8_pem().to_string(),
        signature: args.signature,
        mtls: args.mtls,
        push_token_hex: hex::encode(dev.push_token()),
    };
    let path = dir.join(format!("{}.json", dev.udid()));
    std::fs::write(&path, serde_json::to_vec_pretty(&saved)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn update_credentials(path: &Path, dev: &SimDevice) -> anyhow::Result<()> {
    let mut saved: Saved = serde_json::from_slice(&std::fs::read(path)?)?;
    let Some(creds) = dev.credentials() else {
        bail!("device {} has no credentials", dev.udid());
    };
    saved.cert_b64 = b64(&creds.cert_der);
    saved.key_pem = creds.key.to_pkcs8_pem().to_string();
    std::fs::write(path, serde_json::to_vec_pretty(&saved)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn load_all(dir: &Path) -> anyhow::Result<Vec<(PathBuf, SimDevice)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let dev = load(&path).with_context(|| format!("loading {}", path.display()))?;
        out.push((path, dev));
    }
    if out.is_empty() {
        bail!("no saved devices in {}", dir.display());
    }
    Ok(out)
}

fn load(path: &Path) -> anyhow::Result<SimDevice> {
    let saved: Saved = serde_json::from_slice(&std::fs::read(path)?)?;
    let options = SimOptions {
        identity: identity_of(saved.mtls, saved.signature),
        ..SimOptions::default()
    };
    let mut dev = SimDevice::with_info(saved.info, options);
    let ca = saved.ca_b64.as_deref().map(unb64).transpose()?;
    dev.load_profile(&unb64(&saved.profile_b64)?, ca.as_deref())?;
    dev.set_credentials(Credentials {
        cert_der: unb64(&saved.cert_b64)?,
        key: RsaPrivateKey::from_pkcs8_pem(&saved.key_pem)?,
    });
    dev.state_mut().push_token = hex::decode(&saved.push_token_hex)?;
    Ok(dev)
}
