//! Copying a data directory for another server on the same database, as
//! DEPLOYMENT.md has an operator do: every file but the lock, into a new
//! directory only its owner may open.

use std::path::Path;

/// Copies the files of `from` (not `lock_file`, the directory's lock) into
/// `to`, created with mode 0700 if absent.
pub fn copy_data_dir(from: &Path, to: &Path, lock_file: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != lock_file {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_file_but_the_lock_into_a_private_directory() {
        let from = tempfile::tempdir().unwrap();
        std::fs::write(from.path().join("master.key"), b"k").unwrap();
        std::fs::write(from.path().join("mamori.lock"), b"").unwrap();
        std::fs::create_dir(from.path().join("sub")).unwrap();
        let parent = tempfile::tempdir().unwrap();
        let to = parent.path().join("copy");
        copy_data_dir(from.path(), &to, "mamori.lock").unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["master.key"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&to).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
