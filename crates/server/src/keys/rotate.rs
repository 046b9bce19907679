//! Rotation of the people key without downtime (`mamori keys rotate`).

use super::{
    read_people_key_file, write_people_keys, write_private, PEOPLE_KEY_ENV, PEOPLE_KEY_FILE,
};
use anyhow::Context;
use mamori_crypto::SecretBox;
use mamori_domain::{AuditAction, Outcome};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

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
    /// need them; archive offline or destroy).
    pub retired_file: PathBuf,
}

/// Rotates the people key without downtime: a new key is put first in
/// `people.key`; after a pause long enough for every running server to
/// reload it (they then unwrap with either key and wrap new data keys with
/// the new one), every data key and the blind-index key are re-wrapped
/// under it; then the old keys leave `people.key` for a separate
/// retired-keys file.
pub async fn rotate_people_key(
    services: &mamori_core::Services,
    ring: &mamori_core::people::vault::LocalKeyring,
    dir: &Path,
    settle: std::time::Duration,
) -> anyhow::Result<Rotation> {
    let ctx = mamori_core::access::ClientContext {
        source: "local".into(),
        user_agent: None,
        request_id: None,
    };
    // Only `mamori keys rotate` rotates: the user who ran it is the actor.
    let operator = crate::operator::host_operator();
    let actor = operator.actor();
    let err = |e: mamori_core::CoreError| anyhow::anyhow!("{e}");
    let old = read_people_key_file(dir)?.with_context(|| {
        format!("{PEOPLE_KEY_FILE} not found; rotate the key in {PEOPLE_KEY_ENV} by hand")
    })?;
    let retired: Vec<String> = old
        .iter()
        .map(|k| mamori_core::people::vault::LocalKeyring::key_id(k))
        .collect();
    let new = Zeroizing::new(SecretBox::generate_key()?.to_vec());
    let current = mamori_core::people::vault::LocalKeyring::key_id(&new);
    let mut both = vec![new.clone()];
    both.extend(old.iter().cloned());
    write_people_keys(dir, &both)?;
    ring.replace(&both).map_err(err)?;
    // Every running server must know the new key before anything is
    // wrapped with it: wait for them to reload (they poll every 2 s).
    tokio::time::sleep(settle).await;
    let mut rewrapped = services
        .rewrap_data_keys(&operator, &ctx)
        .await
        .map_err(err)?;
    // A last pass for data keys a server wrapped just before it reloaded.
    rewrapped += services
        .rewrap_data_keys(&operator, &ctx)
        .await
        .map_err(err)?;
    let left = services.data_keys_not_current().await.map_err(err)?;
    anyhow::ensure!(
        left == 0,
        "some data keys are still wrapped by the old key; {PEOPLE_KEY_FILE} keeps both keys — run the rotation again"
    );
    let retired_file = write_retired_keys(dir, &old, services.clock.now().unix_timestamp())?;
    write_people_keys(dir, std::slice::from_ref(&new))?;
    ring.replace(std::slice::from_ref(&new)).map_err(err)?;
    services
        .audit(
            services
                .audit_record(
                    &actor.label(),
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
    })
}

/// Writes the retired keys to their own file (backups made before the
/// rotation need them); returns its path.
fn write_retired_keys(dir: &Path, old: &[Zeroizing<Vec<u8>>], now: i64) -> anyhow::Result<PathBuf> {
    let retired_file = dir.join(format!("{PEOPLE_KEY_FILE}.retired-{}", now));
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
