//! `mamori`: the server and its administration commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use mamori::app;
use mamori::config::{self, Config, ServeArgs};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mamori",
    version,
    about = "Mamori: an Apple MDM server that cannot become the breach"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (device listener and admin listener).
    Serve(Box<ServeArgs>),
    /// Manage administrator accounts.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Manage admin API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The people directory (personal fields are stored only encrypted).
    #[command(subcommand)]
    People(PeopleCmd),
    /// Encrypted backups of the database (never holding data keys).
    #[command(subcommand)]
    Backup(BackupCmd),
    /// The keys that protect personal data.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Create an enrollment profile (.mobileconfig).
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Install the APNs MDM push certificate.
    #[command(subcommand)]
    PushCert(PushCertCmd),
}

#[derive(Debug, clap::Args)]
struct DataDir {
    /// Data directory of the server
    #[arg(long, env = "MAMORI_DATA_DIR", default_value = "mamori-data")]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum AdminCmd {
    /// Create an account; its one-time password is printed once, as the last
    /// line. It must be changed, and a second factor enrolled, at first login.
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// Login name (a-z, 0-9, '.', '_', '-')
        #[arg(long)]
        name: String,
        /// Role: viewer, helpdesk, device_admin, security_officer, owner
        #[arg(long)]
        role: String,
    },
    /// List accounts: role, factors, last login and source, tokens, state.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Disable an account: its sessions and tokens stop working at once.
    Disable {
        #[command(flatten)]
        dir: DataDir,
        /// Login name
        name: String,
        /// Why (kept in the audit log)
        #[arg(long, default_value = "disabled from the command line")]
        reason: String,
    },
    /// Re-enable a disabled account (old sessions and tokens stay revoked).
    Enable {
        #[command(flatten)]
        dir: DataDir,
        /// Login name
        name: String,
    },
    /// Reset an account that lost its second factor: new one-time password
    /// (printed last), factors removed, sessions and tokens revoked.
    Reset {
        #[command(flatten)]
        dir: DataDir,
        /// Login name
        name: String,
    },
    /// Link an account to the person it belongs to, so that offboarding
    /// the person closes the account.
    Link {
        #[command(flatten)]
        dir: DataDir,
        /// Login name
        name: String,
        /// The person's ID
        #[arg(long)]
        person: String,
    },
    /// Unlock an account locked by failed logins.
    Unlock {
        #[command(flatten)]
        dir: DataDir,
        /// Login name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a token for an account; the token is printed once, as the
    /// last line.
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// The account that owns the token (it dies with the account)
        #[arg(long)]
        admin: String,
        /// Who or what uses the token
        #[arg(long)]
        name: String,
        /// Role, at most the account's [default: the account's role]
        #[arg(long)]
        role: Option<String>,
        /// Narrower scope: permission names, comma-separated
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime in days [default: 90]
        #[arg(long)]
        ttl_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Revoke a token by its id.
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        /// Token id (the part after `mamori_`)
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PeopleCmd {
    /// Import people from a CSV file (header: name,user_id,email and
    /// optionally department,phone,status). All or nothing: any bad line
    /// refuses the file and every bad line is listed.
    Import {
        #[command(flatten)]
        dir: DataDir,
        /// The CSV file
        #[arg(long)]
        file: PathBuf,
    },
    /// Add one person.
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// Full name
        #[arg(long)]
        name: String,
        /// Company user ID
        #[arg(long)]
        user_id: String,
        /// Company e-mail
        #[arg(long)]
        email: String,
        /// Department
        #[arg(long)]
        department: Option<String>,
        /// Phone
        #[arg(long)]
        phone: Option<String>,
    },
    /// List people, pseudonymously (ID, status, devices).
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Offboard a person in one step: departed, their administrator
    /// accounts disabled (sessions and tokens revoked), their devices
    /// taken out of management. Prints what was revoked.
    Offboard {
        #[command(flatten)]
        dir: DataDir,
        /// The person's ID
        id: String,
        /// Erase the devices (after a second administrator approves)
        /// instead of removing management [default: the server's policy]
        #[arg(long)]
        erase: bool,
    },
    /// Purge departed people: their data key is destroyed (every copy of
    /// their data becomes unreadable), their rows deleted, a tombstone kept.
    Purge {
        #[command(flatten)]
        dir: DataDir,
        /// Everyone past the retention period (what the hourly job does)
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        due: bool,
        /// Retention period in days for --due [default: the server's, 30]
        #[arg(long, requires = "due")]
        retention_days: Option<u32>,
        /// One departed person, now
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
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

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Rotate the people key (people.key) without downtime: every data key
    /// is re-wrapped under a new key; the old one moves to a retired-keys
    /// file (backups made before the rotation need it).
    Rotate {
        #[command(flatten)]
        dir: DataDir,
        /// Seconds to wait for running servers to load the new key
        #[arg(long, default_value_t = 6)]
        settle_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
enum BackupCmd {
    /// Write an encrypted, consistent backup (safe while the server runs).
    /// It holds no person's data key: restored, personal data opens only
    /// with the keys the live server still has.
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file to write (must not exist)
        file: PathBuf,
    },
    /// Check a backup (--verify: restored into a scratch location that is
    /// removed: integrity, schema, which people are still readable), or
    /// restore it into a new data directory (--into DIR) with the live
    /// installation's keys; people purged since the backup stay gone.
    Restore {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file
        file: PathBuf,
        /// Check only
        #[arg(long, conflicts_with = "into", required_unless_present = "into")]
        verify: bool,
        /// Restore into this new (absent or empty) data directory
        #[arg(long)]
        into: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ProfileCmd {
    /// Write a new enrollment profile to a file.
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// URL devices are told to use
        #[arg(long, env = "MAMORI_PUBLIC_URL")]
        public_url: String,
        /// Certificates its challenge may obtain
        #[arg(long, default_value_t = 1)]
        max_uses: u32,
        /// Lifetime of its challenge in hours
        #[arg(long, default_value_t = 24)]
        ttl_hours: u32,
        /// Do not sign the profile
        #[arg(long)]
        unsigned: bool,
        /// Output file
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PushCertCmd {
    /// Install a push certificate and its key (PEM files).
    Install {
        #[command(flatten)]
        dir: DataDir,
        /// Certificate (PEM)
        #[arg(long)]
        cert: PathBuf,
        /// Private key (PEM)
        #[arg(long)]
        key: PathBuf,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Admin(cmd) => {
            init_logging(false);
            admin(cmd).await
        }
        Command::Token(cmd) => {
            init_logging(false);
            token(cmd).await
        }
        Command::People(cmd) => {
            init_logging(false);
            people(cmd).await
        }
        Command::Backup(cmd) => {
            init_logging(false);
            backup(cmd).await
        }
        Command::Audit(AuditCmd::Verify {
            bundle: Some(bundle),
            public_key,
            ..
        }) => {
            init_logging(false);
            verify_bundle_file(&bundle, public_key.as_deref())
        }
        Command::Audit(AuditCmd::Verify { dir, .. }) => {
            init_logging(false);
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
        Command::Audit(AuditCmd::BreachScope {
            dir,
            from,
            to,
            actor,
            token,
            network,
        }) => {
            init_logging(false);
            let s = offline_services(&dir.data_dir, None).await?;
            let parse = |v: Option<String>,
                         what: &str|
             -> anyhow::Result<Option<time::OffsetDateTime>> {
                v.map(|t| {
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                        .with_context(|| format!("--{what} must be an RFC 3339 time"))
                })
                .transpose()
            };
            let to = parse(to, "to")?.unwrap_or_else(|| s.clock.now() + time::Duration::seconds(1));
            let from = parse(from, "from")?.unwrap_or_else(|| to - time::Duration::days(30));
            let network = network
                .map(|n| {
                    mamori_domain::breach::Network::parse(&n).with_context(|| {
                        format!("--network {n:?} is not an address or CIDR network")
                    })
                })
                .transpose()?;
            let filter = mamori_domain::breach::ScopeFilter {
                actor,
                token,
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
        Command::Audit(AuditCmd::Checkpoint { dir }) => {
            init_logging(false);
            let s = offline_services(&dir.data_dir, None).await?;
            match s
                .audit_checkpoint()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Some(seq) => println!("checkpoint signed at record {seq}"),
                None => println!("nothing new since the last checkpoint"),
            }
            Ok(())
        }
        Command::Keys(KeysCmd::Rotate { dir, settle_secs }) => {
            init_logging(false);
            let (s, ring) = offline_services_with_ring(&dir.data_dir, None).await?;
            anyhow::ensure!(
                ring.source == mamori::keys::KeySource::File,
                "the people key comes from MAMORI_PEOPLE_KEY: rotate it there (new key first, then the old one, comma-separated), re-run with both, then drop the old one"
            );
            let r = mamori::keys::rotate_people_key(
                &s,
                &ring.ring,
                &dir.data_dir,
                std::time::Duration::from_secs(settle_secs),
            )
            .await?;
            println!(
                "people key rotated: current {}, retired {}; {} data keys re-wrapped",
                r.current,
                r.retired.join(","),
                r.rewrapped
            );
            println!(
                "The retired key is in {} (mode 0600): backups made before now need it. Archive it offline, or delete it to make those backups unreadable.",
                r.retired_file.display()
            );
            Ok(())
        }
        Command::Profile(ProfileCmd::Create {
            dir,
            public_url,
            max_uses,
            ttl_hours,
            unsigned,
            out,
        }) => {
            init_logging(false);
            let s = offline_services(&dir.data_dir, Some(public_url)).await?;
            let req = mamori_core::enroll::ProfileRequest {
                signed: Some(!unsigned),
                max_uses: Some(max_uses),
                ttl_hours: Some(ttl_hours),
            };
            let by = mamori::operator::host_actor()
                .authorize()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let bytes = s
                .create_enrollment_profile(&by, &cli_context(), &req)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::write(&out, bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("enrollment profile written to {}", out.display());
            Ok(())
        }
        Command::PushCert(PushCertCmd::Install { dir, cert, key }) => {
            init_logging(false);
            let s = offline_services(&dir.data_dir, None).await?;
            let cert_pem = std::fs::read_to_string(&cert)?;
            let key_pem = zeroize::Zeroizing::new(std::fs::read_to_string(&key)?);
            let by = mamori::operator::host_actor()
                .authorize()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let topic = s
                .set_push_certificate(&by, &cli_context(), &cert_pem, &key_pem)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("push certificate installed; topic {topic}; restart the server to use it");
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args)?;
    init_logging(config.log_format == "json");
    config::warn_unknown_env();
    let running = app::start(&config).await?;
    // Listening for SIGTERM from here on: a service manager's stop (or
    // `kill`) drains like Ctrl-C instead of killing the process.
    let terminated = termination()?;
    println!("Mamori is running.");
    println!(
        "  device listener: https://{}  (SCEP, check-in, connect)",
        running.device_addr
    );
    println!(
        "  admin listener:  https://{}  (REST API)",
        running.admin_addr
    );
    println!("  public URL:      {}", running.public_url);
    println!(
        "  device CA SHA-256 fingerprint: {}",
        running.ca_fingerprint
    );
    if let Some(p) = &running.tls_ca_path {
        println!("  TLS CA (self-generated): {}", p.display());
    }
    println!(
        "Create the first owner with:\n  mamori admin create --data-dir {} --name NAME --role owner",
        config.data_dir.display()
    );
    terminated.await;
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    running.stop(SHUTDOWN_BOUND).await;
    tracing::info!("stopped");
    Ok(())
}

/// Longest a stopping server waits for requests in flight before it closes
/// the database anyway (each connection has 10 s of it).
const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(20);

/// Resolves at Ctrl-C (SIGINT) or SIGTERM.
fn termination() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Administration commands work on an existing installation only: `serve`
/// is the one command that creates one, so that a mistyped `--data-dir`
/// fails instead of showing (or filling) a new, empty database.
fn require_installation(data_dir: &std::path::Path) -> anyhow::Result<()> {
    if !app::db_path(data_dir).is_file() {
        anyhow::bail!(
            "no Mamori installation at {} (there is no mamori.db): check --data-dir / \
             MAMORI_DATA_DIR; only `mamori serve` creates a new installation",
            data_dir.display()
        );
    }
    Ok(())
}

/// Services and the people key ring over the data directory.
async fn offline_services_with_ring(
    data_dir: &std::path::Path,
    public_url: Option<String>,
) -> anyhow::Result<(mamori_core::Services, app::Keyring)> {
    require_installation(data_dir)?;
    // The same layers as `serve`: environment, then the data directory's
    // mamori.toml, then defaults; the command's own flags on top.
    let env = ServeArgs::from_env()?;
    let config = Config::resolve(&ServeArgs {
        data_dir: Some(data_dir.to_path_buf()),
        public_url: public_url.or_else(|| env.public_url.clone()),
        ..env
    })?;
    let url = config
        .public_url
        .clone()
        .unwrap_or_else(|| "https://localhost:8443".into());
    let pusher = std::sync::Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new())?);
    let admin_url = config
        .admin_url
        .clone()
        .unwrap_or_else(|| format!("https://localhost:{}", config.admin_addr.port()));
    let (s, _, ring) = app::build_services(&config, &url, &admin_url, pusher, false).await?;
    Ok((s, ring))
}

/// Services over the data directory for CLI commands (no listeners).
async fn offline_services(
    data_dir: &std::path::Path,
    public_url: Option<String>,
) -> anyhow::Result<mamori_core::Services> {
    Ok(offline_services_with_ring(data_dir, public_url).await?.0)
}

fn cli_context() -> mamori_core::auth::ClientContext {
    mamori_core::auth::ClientContext {
        source: "local".into(),
        user_agent: None,
        request_id: None,
    }
}

fn fmt_time(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".into())
}

async fn admin(cmd: AdminCmd) -> anyhow::Result<()> {
    let actor = mamori::operator::host_actor();
    let ctx = cli_context();
    let err = |e: mamori_core::CoreError| anyhow::anyhow!("{e}");
    let by = actor
        .clone()
        .authorize::<mamori_core::auth::permit::AccountsManage>()
        .map_err(err)?;
    match cmd {
        AdminCmd::Create { dir, name, role } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let role = mamori_domain::Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}; roles: viewer, helpdesk, device_admin, security_officer, owner")
            })?;
            let mamori_core::auth::Created::Now(created) = s
                .create_admin(&by, &ctx, &name, role.as_str())
                .await
                .map_err(err)?
            else {
                anyhow::bail!("the command line creates accounts directly");
            };
            let factor = if s.config.auth.requires_webauthn(role) {
                "a passkey or security key (WebAuthn)"
            } else {
                "a second factor (TOTP app or passkey)"
            };
            println!(
                "Created administrator {} (role {}). At first login the password must be changed and {factor} enrolled.",
                created.admin.name, created.admin.role
            );
            println!("One-time password (shown only now):");
            println!("{}", created.one_time_password);
        }
        AdminCmd::List { dir } => {
            let s = offline_services(&dir.data_dir, None).await?;
            println!("NAME\tROLE\tFACTORS\tLAST LOGIN\tLAST SOURCE\tTOKENS\tSTATE");
            for a in s.admin_inventory(&by).await.map_err(err)? {
                let state = if a.admin.disabled_at.is_some() {
                    "disabled"
                } else if a.admin.locked_at.is_some() {
                    "locked"
                } else if a.stale {
                    "stale"
                } else {
                    "active"
                };
                let factors = if a.factors.is_empty() {
                    "none".to_owned()
                } else {
                    a.factors.join(",")
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    a.admin.name,
                    a.admin.role,
                    factors,
                    fmt_time(a.admin.last_login_at),
                    a.admin.last_login_source.as_deref().unwrap_or("-"),
                    a.token_count,
                    state
                );
            }
        }
        AdminCmd::Disable { dir, name, reason } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let (sessions, tokens) = s
                .disable_admin(&by, &ctx, &name, &reason)
                .await
                .map_err(err)?;
            println!("administrator {name} disabled; {sessions} session(s) and {tokens} token(s) revoked");
        }
        AdminCmd::Enable { dir, name } => {
            let s = offline_services(&dir.data_dir, None).await?;
            s.enable_admin(&by, &ctx, &name).await.map_err(err)?;
            println!("administrator {name} enabled");
        }
        AdminCmd::Reset { dir, name } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let mamori_core::auth::Reset::Now(created, (sessions, tokens)) =
                s.reset_admin(&by, &ctx, &name).await.map_err(err)?
            else {
                anyhow::bail!("the command line resets accounts directly");
            };
            println!(
                "Administrator {name} reset: factors removed, {sessions} session(s) and {tokens} token(s) revoked. At the next login the password must be changed and a factor enrolled."
            );
            println!("One-time password (shown only now):");
            println!("{}", created.one_time_password);
        }
        AdminCmd::Link { dir, name, person } => {
            let s = offline_services(&dir.data_dir, None).await?;
            s.link_admin_person(&by, &ctx, &name, Some(&person))
                .await
                .map_err(err)?;
            println!("administrator {name} linked to person {person}");
        }
        AdminCmd::Unlock { dir, name } => {
            let s = offline_services(&dir.data_dir, None).await?;
            s.unlock_admin(&by, &ctx, &name).await.map_err(err)?;
            println!("administrator {name} unlocked");
        }
    }
    Ok(())
}

async fn backup(cmd: BackupCmd) -> anyhow::Result<()> {
    match cmd {
        BackupCmd::Create { dir, file } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let store = app::open_store(&dir.data_dir).await?;
            let c = mamori::backup::create(&s, &store, &dir.data_dir, &file).await?;
            println!(
                "backup written to {} ({} bytes; database snapshot {} bytes, no data keys; file key wrapped by master key {})",
                file.display(),
                c.file_bytes,
                c.snapshot_bytes,
                c.key_id
            );
        }
        BackupCmd::Restore {
            dir,
            file,
            into: Some(into),
            ..
        } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let r = mamori::backup::restore_into(&s, &dir.data_dir, &file, &into).await?;
            println!(
                "backup {} restored into {}: {} people readable, {} purged since (removed), {} key and certificate files copied",
                file.display(),
                r.into.display(),
                r.people,
                r.removed,
                r.files_copied
            );
            println!(
                "Start it with: mamori serve --data-dir {}",
                r.into.display()
            );
        }
        BackupCmd::Restore { dir, file, .. } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let v = mamori::backup::verify(&s, &dir.data_dir, &file).await?;
            println!(
                "backup {} verified: integrity ok, schema {}",
                file.display(),
                v.schema_version
            );
            println!(
                "  devices {}, administrators {}, audit records {}",
                v.devices, v.admins, v.audit_records
            );
            println!(
                "  people {}: readable with today's keys {}, purged since (unreadable) {}, unknown (unreadable) {}, key mismatch {}",
                v.people, v.readable, v.purged, v.no_key, v.mismatch
            );
        }
    }
    Ok(())
}

