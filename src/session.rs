//! One call's view of the world, resolved once from the settings: where messages go, the saved
//! state as read at start-up, the consent decision, and the installation ID (looked up at most
//! once, on first use).

use std::cell::OnceCell;
use std::path::PathBuf;
use std::time::Instant;

use uuid::Uuid;

use crate::consent::{self, Decision, Level};
use crate::delivery;
use crate::settings::Settings;
use crate::store::state::Saved;
use crate::store::{files, identity};
use crate::ui::Ui;

/// What every command works with.
pub struct Session<'a> {
    /// The resolved settings.
    pub settings: &'a Settings,
    /// Where messages go.
    pub ui: Ui,
    /// `state.json` as read at start-up; changes go through `StateDir::update`, which rereads it
    /// under the lock.
    pub saved: Saved,
    /// Whether to send, and what decided it.
    pub decision: Decision,
    /// The default state directory when a `disable` saved there overrides this one's choice.
    pub disabled_in: Option<PathBuf>,
    id: OnceCell<Uuid>,
}

impl<'a> Session<'a> {
    /// Reads the saved state, prints the warnings found so far, and decides consent.
    pub fn start(settings: &'a Settings) -> Session<'a> {
        let ui = Ui::new(settings.quiet);
        let mut saved = Saved::default();
        if let Some(state) = &settings.state_dir {
            let warning;
            (saved, warning) = state.load();
            if let Some(w) = warning {
                ui.warn(&w);
            }
        }
        for warning in &settings.warnings {
            ui.warn(warning);
        }
        // A `disable` the user saved in the default state directory counts wherever the installer
        // keeps its own state.
        let disabled_in = (settings.default_state_dir.as_ref())
            .filter(|dir| saved_level(&dir.load().0) == Some(Level::Off))
            .map(|dir| dir.path().to_owned());
        let decision = consent::decide(&consent::Inputs {
            saved: if disabled_in.is_some() {
                Some(Level::Off)
            } else {
                saved_level(&saved)
            },
            ..settings.consent.clone()
        });
        let session = Session {
            settings,
            ui,
            saved,
            decision,
            disabled_in,
            id: OnceCell::new(),
        };
        session.arm_deadline();
        session
    }

    /// Starts this call's time budget (`delivery::arm_deadline`): returns when the network must be done.
    pub fn arm_deadline(&self) -> Instant {
        delivery::arm_deadline(self.settings.timeout)
    }

    /// The saved installation ID, created on first use, looked up once per call. On a dry run
    /// nothing is written; when the file cannot be used the call goes on with a one-time ID (the
    /// same one for the whole call, with one warning).
    pub fn installation_id(&self) -> Uuid {
        *self.id.get_or_init(|| self.resolve_id())
    }

    fn resolve_id(&self) -> Uuid {
        let s = self.settings;
        let Some(path) = &s.id_file else {
            // A refused state directory was already warned about.
            if s.state_dir_refused.is_none() {
                self.ui
                    .warn("no place to keep the installation ID (set --state-dir or HOME); using a one-time ID");
            }
            return Uuid::new_v4();
        };
        // The common case, an existing valid ID, needs no lock: the file is only ever replaced whole.
        match files::read(path) {
            Ok(content) => {
                if let Some(id) = identity::parse(&content) {
                    return id;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // A symlink, a FIFO, a directory: not ours to read or replace.
            Err(e) => {
                self.ui.warn(&format!(
                    "cannot keep the installation ID in {}: {e}; using a one-time ID",
                    path.display()
                ));
                return Uuid::new_v4();
            }
        }
        if s.dry_run {
            return Uuid::new_v4();
        }
        let _lock = s.state_dir.as_ref().and_then(|d| d.lock().ok());
        match identity::load_or_create(path) {
            Ok((id, identity::Origin::Filled)) => {
                self.ui
                    .warn(&format!("{} was empty; wrote a new installation ID", path.display()));
                id
            }
            Ok((id, _)) => id,
            Err(e) => {
                self.ui.warn(&format!(
                    "cannot keep the installation ID in {}: {e}; using a one-time ID",
                    path.display()
                ));
                Uuid::new_v4()
            }
        }
    }

    /// Changes the saved state when telemetry allows what the record serves (a disabled beacon
    /// keeps no records; at errors only, only those a failure report or support request needs:
    /// `error_report`) and this is no dry run; `what` names the record in the warning when it
    /// cannot be written.
    pub fn remember(&self, what: &str, error_report: bool, change: impl FnOnce(&mut Saved)) {
        if !self.decision.allows(error_report) || self.settings.dry_run {
            return;
        }
        let Some(state) = &self.settings.state_dir else { return };
        if let Err(e) = state.update(change) {
            self.ui
                .warn(&format!("cannot record {what} in {}: {e}", state.path().display()));
        }
    }
}

/// The choice saved in a state file.
fn saved_level(saved: &Saved) -> Option<Level> {
    Level::from_saved(saved.consent, saved.errors_only)
}
