//! The collector's one error type: every command returns it, `main` prints it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::store::StoreError;

/// Why a command failed.
#[derive(Debug)]
pub enum Error {
    /// `report --db` names no file.
    DatabaseMissing(PathBuf),
    /// The database could not be opened or prepared.
    OpenDatabase(PathBuf, StoreError),
    /// Reading or writing the database failed after it was opened.
    Store(StoreError),
    /// The listen address could not be bound.
    Bind(SocketAddr, std::io::Error),
    /// A file named by a secret option (`--key-file`, `--admin-token-file`) cannot be read.
    SecretFile(&'static str, PathBuf, std::io::Error),
    /// A file named by a secret option holds no secret.
    EmptySecretFile(&'static str, PathBuf),
    /// The `--event-name` mapping contradicts itself.
    EventNames(String),
    /// The notices file is unreadable or invalid (the message names the entry).
    Notices(String),
    /// Starting the runtime, serving, or writing the output failed.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DatabaseMissing(path) => write!(f, "database {} does not exist", path.display()),
            Error::OpenDatabase(path, e) => write!(f, "cannot open database {}: {e}", path.display()),
            Error::Store(e) => write!(f, "{e}"),
            Error::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Error::SecretFile(flag, path, e) => write!(f, "cannot read {flag} {}: {e}", path.display()),
            Error::EmptySecretFile(flag, path) => write!(f, "{flag} {} holds no secret", path.display()),
            Error::EventNames(message) => write!(f, "--event-name: {message}"),
            Error::Notices(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Store(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

impl Error {
    /// How to fix it, when we can tell.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::DatabaseMissing(_) => Some("pass the file given to `beacon-collector serve --db`"),
            Error::OpenDatabase(db, _) if crate::store::postgres_url(db).is_some() => {
                Some("check that PostgreSQL is running there and that the user in --db may connect and create tables")
            }
            Error::OpenDatabase(..) => Some("check that the directory of --db exists and is writable"),
            Error::Bind(..) => Some("pick another --listen address, or port 0 for any free port"),
            Error::SecretFile(..) => Some("name a readable file, one secret per line"),
            Error::EmptySecretFile(..) => {
                Some("put the secret on a line of its own (lines starting with # are skipped)")
            }
            Error::EventNames(_) => Some("give each branded name once, as CHECKPOINT=NAME"),
            Error::Notices(_) => Some("fix the file (format: collector/docs/notices.md) or leave out --notices"),
            Error::Store(StoreError::Busy) => Some("retry in a moment"),
            Error::Store(_) | Error::Io(_) => None,
        }
    }

    /// The process exit code: 2 for a mistake in the options (as the parser's own refusals), else 1.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::SecretFile(..) | Error::EmptySecretFile(..) | Error::EventNames(_) | Error::Notices(_) => {
                ExitCode::from(2)
            }
            _ => ExitCode::FAILURE,
        }
    }

    /// Prints `error: MESSAGE` and, when there is a fix, `hint: FIX` on stderr.
    pub fn print(&self) {
        eprintln!("error: {self}");
        if let Some(hint) = self.hint() {
            eprintln!("hint: {hint}");
        }
    }
}
