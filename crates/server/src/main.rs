//! `mamori`: the server and its administration commands.

mod cli;

use clap::{Parser, Subcommand};
use cli::admin::AdminCmd;
use cli::audit::AuditCmd;
use cli::backup::BackupCmd;
use cli::init_logging;
use cli::keys::KeysCmd;
use cli::migrate::MigrateArgs;
use cli::people::PeopleCmd;
use cli::profile::ProfileCmd;
use cli::push_cert::PushCertCmd;
use cli::token::TokenCmd;
use mamori::config::ServeArgs;

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
    /// Move the installation from the embedded SQLite database to
    /// PostgreSQL, with the server stopped: every table copied into an
    /// empty database, compared, and the audit chain verified there.
    Migrate(MigrateArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => cli::serve::run(*args).await,
        Command::Admin(cmd) => {
            init_logging(false);
            cli::admin::run(cmd).await
        }
        Command::Token(cmd) => {
            init_logging(false);
            cli::token::run(cmd).await
        }
        Command::People(cmd) => {
            init_logging(false);
            cli::people::run(cmd).await
        }
        Command::Backup(cmd) => {
            init_logging(false);
            cli::backup::run(cmd).await
        }
        Command::Audit(cmd) => {
            init_logging(false);
            cli::audit::run(cmd).await
        }
        Command::Keys(cmd) => {
            init_logging(false);
            cli::keys::run(cmd).await
        }
        Command::Profile(cmd) => {
            init_logging(false);
            cli::profile::run(cmd).await
        }
        Command::PushCert(cmd) => {
            init_logging(false);
            cli::push_cert::run(cmd).await
        }
        Command::Migrate(args) => {
            init_logging(false);
            cli::migrate::run(args).await
        }
    }
}
