//! How an event changes its installation, in one place for every store: a store loads the
//! installation's row, [`Installation::apply`]s the event, writes the row back, and hands the row
//! before and after to [`Tallies`](super::tally::Tallies), which turns the difference into the
//! changes of the report's aggregates.
//!
//! An installation's outcome is that of its latest attempt: an event of a later attempt starts
//! the attempt over (the outcome so far is counted in `earlier_succeeded` or `earlier_failed`),
//! one of an earlier attempt leaves the outcome alone, one of the same attempt is folded in.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::tally::Tallies;
use crate::clock::DAY_MS;
use crate::event::{Event, NO_PRODUCT, names};
use crate::store::Status;

/// What of a stored event goes into `installations` (Started, Success, Error) or `instances`
/// (Instance Active), and into the daily counts (Error, Support, Beacon Unavailable).
#[derive(Debug, Clone, Copy)]
pub struct Fold<'a> {
    pub event: &'a str,
    pub product: Option<&'a str>,
    pub installation_id: &'a str,
    pub os: Option<&'a str>,
    pub os_version: Option<&'a str>,
    pub product_version: Option<&'a str>,
    pub ts: i64,
    pub duration_ms: Option<i64>,
    pub arch: Option<&'a str>,
    pub container: Option<&'a str>,
    pub ci: Option<bool>,
    pub agent: Option<&'a str>,
    pub install_method: Option<&'a str>,
    pub attempt: Option<i64>,
    pub step: Option<&'a str>,
    pub exit_code: Option<i64>,
    pub message: Option<&'a str>,
}

impl<'a> Fold<'a> {
    /// The fold of `e`, stored at `ts`.
    pub fn of(e: &'a Event, ts: i64) -> Fold<'a> {
        Fold {
            event: &e.event,
            product: e.product.as_deref(),
            installation_id: &e.installation_id,
            os: e.os.as_deref(),
            os_version: e.os_version.as_deref(),
            product_version: e.product_version.as_deref(),
            ts,
            duration_ms: e.duration_ms,
            arch: e.arch.as_deref(),
            container: e.container.as_deref(),
            ci: e.ci,
            agent: e.agent.as_deref(),
            install_method: e.install_method.as_deref(),
            attempt: e.attempt,
            step: e.step.as_deref(),
            exit_code: e.exit_code,
            message: e.properties.get(beacon_wire::prop::MESSAGE).and_then(|m| m.as_str()),
        }
    }

    /// A fold of nothing, to fill in with struct update syntax.
    pub fn empty() -> Fold<'static> {
        Fold {
            event: "",
            product: None,
            installation_id: "",
            os: None,
            os_version: None,
            product_version: None,
            ts: 0,
            duration_ms: None,
            arch: None,
            container: None,
            ci: None,
            agent: None,
            install_method: None,
            attempt: None,
            step: None,
            exit_code: None,
            message: None,
        }
    }

    /// The product it counts under.
    pub fn product(&self) -> &'a str {
        self.product.unwrap_or(NO_PRODUCT)
    }

    /// Whether it changes an installation (Started, Success, Error).
    pub fn is_installation(&self) -> bool {
        matches!(self.event, names::STARTED | names::SUCCESS | names::ERROR)
    }

    fn at(&self, name: &str) -> Option<i64> {
        (self.event == name).then_some(self.ts)
    }
}

/// One row of `installations`: an installation ID of one product, folded from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub product: String,
    pub installation_id: String,
    pub os: String,
    pub os_version: String,
    pub product_version: String,
    pub arch: String,
    pub container: String,
    pub ci: bool,
    pub agent: String,
    pub install_method: String,
    pub first_at: i64,
    pub started_at: Option<i64>,
    pub success_at: Option<i64>,
    pub error_at: Option<i64>,
    pub success_duration: Option<i64>,
    pub attempt: i64,
    pub earlier_succeeded: i64,
    pub earlier_failed: i64,
    /// The (step, exit code) pairs it failed at, one `step\u{1f}code` per line (at most
    /// [`MAX_ERROR_STEPS`]), so that a failing step counts each installation once.
    pub error_steps: String,
}

/// Failing steps remembered per installation; past them, an error counts as a new one.
const MAX_ERROR_STEPS: usize = 16;

