//! `success`: reports `Installation Success` with the step durations `run` recorded, then forgets them.

use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::store::steps;

use super::send::send;

/// Sends the event and clears the step records.
pub fn success(session: &Session) -> Result<ExitStatus, Error> {
    let checkpoint = Checkpoint::Success {
        steps: session.saved.steps.clone(),
    };
    let status = send(session, &checkpoint, session.settings.throttle)?;
    session.remember("step times", false, steps::clear);
    Ok(status)
}
