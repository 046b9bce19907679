//! The directory the server's data and log live in for a run: temporary
//! (removed at the end) or kept (`--keep DIR`).

use anyhow::{bail, Context};
use std::path::PathBuf;

/// Where the server's data and log live for the run.
pub enum WorkDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    pub fn new(keep: Option<&PathBuf>) -> anyhow::Result<Self> {
        match keep {
            None => Ok(Self::Temp(
                tempfile::Builder::new()
                    .prefix("mamori-bench-")
                    .tempdir()
                    .context("cannot create a temporary directory")?,
            )),
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                if std::fs::read_dir(dir)?.next().is_some() {
                    bail!("--keep {}: the directory is not empty", dir.display());
                }
                Ok(Self::Kept(std::fs::canonicalize(dir)?))
            }
        }
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::Kept(p) => p,
        }
    }
}
