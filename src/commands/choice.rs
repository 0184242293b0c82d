//! `enable` and `disable`: save the choice to send telemetry, or not, in the state directory.

use crate::consent::{self, Source};
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::no_state_dir;

/// Saves the choice and warns when a stronger source overrides it.
pub fn save(session: &Session, on: bool) -> Result<ExitStatus, Error> {
    // After a prompt, the lock gets a budget of its own.
    session.arm_deadline();
    let s = session.settings;
    let state = s.state_dir.as_ref().ok_or_else(|| {
        no_state_dir(
            s,
            "cannot save the choice",
            "no place to save the choice: set --state-dir DIR (or HOME)",
        )
    })?;
    state
        .update(|saved| saved.consent = Some(on))
        .map_err(|e| Error::io(format!("cannot save the choice in {}", state.path().display()), e))?;
    let word = if on { "enabled" } else { "disabled" };
    session.ui.info(&format!(
        "telemetry {word} for {} (saved in {})",
        s.product,
        state.path().display()
    ));
    let overridden = consent::decide(&consent::Inputs {
        saved: Some(on),
        ..s.consent.clone()
    });
    if let Some(dir) = session.disabled_in.as_ref().filter(|_| on) {
        session.ui.warn(&format!(
            "this choice is overridden by the disable saved in {}; withdraw it with: install-beacon --state-dir {} enable",
            dir.display(),
            dir.display()
        ));
    } else if overridden.source != Source::Saved {
        session
            .ui
            .warn(&format!("this choice is overridden by the {}", overridden.source));
    }
    Ok(ExitStatus::Success)
}
