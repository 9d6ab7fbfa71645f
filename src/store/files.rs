//! Owner-only permissions for the SQLite files (SECURITY O4): the database holds password
//! hashes and session and token hashes, so nobody but the service's user may read it.
//!
//! SQLite creates `-wal`, `-shm` and `-journal` files with the permissions of the database
//! file, so creating that one 0600 covers them. Files left by an older version (or created by
//! another tool) are tightened at start, as are journals that already exist next to them.

use std::path::Path;

/// Creates the database file owner-only when missing, and removes group and other access from
/// it and its companions when they exist. Does nothing on platforms without Unix modes.
pub(crate) fn restrict_sqlite_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        create_owner_only(path)?;
        restrict(path)?;
        // The files SQLite keeps next to a database.
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            restrict(Path::new(&name))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates an empty file with mode 0600 unless it exists (SQLite accepts an empty file as a
/// new database, and keeps its mode).
#[cfg(unix)]
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Clears the group and other bits of `path` when it exists and has any.
#[cfg(unix)]
pub(crate) fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_owner_only_and_old_ones_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.db");
        restrict_sqlite_files(&db).unwrap();
        assert_eq!(mode(&db), 0o600);

        let old = dir.path().join("old.db");
        let wal = dir.path().join("old.db-wal");
        for file in [&old, &wal] {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        restrict_sqlite_files(&old).unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(mode(&wal), 0o600);
        assert!(!dir.path().join("old.db-shm").exists());
    }
}
