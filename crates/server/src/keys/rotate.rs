//! Rotation of the people key without downtime (`mamori keys rotate`),
//! safe with several servers on one database (`ring.rs`).
//!
//! 1. **Prepare**: a new key joins `people.key` here, after the current
//!    one, and the database records it as the next key. Servers that load
//!    it unwrap with it but still wrap with the current key; a server that
//!    lacks it no longer starts. The operator copies `people.key` to every
//!    other server's data directory (each loads it within seconds).
//! 2. **Promote**: once every live server reports the next key loaded, the
//!    database makes it current, in one statement with that check; every
//!    server follows within seconds (and reports it).
//! 3. **Re-wrap**: once every live server wraps with it, every data key
//!    and the blind-index key are re-wrapped under it.
//! 4. **Retire**: once no data key is under another key, the other keys
//!    leave this `people.key` for a retired-keys file.
//!
//! `keys rotate` runs every step it can, and stops with what to do when a
//! server lacks the new key; run again, it resumes where it stopped.

use super::ring::{follow_choice, index_key_wrapper, KEY_POLL};
use super::{
    read_people_key_file, write_people_keys, write_private, KeySource, PEOPLE_KEY_ENV,
    PEOPLE_KEY_FILE,
};
use anyhow::Context;
use mamori_core::people::vault::{KeyProvider, LocalKeyring};
use mamori_core::Services;
use mamori_crypto::SecretBox;
use mamori_domain::{AuditAction, Outcome};
use mamori_ports::KeyHolder;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// Where the people keys of a rotation are.
#[derive(Debug, Clone, Copy)]
pub struct RingAt<'a> {
    /// The keys in use (shared with the services).
    pub ring: &'a LocalKeyring,
    /// `people.key` (written by the rotation) or `MAMORI_PEOPLE_KEY` (the
    /// operator changes it).
    pub source: KeySource,
    /// The data directory.
    pub dir: &'a Path,
}

/// What a rotation of the people key did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// IDs of the keys retired.
    pub retired: Vec<String>,
    /// ID of the new key.
    pub current: String,
    /// Data keys re-wrapped.
    pub rewrapped: u64,
    /// Where the retired keys were put (backups made before the rotation
    /// need them; archive offline or destroy); None when the keys come
    /// from the environment, or none was left to retire.
    pub retired_file: Option<PathBuf>,
    /// The other servers running on the database (their holder
    /// identities): their copies of `people.key` still hold the retired
    /// keys until the operator copies this one there.
    pub servers: Vec<String>,
}

/// What preparing a rotation did.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// ID of the key prepared.
    pub next: String,
    /// The servers running on the database that have not loaded it yet.
    pub lacking: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The host's operator and a local client context.
fn actor() -> (
    mamori_core::access::Operator,
    mamori_core::access::ClientContext,
) {
    let ctx = mamori_core::access::ClientContext {
        source: "local".into(),
        user_agent: None,
        request_id: None,
    };
    (crate::operator::host_operator(), ctx)
}

/// Step 1 alone: prepares a new key (or returns the one prepared) and says
/// which running servers lack it (after a few seconds: those on this host
/// load it meanwhile). File only.
pub async fn prepare_people_key(services: &Services, at: RingAt<'_>) -> anyhow::Result<Prepared> {
    let choice = follow_choice(&*services.store, at.ring).await?;
    if let (None, Some(current)) = (&choice.next, &choice.current) {
        anyhow::ensure!(
            !unfinished(services, at, current).await?,
            "the previous rotation of the people key is unfinished: run `mamori keys rotate` to \
            finish it first"
        );
    }
    let next = prepared(services, at, None).await?;
    // Time for the servers on this host to load it.
    let lacking = wait_for(services, KEY_POLL * 2, |h| h.loaded.contains(&next)).await?;
    Ok(Prepared { next, lacking })
}

