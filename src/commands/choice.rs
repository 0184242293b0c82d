//! `enable` and `disable`: save the choice to send telemetry, or not, in the state directory
//! (`consent --prompt` saves its answer here too, errors only included).

use crate::consent::{self, Level, Source};
use crate::exit::{Error, ExitStatus};
use crate::session::Session;

use super::no_state_dir;

/// Saves the choice and warns when a stronger source overrides it.
pub fn save(session: &Session, level: Level) -> Result<ExitStatus, Error> {
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
        .update(|saved| {
            let (on, errors_only) = level.to_saved();
            (saved.consent, saved.errors_only) = (Some(on), errors_only);
        })
        .map_err(|e| Error::io(format!("cannot save the choice in {}", state.path().display()), e))?;
    let word = match level {
        Level::All => "enabled",
        Level::Errors => "set to errors only",
        Level::Off => "disabled",
    };
    session.ui.info(&format!(
        "telemetry {word} for {} (saved in {})",
        s.product,
        state.path().display()
    ));
    let overridden = consent::decide(&consent::Inputs {
        saved: Some(level),
        ..s.consent.clone()
    });
    if let Some(dir) = session.disabled_in.as_ref().filter(|_| level > Level::Off) {
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
