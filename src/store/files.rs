//! File primitives every persistent piece shares: atomic replacement and advisory locks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces `path` with `data` atomically (temp file in the same directory, then rename), so a
/// reader or a killed process sees either the old content or the new, never a torn file. No fsync:
/// an installer step must not wait on the disk for a telemetry file.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    temp_beside(path, data, mode)?.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `path` with `data` only if it does not exist yet, atomically: the content is written to a
/// temp file first and then hard-linked into place, which fails if another process got there first.
/// Returns false when the file already existed.
pub fn create_new(path: &Path, data: &[u8], mode: u32) -> io::Result<bool> {
    let tmp = temp_beside(path, data, mode)?;
    // Created once per installation and read by the product: worth the wait for the disk.
    tmp.as_file().sync_all()?;
    match fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: fall back to a no-clobber persist.
        Err(_) => match tmp.persist_noclobber(path) {
            Ok(_) => Ok(true),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e.error),
        },
    }
}

/// A temp file holding `data` with `mode`, in the directory of `path` so a rename or link is atomic.
fn temp_beside(path: &Path, data: &[u8], mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(parent(path))?;
    tmp.write_all(data)?;
    // The umask may have narrowed the mode given at creation.
    tmp.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(tmp)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An exclusive advisory lock (flock) on a file, released when dropped or when the process dies.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until the lock on `path` is held, creating the file (mode 0600) if needed.
    pub fn acquire(path: &Path) -> io::Result<Lock> {
        let file = open_lock_file(path)?;
        file.lock()?;
        Ok(Lock { _file: file })
    }

    /// Takes the lock on `path` if nobody holds it; `Ok(None)` when another process does.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Lock>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Opens `path` for appending, creating it private (0600) if needed: for logs that one write at a
/// time extends, never rewritten.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().append(true).create(true).mode(0o600).open(path)
}

/// Creates `dir` and its parents. They stay world-readable (0755) because the installed product,
/// possibly running as another user, reads the ID file inside; private files are 0600 themselves.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        atomic_write(&path, b"one", 0o600).unwrap();
        atomic_write(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn create_new_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        assert!(create_new(&path, b"first", 0o644).unwrap());
        assert!(!create_new(&path, b"second", 0o644).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn try_lock_sees_a_held_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = Lock::acquire(&path).unwrap();
        assert!(Lock::try_acquire(&path).unwrap().is_none());
        drop(held);
        assert!(Lock::try_acquire(&path).unwrap().is_some());
    }
}
