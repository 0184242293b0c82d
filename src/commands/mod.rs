//! One file per command, each a function taking the session and only its own arguments; `main`
//! dispatches. `send` is the path every reporting command shares.

pub mod choice;
pub mod completions;
pub mod consent;
pub mod error;
pub mod flush;
pub mod heartbeat;
pub mod id;
pub mod log;
pub mod run;
mod send;
pub mod shell_init;
pub mod started;
pub mod status;
pub mod success;
pub mod support;
pub mod track;

use crate::exit::Error;
use crate::session::Session;
use crate::settings::Settings;
use crate::tty::Tty;

/// The terminal to ask on, or `None` after saying why nothing is asked (`skipped`).
fn open_tty(session: &Session, skipped: &str) -> Option<Tty> {
    match Tty::open(session.settings.prompt_timeout) {
        Ok(tty) => Some(tty),
        Err(_) => {
            session
                .ui
                .info(&format!("no terminal to ask on (CI, container or cron): {skipped}"));
            None
        }
    }
}

/// Why a command that needs the state directory has none: when one was set but failed the safety
/// checks, a failure (exit 1) `cannot …` naming the reason; when none is set, the usage error
/// `unset` (exit 2).
fn no_state_dir(s: &Settings, cannot: &str, unset: &str) -> Error {
    match &s.state_dir_refused {
        Some(refused) => Error::io(cannot, std::io::Error::other(format!("the state directory {refused}"))),
        None => Error::usage(unset),
    }
}
