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
    /// Manage admin API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
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
enum TokenCmd {
    /// Create a token; the token is printed once, as the last line.
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// Who or what uses the token
        #[arg(long)]
        name: String,
        /// Role: viewer, helpdesk, device_admin, security_officer, owner
        #[arg(long, default_value = "owner")]
        role: String,
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
        Command::Token(cmd) => {
            init_logging(false);
            token(cmd).await
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
            let bytes = s
                .create_enrollment_profile(&req)
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
            let topic = s
                .set_push_certificate(&cert_pem, &key_pem)
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
        "Create the first API token with:\n  mamori token create --data-dir {} --name NAME",
        config.data_dir.display()
    );
    tokio::signal::ctrl_c().await.ok();
    tracing::info!("shutting down");
    running.shutdown();
    Ok(())
}

/// Services over the data directory for CLI commands (no listeners).
async fn offline_services(
    data_dir: &std::path::Path,
    public_url: Option<String>,
) -> anyhow::Result<mamori_core::Services> {
    let config = Config::resolve(&ServeArgs {
        data_dir: Some(data_dir.to_path_buf()),
        public_url: public_url.clone(),
        ..ServeArgs::default()
    })?;
    let url = public_url.unwrap_or_else(|| "https://localhost:8443".into());
    let pusher = std::sync::Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new())?);
    let (s, _) = app::build_services(&config, &url, pusher, false).await?;
    Ok(s)
}

async fn token(cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create {
            dir,
            name,
            role,
            ttl_days,
        } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let (t, secret) = s
                .create_token(&name, &role, ttl_days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "Created API token {} ({}, role {}), expires {}.",
                t.id, t.name, t.role, t.expires_at
            );
            println!("It is shown only now; store it in a secret manager:");
            println!("{secret}");
        }
        TokenCmd::List { dir } => {
            let store = app::open_store(&dir.data_dir).await?;
            use mamori_core::ports::TokenStore;
            for t in store
                .list_tokens()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}\texpires {}",
                    t.id, t.name, t.role, state, t.expires_at
                );
            }
        }
        TokenCmd::Revoke { dir, id } => {
            let s = offline_services(&dir.data_dir, None).await?;
            s.revoke_token(&id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