impl Installation {
    /// The installation a first event creates.
    pub fn new(f: &Fold<'_>) -> Installation {
        Installation {
            product: f.product().to_string(),
            installation_id: f.installation_id.to_string(),
            os: f.os.unwrap_or("unknown").to_string(),
            os_version: f.os_version.unwrap_or("").to_string(),
            product_version: f.product_version.unwrap_or("unknown").to_string(),
            arch: f.arch.unwrap_or("unknown").to_string(),
            container: f.container.unwrap_or("unknown").to_string(),
            ci: f.ci.unwrap_or(false),
            agent: f.agent.unwrap_or("").to_string(),
            install_method: f.install_method.unwrap_or("unknown").to_string(),
            first_at: f.ts,
            started_at: f.at(names::STARTED),
            success_at: f.at(names::SUCCESS),
            error_at: f.at(names::ERROR),
            success_duration: f.at(names::SUCCESS).and(f.duration_ms),
            attempt: f.attempt.unwrap_or(1),
            earlier_succeeded: 0,
            earlier_failed: 0,
            error_steps: String::new(),
        }
    }

    /// Folds one more event of it in.
    pub fn apply(&mut self, f: &Fold<'_>) {
        let set = |field: &mut String, v: Option<&str>| {
            if let Some(v) = v {
                v.clone_into(field);
            }
        };
        set(&mut self.os, f.os);
        set(&mut self.os_version, f.os_version);
        set(&mut self.product_version, f.product_version);
        set(&mut self.arch, f.arch);
        set(&mut self.container, f.container);
        set(&mut self.agent, f.agent);
        set(&mut self.install_method, f.install_method);
        self.ci = f.ci.unwrap_or(self.ci);
        self.first_at = self.first_at.min(f.ts);
        let attempt = f.attempt.unwrap_or(1);
        let (started, success, error) = (f.at(names::STARTED), f.at(names::SUCCESS), f.at(names::ERROR));
        if attempt > self.attempt {
            match self.status() {
                Status::Succeeded => self.earlier_succeeded += 1,
                Status::Failed => self.earlier_failed += 1,
                Status::Abandoned => {}
            }
            self.attempt = attempt;
            self.started_at = started;
            self.success_at = success;
            self.error_at = error;
            self.success_duration = success.and(f.duration_ms);
        } else if attempt == self.attempt {
            if success.is_some() && self.success_at.is_none_or(|old| success >= Some(old)) {
                self.success_duration = f.duration_ms;
            }
            self.started_at = min_some(self.started_at, started);
            self.success_at = self.success_at.max(success);
            self.error_at = self.error_at.max(error);
        }
    }

    /// Remembers that it failed at `step` with `code`; whether that is new.
    pub fn failed_at(&mut self, step: &str, code: Option<i64>) -> bool {
        let entry = format!("{step}\u{1f}{}", code.map_or(String::new(), |c| c.to_string()));
        if self.error_steps.lines().any(|l| l == entry) {
            return false;
        }
        if self.error_steps.lines().count() < MAX_ERROR_STEPS && !entry.contains('\n') {
            if !self.error_steps.is_empty() {
                self.error_steps.push('\n');
            }
            self.error_steps.push_str(&entry);
        }
        true
    }

    /// Where it stands: the outcome of its latest attempt.
    pub fn status(&self) -> Status {
        match (self.success_at, self.error_at) {
            (s, Some(e)) if s.is_none_or(|s| s < e) => Status::Failed,
            (Some(_), _) => Status::Succeeded,
            _ => Status::Abandoned,
        }
    }

    /// How long its successful attempt took: as sent, else from its Started to its Success.
    pub fn duration(&self) -> Option<i64> {
        if self.status() != Status::Succeeded {
            return None;
        }
        self.success_duration
            .or_else(|| Some(self.success_at? - self.started_at?))
    }

    /// The UTC day it was first seen.
    pub fn start_day(&self) -> i64 {
        self.first_at.div_euclid(DAY_MS)
    }

    /// The UTC day of its outcome, if it has one.
    pub fn outcome_day(&self) -> Option<i64> {
        match self.status() {
            Status::Failed => self.error_at,
            Status::Succeeded => self.success_at,
            Status::Abandoned => None,
        }
        .map(|at| at.div_euclid(DAY_MS))
    }
}

