//! `track`: reports any other event, with typed properties.

use beacon_wire::{event, prop};

use crate::cli::TrackArgs;
use crate::event::{Checkpoint, branding};
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
    if let Some((_, command)) = checkpoint_named(name) {
        return Err(Error::usage(format!(
            "the event name \"{name}\" is a checkpoint of install-beacon, which `track` does not send; use `install-beacon {command}`, or another name"
        )));
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
    if let Some((key, _)) = args
        .props
        .iter()
        .find(|(k, _)| prop::ALL.iter().any(|r| k.eq_ignore_ascii_case(r)))
    {
        return Err(Error::usage(format!(
            "--prop {key}=… would overwrite a property install-beacon sends itself ({}); use another key, e.g. --prop app_{key}=…",
            prop::ALL.join(", ")
        )));
    }
    let checkpoint = Checkpoint::Custom {
        name: name.to_owned(),
        props: args.props,
    };
    send(session, &checkpoint, session.settings.throttle)
}

/// The checkpoint, with the command that sends it, whose event name is `name` (standard or, in a
/// branded build, renamed): a collector counts such an event as that checkpoint.
fn checkpoint_named(name: &str) -> Option<(&'static str, &'static str)> {
    let branded = [
        (branding::EVENT_STARTED, "started"),
        (branding::EVENT_SUCCESS, "success"),
        (branding::EVENT_ERROR, "error"),
        (branding::EVENT_SUPPORT, "support"),
    ];
    let standard = event::ALL
        .into_iter()
        .zip(["started", "success", "error", "support", "heartbeat"]);
    branded
        .into_iter()
        .chain(standard)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
}