async fn people(cmd: PeopleCmd) -> anyhow::Result<()> {
    let actor = mamori::operator::host_actor();
    let ctx = cli_context();
    let by = actor
        .clone()
        .authorize::<mamori_core::auth::permit::PeopleWrite>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match cmd {
        PeopleCmd::Import { dir, file } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match s.import_people_csv(&by, &ctx, &data).await {
                Ok(n) => println!("imported {n} people"),
                Err(mamori_core::CoreError::Rows(rows)) => {
                    for (line, error) in &rows {
                        eprintln!("{}:{line}: {error}", file.display());
                    }
                    anyhow::bail!("{} lines refused; nothing was imported", rows.len());
                }
                Err(e) => anyhow::bail!("{e}"),
            }
        }
        PeopleCmd::Add {
            dir,
            name,
            user_id,
            email,
            department,
            phone,
        } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let input = mamori_core::people::PersonInput {
                name: Some(name),
                user_id: Some(user_id),
                email: Some(email),
                department,
                phone,
                status: None,
            };
            let p = s
                .create_person(&by, &ctx, &input)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("added person {}", p.id);
        }
        PeopleCmd::Offboard { dir, id, erase } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let action = erase.then_some(mamori_core::offboard::OffboardAction::Erase);
            let report = s
                .offboard_person(&by, &ctx, &id, action)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        PeopleCmd::Purge {
            dir,
            due,
            retention_days,
            id,
        } => {
            let mut s = offline_services(&dir.data_dir, None).await?;
            if let Some(days) = retention_days {
                let mut cfg = (*s.config).clone();
                cfg.people_retention_days = days;
                s.config = std::sync::Arc::new(cfg);
            }
            if due {
                let n = s
                    .purge_due_people(&actor, &ctx)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("purged {n} people");
            } else if let Some(id) = id {
                s.purge_person_now(&by, &ctx, &id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("purged person {id}");
            }
        }
        PeopleCmd::List { dir } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let mut after: Option<String> = None;
            println!("ID\tSTATUS\tDEPARTED\tDEVICES");
            loop {
                let page = s
                    .list_people(
                        &actor
                            .clone()
                            .authorize()
                            .map_err(|e| anyhow::anyhow!("{e}"))?,
                        after.as_deref(),
                        1000,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                for p in &page {
                    let devices: Vec<&str> = p
                        .devices
                        .iter()
                        .map(mamori_domain::DeviceKey::as_str)
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        p.id,
                        p.status,
                        fmt_time(p.departed_at),
                        devices.join(",")
                    );
                }
                if page.len() < 1000 {
                    break;
                }
                after = page.last().map(|p| p.id.to_string());
            }
        }
    }
    Ok(())
}

