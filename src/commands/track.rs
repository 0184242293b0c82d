//! `track`: reports any other event, with typed properties.

use crate::cli::TrackArgs;
use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::send::send;

/// Checks the name and properties, then sends the event.
pub fn track(session: &Session, args: TrackArgs) -> Result<ExitStatus, Error> {
    let name = args.event.trim();
    if name.is_empty() {
        return Err(Error::usage(
            "the event name is empty; use e.g. install-beacon track \"Plugin Installed\"",
        ));
    }
    // The email goes only in the Support event, after the user typed it in.
    if args
        .props
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(beacon_wire::prop::EMAIL))
    {
        return Err(Error::usage(
            "--prop email=… is not sent with custom events; use `install-beacon support --email ADDRESS`",
        ));
    }
    let checkpoint = Checkpoint::Custom {
        name: name.to_owned(),
        props: args.props,
    };
    send(session, &checkpoint, session.settings.throttle)
}
