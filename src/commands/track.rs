//! `track`: reports any other event, with typed properties.

use crate::cli::TrackArgs;
use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::send::send;
use super::support::validate_email;

/// Checks the name and properties, then sends the event.
pub fn track(session: &Session, args: TrackArgs) -> Result<ExitStatus, Error> {
    let name = args.event.trim();
    if name.is_empty() {
        return Err(Error::usage(
            "the event name is empty; use e.g. install-beacon track \"Plugin Installed\"",
        ));
    }
    // The email goes only in the Support event, after the user typed it in: neither under its own
    // key nor as the value of another (`user_email=`, `contact=`).
    if let Some((key, _)) = args.props.iter().find(|(k, v)| {
        k.eq_ignore_ascii_case(beacon_wire::prop::EMAIL) || v.as_str().is_some_and(|v| validate_email(v).is_ok())
    }) {
        return Err(Error::usage(format!(
            "--prop {key}=… is an email address, which is not sent with custom events; use `install-beacon support --email ADDRESS`"
        )));
    }
    let checkpoint = Checkpoint::Custom {
        name: name.to_owned(),
        props: args.props,
    };
    send(session, &checkpoint, session.settings.throttle)
}
