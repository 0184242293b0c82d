//! The anonymous installation ID: a UUID v4 created once, kept as one line in a file the installed
//! product can read (mode 0644), reused by every later call, replaced only on request. A file that
//! holds anything else (a config file, a binary that `--id-file` was pointed at by mistake) is never
//! overwritten.

use std::io;
use std::path::Path;

use uuid::Uuid;

use crate::store::files;

/// The ID file is read by the installed product, maybe as another user: not a secret.
const MODE: u32 = 0o644;

/// What `load_or_create` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The file held a valid ID.
    Existing,
    /// There was no file; a new ID was written.
    Created,
    /// The file was empty (made in advance for the ID); a new ID was written into it.
    Filled,
}

/// Parses an ID file's content: one UUID, surrounding whitespace ignored.
pub fn parse(content: &[u8]) -> Option<Uuid> {
    let text = std::str::from_utf8(content).ok()?;
    Uuid::try_parse(text.trim()).ok().filter(|id| !id.is_nil())
}

/// Returns the ID in `path`, creating it if missing (or empty). Concurrent callers all get the same
/// ID: a new file is linked into place only if none exists yet. A file holding anything but an ID,
/// and anything but a regular file (a symlink, a FIFO), is an error and left alone.
pub fn load_or_create(path: &Path) -> io::Result<(Uuid, Origin)> {
    // A link fails only when something is at `path`, and then the next read sees it; a few rounds
    // cover a file that another process creates and removes again in between.
    for _ in 0..3 {
        match files::read(path) {
            Ok(content) => {
                return match parse(&content) {
                    Some(id) => Ok((id, Origin::Existing)),
                    None if content.trim_ascii().is_empty() => write_new(path).map(|id| (id, Origin::Filled)),
                    None => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "it holds something other than an installation ID (left untouched)",
                    )),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    files::create_dir(dir)?;
                }
                let id = Uuid::new_v4();
                if files::create_new(path, line(id).as_bytes(), MODE)? {
                    return Ok((id, Origin::Created));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("it keeps appearing and disappearing"))
}

/// Replaces the ID with a new random one.
pub fn reset(path: &Path) -> io::Result<Uuid> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        files::create_dir(dir)?;
    }
    write_new(path)
}

fn write_new(path: &Path) -> io::Result<Uuid> {
    let id = Uuid::new_v4();
    files::atomic_write(path, line(id).as_bytes(), MODE)?;
    Ok(id)
}

fn line(id: Uuid) -> String {
    format!("{}\n", id.hyphenated())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/installation_id");
        let (id, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, Origin::Created);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{id}\n"));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert_eq!(load_or_create(&path).unwrap(), (id, Origin::Existing));
    }

    #[test]
    fn other_content_is_refused_and_left_untouched_an_empty_file_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("installation_id");
        for junk in [
            &b"not-a-uuid\n"[..],
            b"\xff\xfe",
            b"00000000-0000-0000-0000-000000000000",
            b"[server]\nport = 8080\n",
        ] {
            fs::write(&path, junk).unwrap();
            let err = load_or_create(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(fs::read(&path).unwrap(), junk);
        }
        fs::write(&path, " \n").unwrap();
        let (id, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, Origin::Filled);
        assert_eq!(parse(&fs::read(&path).unwrap()), Some(id));
    }

    #[test]
    fn reset_changes_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("installation_id");
        let (old, _) = load_or_create(&path).unwrap();
        let new = reset(&path).unwrap();
        assert_ne!(old, new);
        assert_eq!(load_or_create(&path).unwrap(), (new, Origin::Existing));
    }

    #[test]
    fn links_and_fifos_are_errors_not_loops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("installation_id");
        std::os::unix::fs::symlink("/nonexistent/x", &path).unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    }

    #[test]
    fn accepts_whitespace_around_the_id() {
        let id = Uuid::new_v4();
        assert_eq!(parse(format!("  {id}\r\n").as_bytes()), Some(id));
    }
}
