//! `mamori people`: the people directory (import, add, list, offboard,
//! purge).

use super::{cli_context, fmt_time, offline_services, DataDir};
use anyhow::Context;
use clap::Subcommand;
use mamori_core::access::permit::PeopleWrite;
use mamori_core::access::{Actor, Authorized, ClientContext};
use mamori_core::Services;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum PeopleCmd {
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

fn err(e: mamori_core::CoreError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Runs one `mamori people` command.
pub async fn run(cmd: PeopleCmd) -> anyhow::Result<()> {
    let actor = mamori::operator::host_actor();
    let ctx = cli_context();
    let by = actor.clone().authorize::<PeopleWrite>().map_err(err)?;
    match cmd {
        PeopleCmd::Import { dir, file } => {
            let s = offline_services(&dir.data_dir, None).await?;
            import(&s, &by, &ctx, &file).await?;
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
            let p = s.create_person(&by, &ctx, &input).await.map_err(err)?;
            println!("added person {}", p.id);
        }
        PeopleCmd::Offboard { dir, id, erase } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let action = erase.then_some(mamori_core::people::offboard::OffboardAction::Erase);
            let report = s
                .offboard_person(&by, &ctx, &id, action)
                .await
                .map_err(err)?;
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
            purge(&s, &by, &ctx, due, id).await?;
        }
        PeopleCmd::List { dir } => {
            let s = offline_services(&dir.data_dir, None).await?;
            list(&s, &actor).await?;
        }
    }
    Ok(())
}

/// `mamori people import`: all or nothing; every refused line is listed
/// on stderr.
async fn import(
    s: &Services,
    by: &Authorized<PeopleWrite>,
    ctx: &ClientContext,
    file: &Path,
) -> anyhow::Result<()> {
    let data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    match s.import_people_csv(by, ctx, &data).await {
        Ok(n) => println!("imported {n} people"),
        Err(mamori_core::CoreError::Rows(rows)) => {
            for (line, error) in &rows {
                eprintln!("{}:{line}: {error}", file.display());
            }
            anyhow::bail!("{} lines refused; nothing was imported", rows.len());
        }
        Err(e) => anyhow::bail!("{e}"),
    }
    Ok(())
}

/// `mamori people purge`: everyone due (`--due`), or one person now.
async fn purge(
    s: &Services,
    by: &Authorized<PeopleWrite>,
    ctx: &ClientContext,
    due: bool,
    id: Option<String>,
) -> anyhow::Result<()> {
    if due {
        let n = s
            .purge_due_people(&mamori::operator::host_operator(), ctx)
            .await
            .map_err(err)?;
        println!("purged {n} people");
    } else if let Some(id) = id {
        s.purge_person_now(by, ctx, &id).await.map_err(err)?;
        println!("purged person {id}");
    }
    Ok(())
}

/// `mamori people list`: pseudonymous, a page of 1000 at a time.
async fn list(s: &Services, actor: &Actor) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    println!("ID\tSTATUS\tDEPARTED\tDEVICES");
    loop {
        let page = s
            .list_people(
                &actor.clone().authorize().map_err(err)?,
                after.as_deref(),
                1000,
            )
            .await
            .map_err(err)?;
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
    Ok(())
}
