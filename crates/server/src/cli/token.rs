//! `mamori token`: admin API tokens (create, list, revoke).

use super::{
    cli_context, fmt_time, offline_config, offline_services, require_installation, DataDir,
};
use clap::Subcommand;
use mamori::app;

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
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

/// Runs one `mamori token` command.
pub async fn run(cmd: TokenCmd) -> anyhow::Result<()> {
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
            let owner = s
                .admin_named(&mamori::operator::host_operator(), &admin)
                .await
                .map_err(err)?;
            let req = mamori_core::admin::tokens::TokenRequest {
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
        TokenCmd::List { dir } => list(dir).await?,
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

/// `mamori token list`: every token, its owner and state.
async fn list(dir: DataDir) -> anyhow::Result<()> {
    let config = offline_config(&dir.data_dir, None)?;
    require_installation(&config)?;
    let db = app::Db::open(&config).await?;
    let store = db.store();
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
    Ok(())
}
