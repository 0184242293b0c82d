//! `error`: reports `Installation Error` for a failed step (also sent by `run`).

use crate::cli::ErrorArgs;
use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::send::send;

/// Sends the event from the command line's fields.
pub fn error(session: &Session, args: ErrorArgs) -> Result<ExitStatus, Error> {
    let ErrorArgs {
        step,
        exit_code,
        message,
    } = args;
    report(
        session,
        Checkpoint::Error {
            step,
            exit_code,
            message,
            duration_ms: None,
        },
    )
}

/// Sends an `Installation Error` and remembers the failed step for `support`.
pub fn report(session: &Session, checkpoint: Checkpoint) -> Result<ExitStatus, Error> {
    let status = send(session, &checkpoint, session.settings.throttle)?;
    if let Checkpoint::Error { step: Some(step), .. } = checkpoint {
        session.remember("the failed step", |saved| saved.last_failed_step = Some(step));
    }
    Ok(status)
}
