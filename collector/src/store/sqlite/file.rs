//! The database file itself: created private, and watched for being deleted or replaced.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Creates `path` readable and writable by its owner only (0600) if it does not exist. SQLite
/// gives the `-wal` and `-shm` files the mode of the database file, so they are 0600 too.
pub fn create_private(path: &Path) -> Result<(), StoreError> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Io(e)),
    }
}

/// The database file as it was opened: its path and identity (device and inode number), and
/// those of its write-ahead log once seen.
#[derive(Debug)]
pub struct DbFile {
    path: PathBuf,
    id: (u64, u64),
    wal_path: PathBuf,
    wal_id: std::sync::OnceLock<(u64, u64)>,
}

impl DbFile {
    /// Records the identity of the file at `path` now.
    pub fn of(path: &Path) -> Result<DbFile, StoreError> {
        let meta = std::fs::metadata(path).map_err(StoreError::Io)?;
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        Ok(DbFile {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
            wal_path: wal_path.into(),
            wal_id: std::sync::OnceLock::new(),
        })
    }

    /// Fails with [`StoreError::Gone`] when the path no longer names the file that was opened
    /// (deleted, or replaced by another file): writes would go to an unlinked inode, acknowledged
    /// but lost. The same for the `-wal` file once it was seen: SQLite keeps it while the
    /// database is open, and events committed to a deleted one are lost at the next start.
    pub fn check(&self) -> Result<(), StoreError> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.id => {}
            _ => return Err(StoreError::Gone),
        }
        match (std::fs::metadata(&self.wal_path), self.wal_id.get()) {
            (Ok(meta), Some(&id)) if (meta.dev(), meta.ino()) == id => Ok(()),
            (Ok(meta), None) => {
                let _ = self.wal_id.set((meta.dev(), meta.ino()));
                Ok(())
            }
            (Err(_), None) => Ok(()),
            _ => Err(StoreError::Gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_and_noticed_when_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        create_private(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let file = DbFile::of(&path).unwrap();
        // Held open as SQLite holds it, so that its inode number cannot be reused.
        let _open = std::fs::File::open(&path).unwrap();
        assert!(file.check().is_ok());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(file.check(), Err(StoreError::Gone)));
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(file.check(), Err(StoreError::Gone)));
    }
}
