//! The one entry point of delivery: a `Dispatch` takes a call's events and sees them through:
//! queued for a detached process (`--background`, or an endpoint in an outage), or sent now after
//! whatever is queued; recorded in the audit log; problems shown as warnings, version notices
//! shown, outages saved and ended. Commands resolve what it needs from their settings and pass
//! it down as plain values.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::audit::{self, AuditLog, Record};
use super::outbox::Outbox;
use super::roots::Sources;
use super::transport::Http;
use super::{Delivery, Report, background, notices};
use crate::encode::Target;
use crate::event::{self, Event};
use crate::store::files;
use crate::store::outage::Outage;
use crate::store::state::StateDir;
use crate::store::throttle;
use crate::ui::{self, Ui};

/// Everything one call's delivery needs, resolved by the caller.
#[derive(Clone, Copy)]
pub struct Dispatch<'a> {
    /// Where and how to send.
    pub target: &'a Target,
    /// The state directory, for the outbox, the audit log, outages and notices; `None` keeps no
    /// record of anything (no queue, no log).
    pub state_dir: Option<&'a StateDir>,
    /// `--timeout`: a detached process starts its own budget of this length.
    pub timeout: Duration,
    /// When the network must be done (`arm_deadline`).
    pub deadline: Instant,
    /// Certificates trusted besides the bundled and system roots.
    pub roots: &'a Sources,
    /// Print every request before it is sent (`INSTALL_BEACON_DEBUG`).
    pub debug: bool,
    /// `--background`: queue and return at once, leaving delivery to a detached process.
    pub background: bool,
    /// Where warnings and notices go.
    pub ui: Ui,
    /// The product and version, whose notices the backend may send back.
    pub product: &'a str,
    /// See `product`.
    pub product_version: Option<&'a str>,
    /// The outage saved when the call started, if any.
    pub outage: Option<&'a Outage>,
    /// Environment variables that give a restarted copy of this program the same settings (the
    /// detached process on Windows, where there is no fork).
    pub child_env: &'a [(&'static str, String)],
}

/// Starts a call's time budget of `timeout`: from now on, waits on locks end by then. Returns when
/// the network must be done: a tenth of the budget (at most 100 ms) earlier, so that what could
/// not be sent is still queued in time.
pub fn arm_deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    let deadline = now.checked_add(timeout).unwrap_or(now);
    files::set_deadline(deadline);
    let reserve = (timeout / 10).min(Duration::from_millis(100));
    deadline.checked_sub(reserve).unwrap_or(deadline)
}

/// How the `--background` hand-off went, for the caller that goes on.
enum HandOff {
    /// Queued and forked: return to the installer.
    Parent,
    /// Queued, but no process to deliver it: the event goes out with the queue now.
    Queued,
    /// Not queued: send it now.
    NotQueued,
}

