//! Starting the server: the data directory's lock, both listeners bound,
//! the services built, the people key ring checked against the database,
//! TLS configured, listeners and background tasks spawned.

use super::{build_services_with_store, default_public_url, lock_data_dir, tasks, Running};
use crate::config::Config;
use crate::keys;
use anyhow::Context;
use mamori_core::device::push::PushFollower;
use mamori_core::Services;
use mamori_http::tls::Sources;
use mamori_ports::Pusher;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Starts the server: takes the data directory's lock, binds both
/// listeners and returns at once.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    keys::ensure_dir(&config.data_dir)?;
    let lock = lock_data_dir(&config.data_dir)?;
    let device_listener = TcpListener::bind(config.device_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.device_addr))?;
    let admin_listener = TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.admin_addr))?;
    let device_addr = device_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| default_public_url(device_addr));
    let admin_url = config
        .admin_url
        .clone()
        .unwrap_or_else(|| format!("https://localhost:{}", admin_addr.port()));
    let (services, tls, keyring, store) =
        build_services_with_store(config, &public_url, &admin_url, apns_pusher(config)?, true)
            .await?;
    watch_identities(&services);
    // This server joins the others before it serves: it must hold every
    // people key the database needs, and it counts for a rotation.
    let holder = tasks::new_holder()?;
    keys::ring::join(
        &*services.store,
        &keyring.ring,
        &holder,
        keyring.source,
        &config.data_dir,
    )
    .await?;
    let push = match prepare(&services, config, &admin_url).await {
        Ok(p) => p,
        Err(e) => {
            let _ = services.store.withdraw_people_keys(&holder).await;
            return Err(e);
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let listeners = spawn_listeners(
        &services,
        config,
        &tls,
        [device_listener, admin_listener],
        stopped,
    )?;
    // On SQLite the data directory's lock makes this server the only one.
    let sole = store.sqlite().is_some();
    let joined = tasks::Joined { holder, push };
    let (tasks, leases) =
        tasks::spawn(&services, config, &public_url, &keyring, sole, joined).await?;
    let tls_ca_path = config
        .tls
        .is_none()
        .then(|| config.data_dir.join("tls-ca.pem"));
    Ok(Running {
        device_addr,
        admin_addr,
        ca_fingerprint: services.pki.device_ca.fingerprint_sha256_hex(),
        services,
        tls_ca_path,
        public_url,
        listeners,
        tasks,
        leases,
        stop,
        store,
        _lock: lock,
    })
}

/// The identity cache follows the other servers' identity changes (on
/// PostgreSQL); until its watch listens, it trusts nothing.
fn watch_identities(services: &Services) {
    let cache = Arc::clone(&services.identities);
    cache.follow_watch();
    let follower = Arc::clone(&cache);
    if !services
        .store
        .watch_identity_changes(Arc::new(move |e| follower.on_event(e)))
    {
        // No other server: this process's own changes are all there are.
        cache.on_event(mamori_ports::IdentityEvent::Listening);
    }
}

/// What runs once before the listeners serve: the WebAuthn warning, the
/// department index, the push certificate (followed from then on).
async fn prepare(
    services: &Services,
    config: &Config,
    admin_url: &str,
) -> anyhow::Result<PushFollower> {
    if !services.auth.ceremonies.enabled() && !config.auth.webauthn_roles.is_empty() {
        tracing::warn!(%admin_url, "WebAuthn is unavailable for this admin URL; roles that require it cannot log in");
    }
    match services
        .index_departments(&mamori_core::access::Operator::Job(
            mamori_core::access::Job::Fleet,
        ))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(people = n, "department index built"),
        Err(e) => tracing::error!(error = %e, "department index not built"),
    }
    let mut push = PushFollower::default();
    if let Some(topic) = services.follow_push_certificate(&mut push).await? {
        tracing::info!(topic = %topic, "push certificate loaded");
    }
    Ok(push)
}

/// Serves TLS on both bound listeners (`[device, admin]`) until `stopped`
/// turns true: the device listener asks for the device CA's client
/// certificates, the admin listener admits only the allowed networks.
fn spawn_listeners(
    services: &Services,
    config: &Config,
    tls: &keys::TlsMaterial,
    [device_listener, admin_listener]: [TcpListener; 2],
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let certs = || -> anyhow::Result<Vec<mamori_http::tls::ServerCert>> {
        tls.certs
            .iter()
            .map(|(chain, key_pem)| {
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .map_err(|e| anyhow::anyhow!("TLS key: {e:?}"))?;
                Ok((
                    chain.iter().cloned().map(CertificateDer::from).collect(),
                    key,
                ))
            })
            .collect()
    };
    let device_ca = CertificateDer::from(services.pki.device_ca.cert_der.clone());
    let device_tls = mamori_http::tls::server_config(certs()?, Some(device_ca))?;
    let admin_tls = mamori_http::tls::server_config(certs()?, None)?;
    let (device_limits, admin_limits) = listener_limits(config);
    let device_router = mamori_http::device::router(services.clone());
    let admin_router = mamori_http::admin::router(services.clone());
    let proxy_from = config.proxy_protocol_from.clone().map(Arc::new);
    let device_sources = Sources {
        allow: None,
        proxy_from: proxy_from.clone(),
    };
    let admin_sources = Sources {
        allow: config.admin_allow.clone().map(Arc::new),
        proxy_from,
    };
    Ok(vec![
        tokio::spawn(mamori_http::tls::serve_tls_from(
            device_listener,
            tokio_rustls::TlsAcceptor::from(Arc::new(device_tls)),
            device_router,
            device_sources,
            device_limits,
            stopped.clone(),
        )),
        tokio::spawn(mamori_http::tls::serve_tls_from(
            admin_listener,
            tokio_rustls::TlsAcceptor::from(Arc::new(admin_tls)),
            admin_router,
            admin_sources,
            admin_limits,
            stopped,
        )),
    ])
}

fn apns_pusher(config: &Config) -> anyhow::Result<Arc<dyn Pusher>> {
    let mut roots = Vec::new();
    if let Some(p) = &config.apns_ca {
        let pem =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        for der in keys::pem_certs(&pem)? {
            roots.push(CertificateDer::from(der));
        }
    }
    Ok(Arc::new(mamori_push::ApnsPusher::new(
        &config.apns_url,
        roots,
    )?))
}

/// The listeners' limits, with the connection caps lowered to what the
/// open-file limit can hold.
fn listener_limits(config: &Config) -> (mamori_http::conn::Limits, mamori_http::conn::Limits) {
    let (mut device, mut admin) = (config.device_limits.clone(), config.admin_limits.clone());
    if let Some(n) = open_file_limit() {
        if mamori_http::conn::fit_to_descriptors(&mut device, &mut admin, n) {
            tracing::warn!(
                open_files = n,
                max_connections = device.max_connections,
                admin_max_connections = admin.max_connections,
                "the open-file limit cannot hold the configured connection caps; caps lowered \
                 (raise the limit, e.g. LimitNOFILE=8192 in the systemd unit)"
            );
        }
    }
    (device, admin)
}

/// The soft open-file limit (Linux: `/proc/self/limits`), if known.
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_whitespace().next()?.parse().ok()
}
