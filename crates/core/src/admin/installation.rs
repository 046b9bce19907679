//! The installation's keys, shared by every server on one database.

impl crate::Services {
    /// Refuses to run beside servers with other keys. Every server on one
    /// database must hold the same device CA (it vouches for every device
    /// identity), SCEP RA (a device may fetch the RA certificate from one
    /// server and send its request to another) and audit key (it signs
    /// the one log's checkpoints). The first server records their
    /// fingerprints; a server whose data directory holds others (a new
    /// one, set up by hand instead of from a copy) is refused at start,
    /// before it serves a device it would turn away or signs a checkpoint
    /// nobody could verify. Called at start, after the master key check.
    pub async fn check_installation_keys(&self) -> crate::CoreResult<()> {
        use mamori_ports::SecretStore;
        let ours = crate::pki::installation_fingerprints(&self.pki);
        let store: &dyn SecretStore = &*self.ports.admin;
        let aad = Some(crate::pki::INSTALLATION_KEYS.as_bytes());
        let seal = |text: &str| {
            self.pki
                .secret_box
                .seal(text.as_bytes(), aad)
                .map_err(|e| crate::CoreError::Internal(e.into()))
        };
        store
            .put_secret_if_absent(
                crate::pki::INSTALLATION_KEYS,
                &seal(&ours)?,
                self.clock.now(),
            )
            .await?;
        let stored = store
            .secret(crate::pki::INSTALLATION_KEYS)
            .await?
            .ok_or_else(|| {
                crate::CoreError::Internal("the installation's key record vanished".into())
            })?;
        let theirs = self
            .pki
            .secret_box
            .open(&stored, aad)
            .map_err(|e| crate::CoreError::Internal(e.into()))?;
        let theirs = String::from_utf8_lossy(&theirs).into_owned();
        let differ: Vec<&str> = ours
            .split(' ')
            .zip(theirs.split(' '))
            .filter(|(a, b)| a != b)
            .filter_map(|(a, _)| a.split('=').next())
            .collect();
        if differ.is_empty() && ours.split(' ').count() == theirs.split(' ').count() {
            return Ok(());
        }
        Err(crate::CoreError::Internal(
            format!(
                "this data directory's keys ({}) are not the ones the other servers on this \
             database use; copy the first server's data directory (but for its lock) to \
             this server instead of starting it on a new one",
                if differ.is_empty() {
                    "device CA, SCEP RA, audit key".to_owned()
                } else {
                    differ.join(", ")
                }
            )
            .into(),
        ))
    }
}