/// The prepared key: the one the database names as next (which must be
/// loaded here), else a new one (file: generated into `people.key`;
/// environment: `wanted`, loaded here, named by the operator).
async fn prepared(
    services: &Services,
    at: RingAt<'_>,
    wanted: Option<&str>,
) -> anyhow::Result<String> {
    let store = &*services.store;
    let choice = follow_choice(store, at.ring).await?;
    let current = choice
        .current
        .ok_or_else(|| anyhow::anyhow!("no people key is named in the database"))?;
    if let Some(next) = choice.next {
        anyhow::ensure!(
            wanted.is_none_or(|w| w == next),
            "a rotation to people key {next} is already prepared"
        );
        anyhow::ensure!(
            at.ring.has(&next),
            "a rotation to people key {next} was prepared on another host: copy {PEOPLE_KEY_FILE} \
            from there into {} and run `mamori keys rotate` again (or run it there)",
            at.dir.display()
        );
        return Ok(next);
    }
    let next = match (at.source, wanted) {
        (KeySource::Environment, Some(w)) => {
            anyhow::ensure!(
                at.ring.has(w) && w != current,
                "{w} is not a key of {PEOPLE_KEY_ENV} other than the current one"
            );
            w.to_owned()
        }
        (KeySource::Environment, None) => return Err(anyhow::anyhow!(env_help(at.ring, &current))),
        (KeySource::File, _) => {
            let mut keys = read_people_key_file(at.dir)?
                .with_context(|| format!("{PEOPLE_KEY_FILE} not found"))?;
            let new = Zeroizing::new(SecretBox::generate_key()?.to_vec());
            keys.push(new.clone());
            write_people_keys(at.dir, &keys)?;
            at.ring.replace(&keys).map_err(err)?;
            LocalKeyring::key_id(&new)
        }
    };
    anyhow::ensure!(
        store
            .prepare_people_key(&current, &next)
            .await
            .map_err(err)?,
        "another rotation was prepared at the same time: run `mamori keys rotate` again"
    );
    let (operator, ctx) = actor();
    services
        .audit(
            services
                .audit_record(
                    &operator.actor().label(),
                    &ctx,
                    AuditAction::KeysRotate,
                    Outcome::Success,
                )
                .target(&next)
                .detail(format!("prepared to follow {current}")),
        )
        .await
        .map_err(err)?;
    Ok(next)
}

/// How to rotate keys held in the environment.
fn env_help(ring: &LocalKeyring, current: &str) -> String {
    let others: Vec<String> = ring.ids().into_iter().filter(|k| k != current).collect();
    format!(
        "the people keys come from {PEOPLE_KEY_ENV} (current: {current}; others: {}): add a new \
        key (64 hex digits) to it on every server and here, restart the servers, then run \
        `mamori keys rotate --next <its ID>` (IDs are listed here once it is loaded)",
        if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        }
    )
}

/// The live servers' reports.
async fn holders(services: &Services) -> anyhow::Result<Vec<KeyHolder>> {
    services.store.people_key_holders().await.map_err(err)
}

/// Waits up to `wait` for every live server to satisfy `ok`; those that
/// still do not.
async fn wait_for(
    services: &Services,
    wait: Duration,
    ok: impl Fn(&KeyHolder) -> bool,
) -> anyhow::Result<Vec<String>> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let behind: Vec<String> = holders(services)
            .await?
            .into_iter()
            .filter(|h| !ok(h))
            .map(|h| h.holder)
            .collect();
        if behind.is_empty() || tokio::time::Instant::now() >= until {
            return Ok(behind);
        }
        tokio::time::sleep(KEY_POLL / 4).await;
    }
}

/// Rotates the people key (see the module documentation); `next` names
/// the new key when the keys come from the environment. `wait` bounds
/// each wait for the running servers (they look every 2 s).
pub async fn rotate_people_key(
    services: &Services,
    at: RingAt<'_>,
    next: Option<&str>,
    wait: Duration,
) -> anyhow::Result<Rotation> {
    let store = &*services.store;
    let choice = follow_choice(store, at.ring).await?;
    let current = choice.current.clone().unwrap_or_default();
    // Nothing prepared, and no new key named: finish what a rotation left.
    let resume = choice.next.is_none()
        && (next == Some(current.as_str())
            || (next.is_none() && unfinished(services, at, &current).await?));
    if !resume {
        let target = prepared(services, at, next).await?;
        promote(services, at, &target, wait).await?;
    }
    let current = at.ring.current_id();
    let behind = wait_for(services, wait, |h| h.wraps_with == current).await?;
    anyhow::ensure!(
        behind.is_empty(),
        "people key {current} is current, but these servers still wrap with another key: {}. \
        Every key stays in {PEOPLE_KEY_FILE}; run `mamori keys rotate` again in a moment to \
        finish (a server that stopped counts after 10 s)",
        behind.join(", ")
    );
    let (operator, ctx) = actor();
    let mut rewrapped = services
        .rewrap_data_keys(&operator, &ctx)
        .await
        .map_err(err)?;
    // A last pass for data keys a server wrapped just before it switched.
    rewrapped += services
        .rewrap_data_keys(&operator, &ctx)
        .await
        .map_err(err)?;
    anyhow::ensure!(
        !under_other_keys(services, &current).await?,
        "some data keys are still wrapped by another key; {PEOPLE_KEY_FILE} keeps every key — \
        run `mamori keys rotate` again"
    );
    let (retired, retired_file) = retire(services, at, &current).await?;
    services
        .audit(
            services
                .audit_record(
                    &operator.actor().label(),
                    &ctx,
                    AuditAction::KeysRotate,
                    Outcome::Success,
                )
                .target(&current)
                .detail(format!(
                    "retired={} data keys re-wrapped={rewrapped}",
                    retired.join(",")
                )),
        )
        .await
        .map_err(err)?;
    Ok(Rotation {
        retired,
        current,
        rewrapped,
        retired_file,
        servers: holders(services)
            .await?
            .into_iter()
            .map(|h| h.holder)
            .collect(),
    })
}

