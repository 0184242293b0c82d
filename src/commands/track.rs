//! `track`: reports any other event, with typed properties.

use beacon_wire::{event, prop};

use crate::cli::TrackArgs;
use crate::event::{Checkpoint, branding, scrub};
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::send::send;

/// The longest event name or property key, in characters: names are labels, not payloads.
const MAX_NAME: usize = 200;

/// Checks the name and properties, then sends the event.
pub fn track(session: &Session, args: TrackArgs) -> Result<ExitStatus, Error> {
    let name = args.event.trim();
    if name.is_empty() {
        return Err(Error::usage(
            "the event name is empty; use e.g. install-beacon track \"Plugin Installed\"",
        ));
    }
    let too_long = |what: &str, value: &str| {
        let chars = value.chars().count();
        (chars > MAX_NAME)
            .then(|| Error::usage(format!("the {what} is {chars} characters long; use at most {MAX_NAME}")))
    };
    if let Some(error) = too_long("event name", name) {
        return Err(error);
    }
    if let Some(error) = args.props.iter().find_map(|(k, _)| too_long("property key", k)) {
        return Err(error);
    }
    if name.eq_ignore_ascii_case(event::BEACON_UNAVAILABLE) {
        return Err(Error::usage(format!(
            "the event name \"{name}\" is what fetch-beacon.sh sends when the beacon could not be fetched; use another name"
        )));
    }
    if let Some((_, command)) = checkpoint_named(name) {
        return Err(Error::usage(format!(
            "the event name \"{name}\" is a checkpoint of install-beacon, which `track` does not send; use `install-beacon {command}`, or another name"
        )));
    }
    // The email goes only in the Support event, after the user typed it in: neither under its own
    // key nor in the value of another (`user_email=`, `contact=mailto:…`, `owner=Ada <…>`).
    if let Some((key, _)) = args
        .props
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(beacon_wire::prop::EMAIL) || v.as_str().is_some_and(scrub::has_email))
    {
        return Err(Error::usage(format!(
            "--prop {key}=… holds an email address, which is not sent with custom events; use `install-beacon support --email ADDRESS`"
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
    let commands = ["started", "success", "error", "support", "heartbeat"];
    let branded = branding::CHECKPOINT_NAMES
        .into_iter()
        .zip(commands)
        .map(|((branded, _), command)| (branded, command));
    let standard = event::ALL.into_iter().zip(commands);
    branded.chain(standard).find(|(n, _)| n.eq_ignore_ascii_case(name))
}
