//! The people key ring shared by every server on one database. The keys
//! stay in each server's own `people.key` (or `MAMORI_PEOPLE_KEY`) and
//! never enter the database; what the servers must agree on is there
//! (`KeyRingStore`): the key every one of them wraps new data keys with
//! (the current key), the key a rotation prepared (the next), and what
//! each running server has loaded, reported under its holder identity
//! every [`KEY_POLL`] for [`REPORT_TTL`].
//!
//! So a server wraps only with the key the database names; it starts only
//! if it holds the current key, the prepared one and every key that wraps
//! a person's data key; it reloads `people.key` only if the new file still
//! holds them; and a key becomes current only once every live server has
//! loaded it (`rotate.rs`, in one statement with that check).

use super::{read_people_key_file, KeySource, PEOPLE_KEY_ENV, PEOPLE_KEY_FILE};
use mamori_core::people::vault::{KeyProvider, LocalKeyring};
use mamori_ports::{PeopleKeyChoice, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often a server looks at `people.key` and the database's choice,
/// and renews its report.
pub const KEY_POLL: Duration = Duration::from_secs(2);

/// How long a server's report lasts unless renewed: a server that stopped
/// reporting this long ago (it died, or lost the database) no longer holds
/// a rotation back.
pub const REPORT_TTL: Duration = Duration::from_secs(10);

/// A key the database needs a server to hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    /// The key's ID.
    pub id: String,
    /// Why it is needed (for the operator).
    pub why: &'static str,
}

/// Every key the database needs a server to hold: the current one, the one
/// a rotation prepared, and every key that wraps a person's data key or
/// the blind-index key.
pub async fn needed_keys(store: &dyn Store) -> anyhow::Result<Vec<Needed>> {
    let err = |e: mamori_ports::StoreError| anyhow::anyhow!("{e}");
    let choice = store.people_key_choice().await.map_err(err)?;
    let mut out = Vec::new();
    let mut add = |id: String, why: &'static str| {
        if !out.iter().any(|n: &Needed| n.id == id) {
            out.push(Needed { id, why });
        }
    };
    if let Some(id) = choice.current {
        add(id, "the database names it the current people key");
    }
    if let Some(id) = choice.next {
        add(id, "a rotation prepared it as the next people key");
    }
    for id in store.people_keys_wrapping().await.map_err(err)? {
        add(id, "it wraps people's data keys");
    }
    if let Some(id) = index_key_wrapper(store).await? {
        add(id, "it wraps the blind-index key");
    }
    Ok(out)
}

/// The ID of the key that wraps the blind-index key (stored as
/// `<key id>\0<wrapped key>`), if there is one.
pub async fn index_key_wrapper(store: &dyn Store) -> anyhow::Result<Option<String>> {
    let stored = store
        .secret(mamori_core::people::INDEX_KEY)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(stored.and_then(|s| {
        let end = s.iter().position(|b| *b == 0)?;
        String::from_utf8(s[..end].to_vec()).ok()
    }))
}

/// What of `needed` the keys `loaded` lack.
pub fn lacking(needed: &[Needed], loaded: &[String]) -> Vec<Needed> {
    needed
        .iter()
        .filter(|n| !loaded.contains(&n.id))
        .cloned()
        .collect()
}

/// Follows the database's choice: names the ring's current key if the
/// database names none yet (the first server, or the first start after an
/// upgrade), then makes the named key current in the ring. Refused when
/// the ring lacks it. Every process that wraps data keys does this when
/// it builds its services.
pub async fn follow_choice(
    store: &dyn Store,
    ring: &LocalKeyring,
) -> anyhow::Result<PeopleKeyChoice> {
    let choice = store
        .adopt_people_key(&ring.current_id())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(current) = &choice.current {
        ring.set_current(current).map_err(|_| {
            anyhow::anyhow!(
                "the people key ring lacks the key {current} the database names as current \
                 (people's data keys are wrapped with it): copy {PEOPLE_KEY_FILE} from the data \
                 directory where `mamori keys rotate` last ran, or from another server on this \
                 database"
            )
        })?;
    }
    Ok(choice)
}

