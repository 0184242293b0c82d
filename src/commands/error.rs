//! `error`: reports `Installation Error` for a failed step (also sent by `run`).

use crate::cli::ErrorArgs;
use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::send::send;

/// Sends the event from the command line's fields, completed by the failure `run
/// --report-on-exit` kept for the same step (its exit code, when none is given, and duration).
pub fn error(session: &Session, args: ErrorArgs) -> Result<ExitStatus, Error> {
    let ErrorArgs {
        step,
        exit_code,
        message,
    } = args;
    let pending = session
        .saved
        .pending_failure
        .as_ref()
        .filter(|p| step.as_ref().is_none_or(|s| *s == p.step));
    report(
        session,
        Checkpoint::Error {
            step: step.or_else(|| pending.map(|p| p.step.clone())),
            exit_code: exit_code.or(pending.map(|p| p.exit_code)),
            message,
            duration_ms: pending.map(|p| p.duration_ms),
        },
    )
}

/// Sends an `Installation Error` and remembers the failed step for `support`; a failure kept
/// for later is reported now.
pub fn report(session: &Session, checkpoint: Checkpoint) -> Result<ExitStatus, Error> {
    let status = send(session, &checkpoint, session.settings.throttle)?;
    if let Checkpoint::Error { step: Some(step), .. } = checkpoint {
        session.remember("the failed step", true, |saved| {
            saved.last_failed_step = Some(step);
            saved.pending_failure = None;
        });
    }
    Ok(status)
}
