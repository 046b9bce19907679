//! `mamori push-cert`: the APNs MDM push certificate.

use super::{cli_context, offline_services, DataDir};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PushCertCmd {
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

/// Runs one `mamori push-cert` command.
pub async fn run(cmd: PushCertCmd) -> anyhow::Result<()> {
    let PushCertCmd::Install { dir, cert, key } = cmd;
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
