//! `mamori audit`: the tamper-evident audit log (verify the chain or an
//! evidence bundle, sign a checkpoint, the breach-scope report).

use super::{cli_context, offline_services, DataDir};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Prove the audit chain intact (every link, every hash, every signed
    /// checkpoint), or name the first bad record. Exits 1 on a fault.
    /// With --bundle, verify an incident's evidence bundle offline instead
    /// (no data directory needed).
    Verify {
        #[command(flatten)]
        dir: DataDir,
        /// An evidence bundle (GET /api/v1/incidents/ID/evidence) to verify
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// The audit public key the bundle must be signed with
        /// (audit-public.pem from the server's data directory); without it
        /// the key in the bundle is used and its fingerprint shown
        #[arg(long, value_name = "PEM", requires = "bundle")]
        public_key: Option<PathBuf>,
    },
    /// Sign a checkpoint of the newest record now (the server does it
    /// hourly).
    Checkpoint {
        #[command(flatten)]
        dir: DataDir,
    },
    /// The breach-scope report: whose personal data was read or exported,
    /// which fields, by whom, in a window (JSON).
    BreachScope {
        #[command(flatten)]
        dir: DataDir,
        /// Window start (RFC 3339) [default: 30 days before --to]
        #[arg(long)]
        from: Option<String>,
        /// Window end (RFC 3339) [default: now]
        #[arg(long)]
        to: Option<String>,
        /// Only this actor (audit label, e.g. token:ID:name or admin:name)
        #[arg(long)]
        actor: Option<String>,
        /// Only this API token (its ID), whichever account it belongs to
        #[arg(long)]
        token: Option<String>,
        /// Only requests from this network (CIDR, e.g. 203.0.113.0/24) or address
        #[arg(long)]
        network: Option<String>,
    },
}

/// Runs one `mamori audit` command.
pub async fn run(cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Verify {
            bundle: Some(bundle),
            public_key,
            ..
        } => verify_bundle_file(&bundle, public_key.as_deref()),
        AuditCmd::Verify { dir, .. } => verify(&dir).await,
        AuditCmd::BreachScope {
            dir,
            from,
            to,
            actor,
            token,
            network,
        } => {
            let filter = ScopeArgs {
                actor,
                token,
                network,
            };
            breach_scope(&dir, from, to, filter).await
        }
        AuditCmd::Checkpoint { dir } => {
            let s = offline_services(&dir.data_dir, None).await?;
            match s
                .audit_checkpoint(&mamori::operator::host_operator())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Some(seq) => println!("checkpoint signed at record {seq}"),
                None => println!("nothing new since the last checkpoint"),
            }
            Ok(())
        }
    }
}

/// `mamori audit verify`: the whole chain; exits 1 on a fault.
async fn verify(dir: &DataDir) -> anyhow::Result<()> {
    let s = offline_services(&dir.data_dir, None).await?;
    let v = s.verify_audit().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match &v.fault {
        None => {
            println!(
                "audit log intact: {} records checked ({} written before the chain began), {} signed checkpoints verified",
                v.records, v.unchained, v.checkpoints
            );
            if let Some(up_to) = v.truncated_up_to {
                println!(
                    "records 1-{up_to} were removed by retention (signed truncation mark verified)"
                );
            }
            Ok(())
        }
        Some(f) => {
            println!("AUDIT LOG TAMPERED: {f}");
            std::process::exit(1);
        }
    }
}

/// The narrowing flags of `mamori audit breach-scope`, as given.
struct ScopeArgs {
    actor: Option<String>,
    token: Option<String>,
    network: Option<String>,
}

/// Parses `--from` / `--to` (`what`) as an RFC 3339 time.
fn parse_time(v: Option<String>, what: &str) -> anyhow::Result<Option<time::OffsetDateTime>> {
    v.map(|t| {
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("--{what} must be an RFC 3339 time"))
    })
    .transpose()
}

/// `mamori audit breach-scope`: the report as JSON on stdout.
async fn breach_scope(
    dir: &DataDir,
    from: Option<String>,
    to: Option<String>,
    args: ScopeArgs,
) -> anyhow::Result<()> {
    let s = offline_services(&dir.data_dir, None).await?;
    let to = parse_time(to, "to")?.unwrap_or_else(|| s.clock.now() + time::Duration::seconds(1));
    let from = parse_time(from, "from")?.unwrap_or_else(|| to - time::Duration::days(30));
    let network = args
        .network
        .map(|n| {
            mamori_domain::breach::Network::parse(&n)
                .with_context(|| format!("--network {n:?} is not an address or CIDR network"))
        })
        .transpose()?;
    let filter = mamori_domain::breach::ScopeFilter {
        actor: args.actor,
        token: args.token,
        network,
    };
    let report = s
        .breach_scope(
            &mamori::operator::host_actor()
                .authorize()
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            &cli_context(),
            from,
            to,
            &filter,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `mamori audit verify --bundle`: offline, from the file alone.
fn verify_bundle_file(bundle: &Path, public_key: Option<&Path>) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(bundle).with_context(|| format!("cannot read {}", bundle.display()))?;
    let trusted = match public_key {
        Some(p) => {
            let pem = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let b64: String = pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .concat();
            use base64::Engine;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .with_context(|| format!("{} is not a PEM public key", p.display()))?,
            )
        }
        None => None,
    };
    match mamori_core::audit::evidence::verify_bundle(&bytes, trusted.as_deref()) {
        Ok(r) => {
            println!(
                "evidence bundle intact: records {}-{} ({} records), {} signatures verified",
                r.first_seq, r.last_seq, r.records, r.signatures
            );
            println!("incident: {}", r.incident);
            println!(
                "scope: {} people affected, {} access records; by field: {}",
                r.scope.people_affected,
                r.scope.records,
                r.scope
                    .by_field
                    .iter()
                    .map(|(f, n)| format!("{f}={n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if trusted.is_none() {
                println!(
                    "signed by the audit key with SHA-256 fingerprint {} (compare it with your copy of audit-public.pem, or pass --public-key)",
                    r.key_fingerprint
                );
            }
            Ok(())
        }
        Err(f) => {
            println!("EVIDENCE BUNDLE INVALID: {f}");
            std::process::exit(1);
        }
    }
}
