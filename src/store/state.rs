//! The state directory: where it is, the lock that serialises writers, and the small JSON file of
//! saved choices (consent, first-run notice). A corrupt file is replaced, never fatal.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::files::{self, Lock};
use crate::store::outage::Outage;

/// Saved choices, `state.json` in the state directory (mode 0600).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Saved {
    /// The choice of `enable` (true) or `disable` (false).
    pub consent: Option<bool>,
    /// With `consent` false: the choice was errors only (so a beacon that predates the level reads
    /// it as `disable`, never as `enable`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub errors_only: bool,
    /// When the first-run notice was printed (RFC 3339).
    pub notice_shown_at: Option<String>,
    /// The newest product version already announced.
    pub notified_version: Option<String>,
    /// Notices from the backend already shown.
    pub notices_shown: Vec<String>,
    /// Steps that `run` finished since the last `success`, in order, with their durations.
    pub steps: Vec<StepTime>,
    /// The step named by the last `Installation Error` sent, for `support`.
    pub last_failed_step: Option<String>,
    /// A step `run --report-on-exit` saw fail, not reported yet: the next `error` for that step
    /// carries its exit code and duration.
    pub pending_failure: Option<PendingFailure>,
    /// Events sent with `--once`: `<installation ID> <event name>` → when (Unix seconds).
    pub sent_once: BTreeMap<String, u64>,
    /// When each event was last sent with `--min-interval` or `heartbeat --every` (Unix seconds).
    pub last_sent: BTreeMap<String, u64>,
    /// The endpoint found unreachable, while calls queue without trying.
    pub outage: Option<Outage>,
    /// Installation ID → the number of its latest install attempt (each `started` begins one).
    pub attempts: BTreeMap<String, u64>,
}

/// A failed step kept for the `error` that reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFailure {
    /// Step name, as given to `run --step`.
    pub step: String,
    /// The command's exit code.
    pub exit_code: i64,
    /// Wall time from start to exit, in milliseconds.
    pub duration_ms: u64,
}

/// How long one step took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTime {
    /// Step name, as given to `run --step`.
    pub step: String,
    /// Wall time from start to exit, in milliseconds.
    pub duration_ms: u64,
}

/// A product's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// The state directory at `path` (not created until something is written).
    pub fn new(path: PathBuf) -> StateDir {
        StateDir { path }
    }

    /// Its location.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Default location of the installation ID file.
    pub fn id_file(&self) -> PathBuf {
        self.path.join("installation_id")
    }

    fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// Holds the directory's lock, creating the directory if needed.
    pub fn lock(&self) -> io::Result<Lock> {
        files::create_dir(&self.path)?;
        Lock::acquire(&self.path.join(".lock"))
    }

    /// Reads the saved choices. A missing file is the default; an unreadable or corrupt one is the
    /// default plus a warning to print.
    pub fn load(&self) -> (Saved, Option<String>) {
        match self.read() {
            Ok(saved) => (saved, None),
            Err(warning) => (Saved::default(), Some(warning)),
        }
    }

    /// The saved choices, or a warning saying why they cannot be read.
    fn read(&self) -> Result<Saved, String> {
        let path = self.state_file();
        match files::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("ignoring corrupt {} ({e}); it will be rewritten", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Saved::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Changes the saved choices under the lock: read, modify, atomic rewrite. A corrupt file is
    /// replaced; one that cannot be read (a FIFO, a symlink, no permission) is left alone.
    pub fn update(&self, change: impl FnOnce(&mut Saved)) -> io::Result<Saved> {
        let _lock = self.lock()?;
        let mut saved = match files::read(&self.state_file()) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(e),
        };
        change(&mut saved);
        let mut bytes = serde_json::to_vec_pretty(&saved).map_err(io::Error::other)?;
        bytes.push(b'\n');
        files::atomic_write(&self.state_file(), &bytes, 0o600)?;
        Ok(saved)
    }
}

/// Where the state directory is: `--state-dir`, else the per-user state directory for the product,
/// else `/var/lib/<product>` for root without HOME (an empty or relative HOME counts as none).
/// `None` when nothing fits.
pub fn default_dir(product: &str, home_set: bool, is_root: bool) -> Option<PathBuf> {
    if !home_set && is_root {
        return Some(Path::new("/var/lib").join(product));
    }
    // A relative HOME would put the state under whatever the current directory is.
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .filter(|base| base.is_absolute())
        .map(|base| base.join(product))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn update_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("acme"));
        assert_eq!(state.load(), (Saved::default(), None));
        state.update(|s| s.consent = Some(false)).unwrap();
        assert_eq!(state.load().0.consent, Some(false));
        let mode = fs::metadata(state.path().join("state.json")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().to_owned());
        fs::write(dir.path().join("state.json"), b"{\"consent\": tru").unwrap();
        let (saved, warning) = state.load();
        assert_eq!(saved, Saved::default());
        assert!(warning.unwrap().contains("corrupt"));
        state.update(|s| s.consent = Some(true)).unwrap();
        assert_eq!(
            state.load(),
            (
                Saved {
                    consent: Some(true),
                    ..Saved::default()
                },
                None
            )
        );
    }

    #[test]
    fn root_without_home_uses_var_lib() {
        assert_eq!(default_dir("acme", false, true), Some(PathBuf::from("/var/lib/acme")));
    }
}