async fn token(cmd: TokenCmd) -> anyhow::Result<()> {
    let actor = mamori::operator::host_actor();
    let ctx = cli_context();
    let err = |e: mamori_core::CoreError| anyhow::anyhow!("{e}");
    match cmd {
        TokenCmd::Create {
            dir,
            admin,
            name,
            role,
            scope,
            ttl_days,
        } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let owner = s.admin_named(&admin).await.map_err(err)?;
            let req = mamori_core::tokens::TokenRequest {
                name,
                role,
                scope: scope.map(|l| l.split(',').map(|p| p.trim().to_owned()).collect()),
                ttl_days,
            };
            let (t, secret) = s
                .create_token(&actor.clone().authorize().map_err(err)?, &ctx, &owner, &req)
                .await
                .map_err(err)?;
            println!(
                "Created API token {} ({}, owner {}, role {}), expires {}.",
                t.id, t.name, owner.name, t.role, t.expires_at
            );
            println!("It is shown only now; store it in a secret manager:");
            println!("{secret}");
        }
        TokenCmd::List { dir } => {
            require_installation(&dir.data_dir)?;
            let store = app::open_store(&dir.data_dir).await?;
            use mamori_ports::{AdminStore, TokenStore};
            let admins = store
                .list_admins()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for t in store
                .list_tokens(None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let owner = admins
                    .iter()
                    .find(|a| a.id == t.admin_id)
                    .map_or("?", |a| a.name.as_str());
                println!(
                    "{}\t{}\towner {}\t{}\t{}\texpires {}\tlast used {}",
                    t.id,
                    t.name,
                    owner,
                    t.role,
                    state,
                    t.expires_at,
                    fmt_time(t.last_used_at)
                );
            }
        }
        TokenCmd::Revoke { dir, id } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let id = mamori_domain::TokenId::parse(&id).map_err(|e| anyhow::anyhow!("{e}"))?;
            s.revoke_token(&actor.clone().authorize().map_err(err)?, &ctx, id.as_str())
                .await
                .map_err(err)?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}

/// `mamori audit verify --bundle`: offline, from the file alone.
fn verify_bundle_file(
    bundle: &std::path::Path,
    public_key: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
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
    match mamori_core::evidence::verify_bundle(&bytes, trusted.as_deref()) {
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
