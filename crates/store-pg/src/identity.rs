//! Identity changes between servers: LISTEN/NOTIFY on the channel
//! `mamori_identity`. An announcement is a notification; each server's
//! watch holds one connection outside the pool that listens, and reports
//! `Lost` whenever that connection ends (notifications sent meanwhile are
//! gone), then reconnects. A cache trusts nothing between `Lost` and the
//! next `Listening`, so a missed notification can never leave a revoked
//! identity cached.

use crate::tls::Tls;
use crate::{db, exec, PgStore};
use async_trait::async_trait;
use mamori_domain::DeviceKey;
use mamori_ports::{
    IdentityChange, IdentityEvent, IdentityFeed, IdentityListener, StoreError, StoreResult,
};
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// The notification channel.
const CHANNEL: &str = "mamori_identity";
/// How long a watch waits before connecting again.
const RETRY: Duration = Duration::from_secs(1);

fn payload(change: &IdentityChange) -> String {
    match change {
        IdentityChange::Device(d) => format!("d:{}", d.as_str()),
        IdentityChange::Certificate(fp) => format!("c:{fp}"),
    }
}

/// The change a notification names; `None` for a payload this build does
/// not know (a newer server's), which the caller treats as "forget all".
fn parse(payload: &str) -> Option<IdentityChange> {
    match payload.split_once(':')? {
        ("d", udid) => DeviceKey::parse(udid).ok().map(IdentityChange::Device),
        ("c", fp) if !fp.is_empty() => Some(IdentityChange::Certificate(fp.to_owned())),
        _ => None,
    }
}

#[async_trait]
impl IdentityFeed for PgStore {
    async fn announce_identity_change(&self, change: &IdentityChange) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &payload(change)],
        )
        .await?;
        Ok(())
    }

    fn watch_identity_changes(&self, listener: IdentityListener) -> bool {
        let config = std::sync::Arc::clone(&self.config);
        let tls = std::sync::Arc::clone(&self.tls);
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&config, &tls, &listener).await {
                    tracing::warn!(error = %e, "identity watch lost its connection; reconnecting");
                }
                listener(IdentityEvent::Lost);
                tokio::time::sleep(RETRY).await;
            }
        });
        match self.tasks.lock() {
            Ok(mut tasks) => tasks.push(task),
            Err(_) => task.abort(),
        }
        true
    }
}

/// One connection's life: LISTEN, then report every notification until
/// the connection ends (an error, or the server closing it). It connects
/// as the pool does, over the same TLS.
async fn listen(
    config: &tokio_postgres::Config,
    tls: &Tls,
    listener: &IdentityListener,
) -> StoreResult<()> {
    let (client, mut connection) = config
        .connect(tls.connector())
        .await
        .map_err(|e| tls.connect_error(e))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection is driven on its own task: it delivers the LISTEN's
    // answer and then the notifications.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let listening = client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(db);
    if let Err(e) = listening {
        driver.abort();
        return Err(e);
    }
    listener(IdentityEvent::Listening);
    while let Some(p) = rx.recv().await {
        match parse(&p) {
            Some(change) => listener(IdentityEvent::Changed(change)),
            None => {
                // Unknown: forget everything, keep listening.
                listener(IdentityEvent::Lost);
                listener(IdentityEvent::Listening);
            }
        }
    }
    drop(client);
    Err(StoreError::new("the identity watch's connection ended"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_are_not_guessed() {
        let d =
            IdentityChange::Device(DeviceKey::parse("UDID-1").unwrap_or_else(|e| panic!("{e}")));
        let c = IdentityChange::Certificate("ab12".into());
        for change in [d, c] {
            assert_eq!(parse(&payload(&change)), Some(change));
        }
        for odd in ["", "x:1", "d:", "c:", "nocolon"] {
            assert_eq!(parse(odd), None, "{odd}");
        }
    }
}
