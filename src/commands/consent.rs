//! `consent`: shows the consent state and what decided it, or asks once on the terminal with
//! `--prompt` and saves the answer.

use crate::cli::ConsentArgs;
use crate::consent::{Level, Source, State};
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::tty::{Answer, yes_no};
use crate::ui;

use super::choice;

/// Questions asked before the prompt gives up on unreadable answers.
const TRIES: usize = 3;

/// Shows the state, or asks.
pub fn consent(session: &Session, args: &ConsentArgs) -> Result<ExitStatus, Error> {
    if args.prompt {
        return prompt(session);
    }
    ui::stdout(&format!(
        "{}: decided by {}\n",
        session.decision.state.name(),
        session.decision.source
    ));
    Ok(ExitStatus::Success)
}

/// Asks once whether to share statistics and saves the answer. Skipped when anything but the
/// default already decides (an opt-out, a flag, a saved choice), and without a terminal, where the
/// default applies.
fn prompt(session: &Session) -> Result<ExitStatus, Error> {
    let default = session.settings.consent.default;
    if session.decision.source != Source::Default {
        return Ok(ExitStatus::Success);
    }
    let Some(mut tty) = super::open_tty(session, &format!("telemetry stays {} (default)", default.name())) else {
        return Ok(ExitStatus::Success);
    };
    tty.say(&format!(
        "{} can send anonymous installation statistics: OS and version, CPU and memory size, \
         which step failed, and a random installation ID. Never names, hostnames, IP addresses, \
         paths or command output. Answer e to share only failures and requests for help.\n",
        session.settings.product
    ));
    let question = format!("Share anonymous installation statistics? {} ", hint(default));
    for _ in 0..TRIES {
        let answer = match tty.ask(&question) {
            Answer::Line(answer) => answer,
            Answer::TimedOut | Answer::Closed => return Ok(ExitStatus::Success),
        };
        let level = match (yes_no(&answer), answer.to_ascii_lowercase().as_str(), default) {
            (Some(true), _, _) | (None, "", State::Enabled) => Level::All,
            (Some(false), _, _) | (None, "", State::Disabled) => Level::Off,
            (None, "e" | "errors", _) => Level::Errors,
            _ => continue,
        };
        return choice::save(session, level);
    }
    Ok(ExitStatus::Success)
}

/// The `[Y/n]` hint for a default.
fn hint(default: State) -> &'static str {
    match default {
        State::Enabled => "[Y/n]",
        State::Disabled => "[y/N]",
        State::Undecided | State::ErrorsOnly => "[y/n]",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_show_the_default() {
        assert_eq!(hint(State::Disabled), "[y/N]");
        assert_eq!(hint(State::Enabled), "[Y/n]");
        assert_eq!(hint(State::Undecided), "[y/n]");
    }
}
