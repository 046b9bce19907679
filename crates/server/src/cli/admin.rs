//! `mamori admin`: administrator accounts (create, list, disable, enable,
//! reset, link to a person, unlock, reinstate).

use super::{cli_context, fmt_time, offline_services, DataDir};
use anyhow::Context;
use clap::Subcommand;
use mamori_core::access::permit::AccountsManage;
use mamori_core::access::{Authorized, ClientContext};
use mamori_core::Services;

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
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
    /// Lift the suspension detection put on an account (a bulk read, a
    /// mass command); its revoked sessions and tokens stay revoked.
    /// `mamori admin list` shows the suspended accounts and why.
    Reinstate {
        #[command(flatten)]
        dir: DataDir,
        /// Login name
        name: String,
    },
}

fn err(e: mamori_core::CoreError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Runs one `mamori admin` command.
pub async fn run(cmd: AdminCmd) -> anyhow::Result<()> {
    let actor = mamori::operator::host_actor();
    let ctx = cli_context();
    let by = actor.clone().authorize::<AccountsManage>().map_err(err)?;
    match cmd {
        AdminCmd::Create { dir, name, role } => {
            let s = offline_services(&dir.data_dir, None).await?;
            create(&s, &by, &ctx, &name, &role).await?;
        }
        AdminCmd::List { dir } => {
            let s = offline_services(&dir.data_dir, None).await?;
            list(&s, &by).await?;
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
            reset(&s, &by, &ctx, &name).await?;
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
        AdminCmd::Reinstate { dir, name } => {
            let s = offline_services(&dir.data_dir, None).await?;
            s.reinstate_admin(&by, &ctx, &name).await.map_err(err)?;
            println!("administrator {name} reinstated; sign in again to get a new session");
        }
    }
    Ok(())
}

/// `mamori admin create`: the one-time password is printed last.
async fn create(
    s: &Services,
    by: &Authorized<AccountsManage>,
    ctx: &ClientContext,
    name: &str,
    role: &str,
) -> anyhow::Result<()> {
    let role = mamori_domain::Role::parse(role).with_context(|| {
        format!(
            "unknown role {role:?}; roles: viewer, helpdesk, device_admin, security_officer, owner"
        )
    })?;
    let mamori_core::admin::Created::Now(created) = s
        .create_admin(by, ctx, name, role.as_str())
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
    println!(
        "Sign in at {}/console/ with this name and password.",
        s.config.auth.admin_url.trim_end_matches('/')
    );
    println!("One-time password (shown only now):");
    println!("{}", created.one_time_password);
    Ok(())
}

/// `mamori admin list`: one tab-separated line per account.
async fn list(s: &Services, by: &Authorized<AccountsManage>) -> anyhow::Result<()> {
    println!("NAME\tROLE\tFACTORS\tLAST LOGIN\tLAST SOURCE\tTOKENS\tSTATE");
    for a in s.admin_inventory(by).await.map_err(err)? {
        let state = if a.admin.disabled_at.is_some() {
            "disabled".to_owned()
        } else if let Some(s) = &a.admin.suspended {
            // The reason is Mamori's own text (a rule and its figures).
            format!(
                "suspended since {} ({})",
                fmt_time(Some(s.at)),
                s.reason.escape_debug()
            )
        } else if a.admin.locked_at.is_some() {
            "locked".to_owned()
        } else if a.stale {
            "stale".to_owned()
        } else {
            "active".to_owned()
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
    Ok(())
}

/// `mamori admin reset`: the new one-time password is printed last.
async fn reset(
    s: &Services,
    by: &Authorized<AccountsManage>,
    ctx: &ClientContext,
    name: &str,
) -> anyhow::Result<()> {
    let mamori_core::admin::Reset::Now(created, (sessions, tokens)) =
        s.reset_admin(by, ctx, name).await.map_err(err)?
    else {
        anyhow::bail!("the command line resets accounts directly");
    };
    println!(
        "Administrator {name} reset: factors removed, {sessions} session(s) and {tokens} token(s) revoked. At the next login the password must be changed and a factor enrolled."
    );
    println!(
        "Sign in at {}/console/ with this name and password.",
        s.config.auth.admin_url.trim_end_matches('/')
    );
    println!("One-time password (shown only now):");
    println!("{}", created.one_time_password);
    Ok(())
}