/// What one transaction does to the installations it touches (each row before, and after) and to
/// the aggregates, for a store to write: stores differ in how they load and save rows, not in
/// how events fold.
#[derive(Debug, Default)]
pub struct Changes {
    installations: HashMap<(String, String), (Option<Installation>, Installation)>,
    /// Instances (product, ID): their last activity before and after.
    instances: HashMap<(String, String), (Option<i64>, i64)>,
    /// The changes to the aggregates so far (the installations' go in at [`Changes::finish`]).
    tallies: Tallies,
}

/// What a transaction's events changed, to write.
pub struct Finished {
    pub installations: Vec<Installation>,
    /// (product, installation ID, last activity in ms).
    pub instances: Vec<(String, String, i64)>,
    pub tallies: Tallies,
}

impl Changes {
    /// Folds in a stored event: into its installation (`load` gives the stored row of one this
    /// transaction has not touched yet) and into the daily counts.
    pub fn fold<E>(&mut self, f: &Fold<'_>, load: impl FnOnce() -> Result<Option<Installation>, E>) -> Result<(), E> {
        let mut first_here = false;
        if f.is_installation() {
            let now = match self
                .installations
                .entry((f.product().to_string(), f.installation_id.to_string()))
            {
                Entry::Occupied(o) => {
                    let (_, now) = o.into_mut();
                    now.apply(f);
                    now
                }
                Entry::Vacant(v) => {
                    let old = load()?;
                    let now = old.clone().map_or_else(
                        || Installation::new(f),
                        |mut i| {
                            i.apply(f);
                            i
                        },
                    );
                    &mut v.insert((old, now)).1
                }
            };
            if f.event == names::ERROR {
                first_here = now.failed_at(f.step.unwrap_or("unknown"), f.exit_code);
            }
        }
        self.tallies.event(f, first_here, 1);
        Ok(())
    }

    /// Folds in a stored Instance Active event (`load` gives the stored last activity of an
    /// instance this transaction has not touched yet).
    pub fn instance<E>(&mut self, f: &Fold<'_>, load: impl FnOnce() -> Result<Option<i64>, E>) -> Result<(), E> {
        match self
            .instances
            .entry((f.product().to_string(), f.installation_id.to_string()))
        {
            Entry::Occupied(mut o) => o.get_mut().1 = o.get().1.max(f.ts),
            Entry::Vacant(v) => {
                let old = load()?;
                v.insert((old, old.map_or(f.ts, |old| old.max(f.ts))));
            }
        }
        Ok(())
    }

    /// What changed: the installations and the instances (product, ID, last activity) to save,
    /// and every change to the aggregates.
    pub fn finish(mut self) -> Finished {
        let mut installations = Vec::new();
        for (old, now) in self.installations.into_values() {
            if old.as_ref() != Some(&now) {
                self.tallies.installation(old.as_ref(), Some(&now));
                installations.push(now);
            }
        }
        let mut instances = Vec::new();
        for ((product, id), (old, now)) in self.instances {
            if old != Some(now) {
                self.tallies.instance(&product, old, Some(now));
                instances.push((product, id, now));
            }
        }
        Finished {
            installations,
            instances,
            tallies: self.tallies,
        }
    }
}

/// The earlier of two optional times (`None` only when both are).
fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(event: &'static str, ts: i64, attempt: Option<i64>) -> Fold<'static> {
        Fold {
            event,
            product: Some("acme"),
            installation_id: "i",
            ts,
            attempt,
            ..Fold::empty()
        }
    }

    #[test]
    fn the_latest_attempt_decides() {
        let mut i = Installation::new(&fold(names::STARTED, 10, Some(1)));
        i.apply(&fold(names::ERROR, 20, Some(1)));
        assert_eq!(i.status(), Status::Failed);
        i.apply(&fold(names::STARTED, 30, Some(2)));
        assert_eq!((i.status(), i.earlier_failed), (Status::Abandoned, 1));
        i.apply(&fold(names::SUCCESS, 40, Some(2)));
        i.apply(&fold(names::ERROR, 50, Some(1)));
        assert_eq!((i.status(), i.duration(), i.attempt), (Status::Succeeded, Some(10), 2));
    }

    #[test]
    fn a_failing_step_counts_once() {
        let mut i = Installation::new(&fold(names::ERROR, 10, None));
        assert!(i.failed_at("db", Some(5)));
        assert!(!i.failed_at("db", Some(5)));
        assert!(i.failed_at("db", None));
        assert!(i.failed_at("net", Some(5)));
    }
}
