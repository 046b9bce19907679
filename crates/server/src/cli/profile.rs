//! `mamori profile`: enrollment profiles (.mobileconfig).

use super::{cli_context, offline_services, DataDir};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
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

/// Runs one `mamori profile` command.
pub async fn run(cmd: ProfileCmd) -> anyhow::Result<()> {
    let ProfileCmd::Create {
        dir,
        public_url,
        max_uses,
        ttl_hours,
        unsigned,
        out,
    } = cmd;
    let s = offline_services(&dir.data_dir, Some(public_url)).await?;
    let req = mamori_core::device::enroll::ProfileRequest {
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
    std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    println!("enrollment profile written to {}", out.display());
    Ok(())
}