/// Step 2: waits for every live server to load `target`, then makes it
/// current (refused in the same statement if a server lacks it).
async fn promote(
    services: &Services,
    at: RingAt<'_>,
    target: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let lacking = |servers: Vec<String>| {
        format!(
            "the new people key {target} is ready here, but these servers on the database have \
            not loaded it: {}. Nothing was re-wrapped and every server still wraps with the \
            current key. Copy {} to the data directory of each (they load it within seconds; \
            a server that stopped counts after 10 s), then run `mamori keys rotate` again",
            servers.join(", "),
            at.dir.join(PEOPLE_KEY_FILE).display()
        )
    };
    let behind = wait_for(services, wait, |h| h.loaded.iter().any(|k| k == target)).await?;
    if !behind.is_empty() {
        return Err(anyhow::anyhow!(lacking(behind)));
    }
    if !services
        .store
        .promote_people_key(target)
        .await
        .map_err(err)?
    {
        let choice = services.store.people_key_choice().await.map_err(err)?;
        if choice.current.as_deref() != Some(target) {
            let behind = wait_for(services, Duration::ZERO, |h| {
                h.loaded.iter().any(|k| k == target)
            })
            .await?;
            return Err(anyhow::anyhow!(lacking(behind)));
        }
    }
    at.ring.set_current(target).map_err(err)
}

/// Whether a rotation to `current` was left before its end: a key other
/// than it still wraps something, or `people.key` still holds another.
async fn unfinished(services: &Services, at: RingAt<'_>, current: &str) -> anyhow::Result<bool> {
    let extra = at.source == KeySource::File && at.ring.ids().iter().any(|k| k != current);
    Ok(extra || under_other_keys(services, current).await?)
}

/// Whether a data key or the blind-index key is wrapped by a key other
/// than `current`.
async fn under_other_keys(services: &Services, current: &str) -> anyhow::Result<bool> {
    let store = &*services.store;
    let people = store.people_keys_wrapping().await.map_err(err)?;
    let index = index_key_wrapper(store).await?;
    Ok(people.iter().chain(index.iter()).any(|k| k != current))
}

/// Step 4: the keys of `people.key` other than `current` (and a prepared
/// one) move to a retired-keys file. Nothing for keys in the environment.
async fn retire(
    services: &Services,
    at: RingAt<'_>,
    current: &str,
) -> anyhow::Result<(Vec<String>, Option<PathBuf>)> {
    let others: Vec<String> = at.ring.ids().into_iter().filter(|k| k != current).collect();
    if at.source == KeySource::Environment {
        return Ok((others, None));
    }
    let next = services.store.people_key_choice().await.map_err(err)?.next;
    let keys =
        read_people_key_file(at.dir)?.with_context(|| format!("{PEOPLE_KEY_FILE} not found"))?;
    let (kept, old): (Vec<_>, Vec<_>) = keys.into_iter().partition(|k| {
        let id = LocalKeyring::key_id(k);
        id == current || next.as_deref() == Some(id.as_str())
    });
    anyhow::ensure!(
        kept.iter().any(|k| LocalKeyring::key_id(k) == current),
        "{PEOPLE_KEY_FILE} lost the current key {current} while rotating; restore it"
    );
    if old.is_empty() {
        return Ok((Vec::new(), None));
    }
    let retired = old.iter().map(|k| LocalKeyring::key_id(k)).collect();
    let file = write_retired_keys(at.dir, &old, services.clock.now().unix_timestamp())?;
    write_people_keys(at.dir, &kept)?;
    at.ring.replace(&kept).map_err(err)?;
    Ok((retired, Some(file)))
}

/// Writes the retired keys to their own file (backups made before the
/// rotation need them); returns its path.
fn write_retired_keys(dir: &Path, old: &[Zeroizing<Vec<u8>>], now: i64) -> anyhow::Result<PathBuf> {
    let mut retired_file = dir.join(format!("{PEOPLE_KEY_FILE}.retired-{now}"));
    let mut n = 1;
    while retired_file.exists() {
        retired_file = dir.join(format!("{PEOPLE_KEY_FILE}.retired-{now}-{n}"));
        n += 1;
    }
    let text = Zeroizing::new(
        old.iter()
            .map(|k| hex::encode(k.as_slice()))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    );
    write_private(&retired_file, text.as_bytes())?;
    Ok(retired_file)
}
