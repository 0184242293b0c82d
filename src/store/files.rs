//! File primitives every persistent piece shares: atomic replacement, advisory locks taken with
//! a deadline, reads that neither block nor follow symlinks, and the check that a state directory
//! belongs to this user.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Largest state file read; anything bigger is not ours.
const MAX_READ: u64 = 8 * 1024 * 1024;

/// Flags for every state file opened: never through a symlink, never waiting on a FIFO or device.
#[cfg(unix)]
const SAFE_OPEN: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// When the current call must be done: waits on a lock end there. Unset means "do not wait".
static DEADLINE: Mutex<Option<Instant>> = Mutex::new(None);
/// Set once a lock was not free in time: its holder is stuck (or hostile), so later locks in this
/// process are tried once instead of eating the time left for sending.
static GAVE_UP: AtomicBool = AtomicBool::new(false);
/// Longest wait for a lock. Holders keep one for the few milliseconds of a file rewrite, so a lock
/// busy for longer is not worth the network's time.
const LOCK_PATIENCE: Duration = Duration::from_millis(250);

/// Sets the deadline every later lock wait of this process ends by.
pub fn set_deadline(deadline: Instant) {
    if let Ok(mut slot) = DEADLINE.lock() {
        *slot = Some(deadline);
    }
}

fn deadline() -> Instant {
    DEADLINE.lock().ok().and_then(|d| *d).unwrap_or_else(Instant::now)
}

/// Reads a state file without following a symlink or blocking on a FIFO: only a regular file of
/// sane size is read; anything else is an error that says what it is.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_with(path, false)
}

/// Reads an administrator's file (the policy file) the same way, except that a symlink is
/// followed: it lives where only root writes.
pub fn read_config(path: &Path) -> io::Result<Vec<u8>> {
    read_with(path, true)
}

fn read_with(path: &Path, follow: bool) -> io::Result<Vec<u8>> {
    let file = open_safely(safe(OpenOptions::new().read(true), follow), path)?;
    let mut bytes = Vec::new();
    file.take(MAX_READ + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_READ {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "larger than any state file"));
    }
    Ok(bytes)
}

/// Makes `options` open safely: `SAFE_OPEN`, without `O_NOFOLLOW` when `follow`. On Windows a
/// symbolic link (a reparse point) is opened itself unless `follow`, and `open_safely` refuses it.
fn safe(options: &mut OpenOptions, follow: bool) -> &mut OpenOptions {
    #[cfg(unix)]
    options.custom_flags(if follow {
        SAFE_OPEN & !libc::O_NOFOLLOW
    } else {
        SAFE_OPEN
    });
    #[cfg(windows)]
    if !follow {
        use std::os::windows::fs::OpenOptionsExt;
        options.custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT);
    }
    options
}

/// Opens `path` with the caller's options (made `safe`, so it never blocks) and checks that it is a
/// regular file.
fn open_safely(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let file = options.open(path).map_err(explain_open_error)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", kind_name(kind)),
        ));
    }
    Ok(file)
}

/// The refusals of `SAFE_OPEN` in words.
#[cfg(unix)]
fn explain_open_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) => io::Error::new(io::ErrorKind::InvalidInput, "a symbolic link, not followed"),
        // Opening a FIFO without a reader for writing, without blocking.
        Some(libc::ENXIO) => io::Error::new(io::ErrorKind::InvalidInput, "not a regular file (a FIFO)"),
        _ => e,
    }
}

/// Windows reports a refused open in its own words already.
#[cfg(windows)]
fn explain_open_error(e: io::Error) -> io::Error {
    e
}

/// What a file that is not a regular file is, for messages.
#[cfg(unix)]
fn kind_name(kind: fs::FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

/// What a file that is not a regular file is, for messages.
#[cfg(windows)]
fn kind_name(kind: fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link, not followed"
    } else {
        "a device"
    }
}

/// Why `dir` must not hold this user's state, or `None` when it may. Like OpenSSH's StrictModes:
/// the directory (if it exists) must be a real directory, not a symlink, owned by this user or
/// root and not writable by group or others; every existing ancestor must be owned by this user or
/// root and not writable by others unless sticky (`/tmp`), so nobody else can swap it.
#[cfg(unix)]
pub fn untrusted_dir(dir: &Path) -> Option<String> {
    let dir = std::path::absolute(dir).ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let why = |meta: &fs::Metadata, sticky_ok: bool| {
        let mode = meta.mode() & 0o7777;
        if meta.uid() != me && meta.uid() != 0 {
            Some(format!("owned by uid {}, not by you (uid {me}) or root", meta.uid()))
        } else if mode & 0o022 != 0 && !(sticky_ok && mode & 0o1000 != 0) {
            Some(format!("writable by group or others (mode {mode:04o})"))
        } else {
            None
        }
    };
    match fs::symlink_metadata(&dir) {
        Ok(meta) if meta.file_type().is_symlink() => return Some("it is a symbolic link".into()),
        Ok(meta) if meta.is_dir() => {
            if let Some(why) = why(&meta, false) {
                return Some(format!("it is {why}"));
            }
        }
        // Not there yet (created later, inside a checked parent), or not a directory (fails later).
        _ => {}
    }
    dir.ancestors().skip(1).find_map(|ancestor| {
        // A link someone else planted (in /tmp, say) would choose where the state goes.
        let link = fs::symlink_metadata(ancestor).ok()?;
        if link.file_type().is_symlink() && link.uid() != me && link.uid() != 0 {
            return Some(format!(
                "its parent {} is a symbolic link owned by uid {}, not by you (uid {me}) or root",
                ancestor.display(),
                link.uid()
            ));
        }
        let meta = fs::metadata(ancestor).ok()?;
        why(&meta, true).map(|why| format!("its parent {} is {why}", ancestor.display()))
    })
}