/// Reports what this server has loaded and wraps with.
pub async fn report(store: &dyn Store, ring: &LocalKeyring, holder: &str) -> anyhow::Result<()> {
    store
        .report_people_keys(holder, &ring.ids(), &ring.current_id(), REPORT_TTL)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A server joins the others before it serves: it reports what it holds
/// first (so a rotation deciding from now on counts it), then follows the
/// database's choice and refuses to start without every key the database
/// needs (a rotation that read the reports just before this one may have
/// promoted a key: it was prepared, so it is needed here), then reports
/// the key it wraps with.
pub async fn join(
    store: &dyn Store,
    ring: &LocalKeyring,
    holder: &str,
    source: KeySource,
    dir: &Path,
) -> anyhow::Result<()> {
    report(store, ring, holder).await?;
    let checked = async {
        follow_choice(store, ring).await?;
        let missing = lacking(&needed_keys(store).await?, &ring.ids());
        anyhow::ensure!(missing.is_empty(), "{}", refusal(&missing, source, dir));
        report(store, ring, holder).await
    };
    let result = checked.await;
    if result.is_err() {
        // Not a holder after all: a rotation need not wait for it.
        let _ = store.withdraw_people_keys(holder).await;
    }
    result
}

/// What the operator reads when a server lacks keys the database needs.
fn refusal(missing: &[Needed], source: KeySource, dir: &Path) -> String {
    let list = missing
        .iter()
        .map(|n| format!("{} ({})", n.id, n.why))
        .collect::<Vec<_>>()
        .join("; ");
    let fix = match source {
        KeySource::File => format!(
            "copy {PEOPLE_KEY_FILE} from the data directory where `mamori keys rotate` last ran \
             (or from another server on this database) into {}, then start again",
            dir.display()
        ),
        KeySource::Environment => format!(
            "give {PEOPLE_KEY_ENV} every key the other servers on this database hold, then \
             start again"
        ),
    };
    format!("the people key ring lacks keys this database needs: {list}. To fix: {fix}.")
}

/// Follows the shared ring while the server runs, every [`KEY_POLL`]: a
/// `people.key` rewritten here is loaded if it still holds every key the
/// database needs (else the loaded keys are kept, and the refusal
/// logged); the key the database names becomes current; the report is
/// renewed. `dir` is the data directory when the keys come from its file.
pub async fn follow(
    store: Arc<dyn Store>,
    ring: Arc<LocalKeyring>,
    dir: Option<PathBuf>,
    holder: String,
) {
    let stamp = |d: &Path| {
        std::fs::metadata(d.join(PEOPLE_KEY_FILE))
            .and_then(|m| m.modified())
            .ok()
    };
    let mut seen = dir.as_deref().and_then(stamp);
    let mut refused = None;
    let mut tick = tokio::time::interval(KEY_POLL);
    loop {
        tick.tick().await;
        if let Some(dir) = &dir {
            let now = stamp(dir);
            if now != seen && reload(&*store, &ring, dir, now != refused).await {
                seen = now;
            } else if now != seen {
                refused = now;
            }
        }
        if let Err(e) = follow_named(&*store, &ring).await {
            tracing::error!(error = %e, "cannot follow the database's people key");
        }
        if let Err(e) = report(&*store, &ring, &holder).await {
            tracing::warn!(error = %e, "cannot report this server's people keys");
        }
    }
}

/// Makes the key the database names current, if it is not yet.
async fn follow_named(store: &dyn Store, ring: &LocalKeyring) -> anyhow::Result<()> {
    let choice = store
        .people_key_choice()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(current) = choice.current else {
        return Ok(());
    };
    if current == ring.current_id() {
        return Ok(());
    }
    ring.set_current(&current).map_err(|_| {
        anyhow::anyhow!(
            "the database names people key {current}, which this server has not loaded: copy \
             {PEOPLE_KEY_FILE} from where `mamori keys rotate` ran"
        )
    })?;
    tracing::info!(key = %current, "people keys: wrapping with the key the database names");
    Ok(())
}

/// Loads a rewritten `people.key` if it holds every key the database
/// needs; whether it did (false also when it could not tell: the file is
/// tried again). `log` says whether to log a refusal (once per file).
async fn reload(store: &dyn Store, ring: &LocalKeyring, dir: &Path, log: bool) -> bool {
    let keys = match read_people_key_file(dir) {
        Ok(Some(k)) => k,
        Ok(None) => {
            if log {
                tracing::error!("people.key disappeared; keeping the loaded keys");
            }
            return false;
        }
        Err(e) => {
            if log {
                tracing::error!(error = %e, "people.key is unreadable; keeping the loaded keys");
            }
            return false;
        }
    };
    let ids: Vec<String> = keys.iter().map(|k| LocalKeyring::key_id(k)).collect();
    let needed = match needed_keys(store).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "people.key changed; cannot check it against the database yet");
            return false;
        }
    };
    let missing = lacking(&needed, &ids);
    if !missing.is_empty() {
        if log {
            let missing: Vec<&str> = missing.iter().map(|n| n.id.as_str()).collect();
            tracing::error!(
                ?missing,
                "people.key was rewritten without keys the database needs; keeping the loaded \
                 keys (copy people.key from where `mamori keys rotate` ran)"
            );
        }
        return false;
    }
    match ring.replace(&keys) {
        Ok(()) => {
            tracing::info!(keys = ?ring.ids(), "people key ring reloaded");
            true
        }
        Err(e) => {
            if log {
                tracing::error!(error = %e, "people.key is invalid; keeping the loaded keys");
            }
            false
        }
    }
}
