//! `mamori migrate`: moves an installation from the embedded SQLite
//! database to PostgreSQL (`mamori::migrate`), then prints what was
//! copied and verified; exits 1 when anything differs.

use mamori::migrate::{self, Report};

/// The flags of `mamori migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The installation to move: sqlite:DATA_DIR (its data directory, which
    /// keeps the keys) or sqlite:DATA_DIR/mamori.db
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// The PostgreSQL database to move it into, postgres://USER@HOST/NAME,
    /// empty (its tables are created). Prefer the variable to the flag: a
    /// password on the command line is visible to every local user
    #[arg(
        long,
        value_name = "URL",
        env = "MAMORI_DATABASE_URL",
        hide_env_values = true
    )]
    pub to: String,
}

/// Runs `mamori migrate`.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let dir = migrate::source_dir(&args.from)?;
    let report = migrate::migrate(&dir, &args.to).await?;
    print!("{}", summary(&report));
    if !report.is_faithful() {
        std::process::exit(1);
    }
    Ok(())
}

/// What the operator reads: each table's rows, the audit chain, and what
/// to do next (or what differs).
fn summary(r: &Report) -> String {
    let mut out = format!(
        "moved {} from the embedded SQLite database to {}\n",
        r.data_dir.display(),
        r.destination
    );
    let width = r.tables.iter().map(|t| t.name.len()).max().unwrap_or(0);
    out.push_str(&format!("  {:width$}  {:>10}\n", "table", "rows"));
    for t in &r.tables {
        let verdict = if t.is_identical() {
            "identical".to_owned()
        } else {
            format!(
                "DIFFERS: {} rows on SQLite, {} copied, {} on PostgreSQL{}",
                t.source_rows,
                t.copied.rows,
                t.destination_rows,
                if t.copied == t.read_back {
                    ""
                } else {
                    ", cells differ"
                }
            )
        };
        out.push_str(&format!(
            "  {:width$}  {:>10}  {verdict}\n",
            t.name, t.destination_rows
        ));
    }
    match &r.audit.fault {
        None => out.push_str(&format!(
            "audit log intact on PostgreSQL: {} records verified ({} written before the chain \
             began), {} signed checkpoints\n",
            r.audit.records, r.audit.unchained, r.audit.checkpoints
        )),
        Some(f) => out.push_str(&format!("AUDIT LOG FAULT on PostgreSQL: {f}\n")),
    }
    if r.is_faithful() {
        out.push_str(&format!(
            "next: start the server with MAMORI_DATABASE_URL set and --data-dir {} (the keys \
             stay there); its mamori.db is no longer used: keep it as the copy from before the \
             move, away from the server\n",
            r.data_dir.display()
        ));
    } else {
        out.push_str(
            "the copy differs from the source: do not start a server on it; drop the \
             database and migrate again\n",
        );
    }
    out
}
