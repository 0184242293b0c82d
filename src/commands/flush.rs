//! `flush`: delivers the queue on its own and says what happened.

use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::ui;

use super::send::{allowed_or_say_why, dispatch, target_or_say_why};

/// Delivers the queued events.
pub fn flush(session: &Session) -> Result<ExitStatus, Error> {
    if !allowed_or_say_why(session, None) {
        return Ok(ExitStatus::Success);
    }
    let s = session.settings;
    let Some(target) = target_or_say_why(session)? else {
        return Ok(ExitStatus::Success);
    };
    // No state directory (none given, or one refused with a warning) holds no queue: nothing to do,
    // and like every delivery problem it must not stop an installer.
    let Some(report) = dispatch(session, &target, session.arm_deadline(), true, &[]).flush() else {
        session
            .ui
            .info("nothing to deliver: without a state directory there is no queue");
        return Ok(ExitStatus::Success);
    };
    if report.busy {
        session
            .ui
            .info("another install-beacon is delivering the queue right now");
    } else if !session.ui.quiet() {
        let foreign = match report.foreign {
            0 => String::new(),
            n => format!(" ({n} more for another destination)"),
        };
        ui::stdout(&format!(
            "sent {} event(s), {} left in the queue{foreign}\n",
            report.sent, report.queued
        ));
    }
    let left = report.queued > 0 && !report.busy;
    Ok(if left && s.strict {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
