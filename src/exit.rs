//! The exit-code contract and the one error type: every command ends in an `ExitStatus` or an
//! `Error`, and `main` prints the error (the only place that does) and turns both into the code.

use std::fmt;
use std::io;
use std::process::ExitCode;

/// How a call ends; the whole exit-code contract of install-beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done, or telemetry failed without `--strict` (it never fails the installer).
    Success,
    /// 1: with `--strict`, an event could not be delivered; or a file the command needs could not
    /// be written.
    Failure,
    /// 2: a mistake in the caller's input.
    Usage,
    /// `run`: the step's own exit code.
    Step(u8),
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::FAILURE,
            ExitStatus::Usage => ExitCode::from(2),
            ExitStatus::Step(code) => ExitCode::from(code),
        }
    }
}

/// Why a command could not do what it was asked.
#[derive(Debug)]
pub enum Error {
    /// The caller's input is wrong; the message names the input and, inline or as a hint, the fix.
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it, printed on its own `hint:` line.
        hint: Option<String>,
    },
    /// A file the command exists to write could not be written.
    Io {
        /// What was being done, e.g. `cannot save the choice in /x`.
        context: String,
        /// The cause.
        source: io::Error,
        /// How to fix it, printed on its own `hint:` line.
        hint: Option<String>,
    },
}

impl Error {
    /// A usage error whose message carries its fix.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    /// A usage error with a separate `hint:` line.
    pub fn usage_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A failed file operation.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
            hint: None,
        }
    }

    /// A failed file operation with a separate `hint:` line.
    pub fn io_with_hint(context: impl Into<String>, source: io::Error, hint: impl Into<String>) -> Error {
        Error::Io {
            context: context.into(),
            source,
            hint: Some(hint.into()),
        }
    }

    /// The exit status this error ends the call with.
    pub fn status(&self) -> ExitStatus {
        match self {
            Error::Usage { .. } => ExitStatus::Usage,
            Error::Io { .. } => ExitStatus::Failure,
        }
    }

    /// The text printed to stderr: `error: …`, then `hint: …` when there is a fix.
    pub fn render(&self) -> String {
        match self {
            Error::Usage { hint: Some(hint), .. } | Error::Io { hint: Some(hint), .. } => {
                format!("error: {self}\nhint: {hint}\n")
            }
            _ => format!("error: {self}\n"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { message, .. } => f.write_str(message),
            Error::Io { context, source, .. } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Usage { .. } => None,
            Error::Io { source, .. } => Some(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering() {
        assert_eq!(Error::usage("missing --x").render(), "error: missing --x\n");
        assert_eq!(
            Error::usage_with_hint("bad endpoint", "pass --endpoint URL").render(),
            "error: bad endpoint\nhint: pass --endpoint URL\n"
        );
        let io = Error::io("cannot save the choice in /x", io::Error::other("disk full"));
        assert_eq!(io.render(), "error: cannot save the choice in /x: disk full\n");
        assert_eq!(io.status(), ExitStatus::Failure);
        let io = Error::io_with_hint("cannot write /x", io::Error::other("a link"), "remove it");
        assert_eq!(io.render(), "error: cannot write /x: a link\nhint: remove it\n");
    }
}
