//! `log`: what was sent about this installation, from the audit log in the state directory.

use crate::cli::LogArgs;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::ui;

use super::no_state_dir;
use crate::delivery::audit::{self, AuditLog};

/// Prints the last `--limit` entries as a table, or as the JSON lines they are stored as.
pub fn log(session: &Session, args: &LogArgs) -> Result<ExitStatus, Error> {
    let log = session.settings.state_dir.as_ref().map(|d| AuditLog::new(d.path()));
    let log = log.ok_or_else(|| {
        no_state_dir(
            session.settings,
            "cannot read the audit log",
            "no state directory to find the audit log in: set --state-dir DIR (or HOME)",
        )
    })?;
    let (entries, unreadable) = log
        .read()
        .map_err(|e| Error::io(format!("cannot read {}", log.path().display()), e))?;
    if unreadable > 0 {
        session.ui.warn(&format!(
            "skipped {unreadable} unreadable line(s) in {}",
            log.path().display()
        ));
    }
    let shown = &entries[entries.len().saturating_sub(args.limit)..];
    let text = if args.json {
        shown.iter().map(|e| e.to_json() + "\n").collect()
    } else if entries.is_empty() {
        format!("nothing sent yet ({} is empty)\n", log.path().display())
    } else {
        audit::table(shown)
    };
    ui::stdout(&text);
    Ok(ExitStatus::Success)
}
