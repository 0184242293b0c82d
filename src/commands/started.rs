//! `started`: reports `Installation Started`.

use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::send::send;

/// Sends the event.
pub fn started(session: &Session) -> Result<ExitStatus, Error> {
    send(session, &Checkpoint::Started, session.settings.throttle)
}
