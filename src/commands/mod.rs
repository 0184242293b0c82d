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

use crate::session::Session;
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