/// Windows: `None`. Ownership and modes are ACLs there; the default state directory is under the
/// per-user %LOCALAPPDATA%, which only the user (and administrators) can write.
#[cfg(windows)]
pub fn untrusted_dir(_: &Path) -> Option<String> {
    None
}

/// Replaces `path` with `data` atomically (temp file in the same directory, then rename), so a
/// reader or a killed process sees either the old content or the new, never a torn file. No fsync:
/// an installer step must not wait on the disk for a telemetry file.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    replace(temp_beside(path, data, mode)?, path)
}

/// Renames `tmp` over `path`.
#[cfg(unix)]
fn replace(tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// Renames `tmp` over `path`. Windows refuses to replace a file that another process has open,
/// and readers of the queue open it without the lock for a moment: try again for up to 250 ms.
#[cfg(windows)]
fn replace(mut tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    for _ in 0..25 {
        match tmp.persist(path) {
            Ok(_) => return Ok(()),
            Err(e) if e.error.kind() == io::ErrorKind::PermissionDenied => {
                tmp = e.file;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e.error),
        }
    }
    tmp.persist(path).map(drop).map_err(|e| e.error)
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
    // Created 0600, so nobody reads it before the mode is set (whatever the umask).
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(parent(path))?;
    set_mode(tmp.as_file(), mode)?;
    tmp.write_all(data)?;
    Ok(tmp)
}

/// Gives `file` the Unix `mode`. Windows has ACLs instead of modes: files there inherit those of
/// the per-user %LOCALAPPDATA% folder they live in, which the user's own programs can read.
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
    #[cfg(windows)]
    {
        let _ = (file, mode);
        Ok(())
    }
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
    /// Takes the lock on `path`, creating the file (mode 0600) if needed. Another holder is waited
    /// for at most `LOCK_PATIENCE` and never past the call's deadline (`set_deadline`), and not
    /// at all once a wait has failed in this process.
    pub fn acquire(path: &Path) -> io::Result<Lock> {
        let now = Instant::now();
        let patience = if GAVE_UP.load(Ordering::Relaxed) {
            Duration::ZERO
        } else {
            LOCK_PATIENCE.min(deadline().saturating_duration_since(now))
        };
        let until = now + patience;
        let file = open_lock_file(path)?;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                GAVE_UP.store(true, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} is held by another process", path.display()),
                ));
            }
            // Short sleeps: holders keep the lock for a file rewrite, so it is free again soon.
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
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
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    open_safely(safe(private(&mut options), false), path)
}

/// Opens `path` for appending, creating it private (0600) if needed: for logs that one write at a
/// time extends, never rewritten.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    open_safely(safe(private(OpenOptions::new().append(true).create(true)), false), path)
}

/// Makes a file created with `options` readable by its owner only (0600). On Windows the ACL of the
/// per-user folder it is created in does that.
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Creates `dir` and its parents. They stay world-readable (0755) because the installed product,
/// possibly running as another user, reads the ID file inside; private files are 0600 themselves.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
        let err = Lock::acquire(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "no deadline set: no wait");
        drop(held);
        assert!(Lock::try_acquire(&path).unwrap().is_some());
    }

    #[test]
    fn reads_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert_eq!(read(&file).unwrap(), b"x");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read(&link).unwrap_err().to_string().contains("symbolic link"));
        assert_eq!(read_config(&link).unwrap(), b"x");
        assert!(Lock::try_acquire(&link).is_err(), "a lock is not taken through a link");
        assert!(read(dir.path()).unwrap_err().to_string().contains("a directory"));
        assert_eq!(
            read(&dir.path().join("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn trusted_and_untrusted_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own");
        fs::create_dir(&own).unwrap();
        assert_eq!(untrusted_dir(&own), None);
        assert_eq!(untrusted_dir(&own.join("not/yet")), None);
        fs::set_permissions(&own, fs::Permissions::from_mode(0o777)).unwrap();
        let why = untrusted_dir(&own).unwrap();
        assert_eq!(why, "it is writable by group or others (mode 0777)");
        let why = untrusted_dir(&own.join("not/yet")).unwrap();
        assert!(why.starts_with("its parent ") && why.contains("mode 0777"), "{why}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&own, &link).unwrap();
        assert_eq!(untrusted_dir(&link).unwrap(), "it is a symbolic link");
    }
}
