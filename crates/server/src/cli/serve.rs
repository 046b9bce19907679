//! `mamori serve`: the server, its start-up banner and its orderly stop.

use super::init_logging;
use anyhow::Context;
use mamori::app;
use mamori::config::{self, Config, ServeArgs};

/// `mamori serve`: runs the server until Ctrl-C or SIGTERM, then drains.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
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
    if !has_owner(&running.services).await {
        println!(
            "Create the first owner with:\n  mamori admin create --data-dir {} --name NAME --role owner",
            config.data_dir.display()
        );
    }
    // The banner's last line (scripts and tests wait for it).
    println!(
        "Ready: the console is at {}/console/",
        running.services.config.auth.admin_url.trim_end_matches('/')
    );
    terminated.await;
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    running.stop(SHUTDOWN_BOUND).await;
    tracing::info!("stopped");
    Ok(())
}

/// Whether an owner account exists that is not disabled (the banner's hint
/// to create one is for a new installation only). Read as the host; if
/// the accounts cannot be read, the hint is shown.
async fn has_owner(services: &mamori_core::Services) -> bool {
    let Ok(by) =
        mamori::operator::host_actor().authorize::<mamori_core::access::permit::AccountsManage>()
    else {
        return false;
    };
    services.admin_inventory(&by).await.is_ok_and(|all| {
        all.iter()
            .any(|a| a.admin.role == mamori_domain::Role::Owner && a.admin.disabled_at.is_none())
    })
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
