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