impl Dispatch<'_> {
    /// Delivers a reporting call's `events`. With `--background`, or while the endpoint is in an
    /// outage, they are queued and a detached process delivers the queue; otherwise they go out
    /// now, after whatever is queued. `failed` is set when a new event was neither delivered nor
    /// accepted, and when an outage queued it without trying.
    pub fn send(&self, events: Vec<Event>) -> Report {
        let outbox = self.outbox();
        // Within an outage window the endpoint is not tried: the event is queued as with --background.
        let now = throttle::now_secs();
        let outage = self.outage.filter(|o| o.holds(&self.target.url().to_string(), now));
        let mut events = events;
        if let Some(outbox) = outbox.as_ref().filter(|_| self.background || outage.is_some()) {
            match self.hand_off(outbox, &events) {
                HandOff::Parent => {
                    let Some(outage) = outage.filter(|_| !self.background) else {
                        return Report::default();
                    };
                    let name = events.first().map_or("", |e| e.event.as_str());
                    self.ui.warn(&format!(
                        "queued '{name}': {} {}; a background delivery retries",
                        outage.url,
                        outage.summary(now)
                    ));
                    return Report {
                        failed: true,
                        ..Report::default()
                    };
                }
                HandOff::Queued => events.clear(),
                HandOff::NotQueued => {}
            }
        }
        self.deliver(outbox.as_ref(), events)
    }

    /// Delivers the queue on its own (`flush`); `None` without a state directory, which holds no queue.
    pub fn flush(&self) -> Option<Report> {
        let outbox = self.outbox()?;
        Some(self.deliver(Some(&outbox), Vec::new()))
    }

    /// The outbox as this target sees it, when there is a state directory.
    pub fn outbox(&self) -> Option<Outbox> {
        Some(Outbox::new(self.state_dir?.clone(), self.target.destination()))
    }

    /// `--background`: queues the events and forks a detached process that delivers the queue;
    /// the child never returns.
    fn hand_off(&self, outbox: &Outbox, events: &[Event]) -> HandOff {
        if let Err(e) = outbox.update(&HashSet::new(), events) {
            self.ui.warn(&format!(
                "cannot queue in {} ({e}); sending now",
                outbox.path().display()
            ));
            return HandOff::NotQueued;
        }
        if let Some(log) = self.audit_log() {
            let now = event::now_rfc3339();
            let records: Vec<Record> = events
                .iter()
                .map(|e| {
                    Record::new(
                        e,
                        audit::Outcome::Queued,
                        Some("background delivery"),
                        self.target,
                        &now,
                    )
                })
                .collect();
            if let Err(e) = log.append(&records) {
                let path = log.path().display();
                self.ui.warn(&format!("cannot record what was sent in {path}: {e}"));
            }
        }
        let delivered = background::run_detached(self.child_env, || {
            // Nobody reads this process's stderr: keep version notices for a call that shows them.
            let quiet = Dispatch {
                ui: Ui::new(true),
                deadline: arm_deadline(self.timeout),
                ..*self
            };
            // Events queued by other calls while this one was sending go out too, while time is left.
            loop {
                let report = quiet.deliver(Some(outbox), Vec::new());
                if report.sent == 0 || report.queued == 0 || Instant::now() >= quiet.deadline {
                    break;
                }
            }
        });
        match delivered {
            Ok(()) => HandOff::Parent,
            Err(e) => {
                self.ui
                    .warn(&format!("cannot start background delivery ({e}); sending now"));
                HandOff::Queued
            }
        }
    }

    /// Delivers `events` after whatever is queued, then shows the problems and any notice the
    /// backend sent back.
    fn deliver(&self, outbox: Option<&Outbox>, events: Vec<Event>) -> Report {
        let transport = Http::new(self.deadline, self.roots.clone());
        let show = |text: &str| ui::stderr(text);
        // The log lives beside the outbox: a call that keeps no queue keeps no record either.
        let audit = outbox.and(self.audit_log());
        let delivery = Delivery {
            target: self.target,
            transport: &transport,
            outbox,
            debug: self.debug.then_some(&show as &dyn Fn(&str)),
            audit: audit.as_ref(),
        };
        let report = delivery.run(events);
        for problem in &report.problems {
            self.ui.warn(&problem.to_string());
        }
        if outbox.is_some() {
            self.record_outage(&report);
        }
        notices::show(
            &report.responses,
            self.product,
            self.product_version,
            outbox.and(self.state_dir),
            self.ui,
        );
        report
    }

    fn audit_log(&self) -> Option<AuditLog> {
        self.state_dir.map(|d| AuditLog::new(d.path()))
    }

    /// Saves an outage when the endpoint could not be reached, and ends the one this call started
    /// with once something got through (`store::outage`).
    fn record_outage(&self, report: &Report) {
        let Some(state) = self.state_dir else {
            return;
        };
        if let Some(reason) = &report.unreachable {
            // Masked as `status` shows it: state.json keeps no credentials from the URL.
            let (url, now) = (self.target.url().to_string(), throttle::now_secs());
            let _ = state.update(|saved| {
                saved.outage = Some(Outage::after_failure(saved.outage.as_ref(), &url, reason, now));
            });
        } else if report.sent > 0 && self.outage.is_some() {
            let _ = state.update(|saved| saved.outage = None);
        }
    }
}
