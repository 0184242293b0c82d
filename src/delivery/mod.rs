//! Delivery of one call's events: whatever the outbox holds goes first, then the new events, in as
//! few requests as the backend allows; busy servers are retried with jittered exponential backoff
//! within the call's deadline; what could not go out is queued, what the backend refuses is dropped.

pub mod background;
pub mod notices;
pub mod outbox;
pub mod transport;

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use crate::delivery::outbox::Outbox;
use crate::delivery::transport::{Outcome, Transport};
use crate::event::{self, Event};
use crate::ui::{self, Ui};
use crate::wire::{Request, Target};

/// Attempts per request within one call.
const MAX_ATTEMPTS: u32 = 4;
/// First backoff step; doubled on every retry.
const BACKOFF: Duration = Duration::from_millis(100);
/// Time kept free after a backoff sleep for the retry itself.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// Everything delivery needs, resolved by the caller.
pub struct Delivery<'a> {
    /// Where and how to send.
    pub target: &'a Target,
    /// The deadline-bound HTTP client.
    pub transport: &'a Transport,
    /// The queue, when the state directory is usable.
    pub outbox: Option<&'a Outbox>,
    /// Where warnings go.
    pub ui: Ui,
    /// Print every request to stderr before sending it.
    pub debug: bool,
}

/// What one call achieved.
#[derive(Debug, Default)]
pub struct Report {
    /// Events delivered, queued ones included.
    pub sent: usize,
    /// Events left in the outbox afterwards.
    pub queued: usize,
    /// True when one of the call's new events was neither delivered nor accepted by the backend.
    pub failed: bool,
    /// Bodies of successful responses, for version notices.
    pub responses: Vec<Vec<u8>>,
    /// Another process held the delivery lock, so the queue was left to it.
    pub busy: bool,
}

impl Delivery<'_> {
    /// Delivers queued events (when this process gets the delivery lock) and then `new`.
    pub fn run(&self, new: Vec<Event>) -> Report {
        // An empty queue (no file) needs no lock: the common call opens nothing here.
        let queue = self.outbox.filter(|o| o.path().exists());
        let lock = queue.and_then(|o| o.try_lock_delivery().ok().flatten());
        let busy = queue.is_some() && lock.is_none();
        let mut queued = Vec::new();
        let mut skipped = 0;
        if let (Some(outbox), Some(_)) = (queue, &lock) {
            match outbox.load() {
                Ok(contents) => {
                    queued = contents.events;
                    skipped = contents.skipped;
                }
                Err(e) => self.ui.warn(&format!("cannot read {}: {e}", outbox.path().display())),
            }
            if skipped > 0 {
                self.ui.warn(&format!(
                    "skipped {skipped} unreadable line(s) in {}; delivering the rest",
                    outbox.path().display()
                ));
            }
        }
        let new_ids: HashSet<String> = new.iter().map(|e| e.message_id.clone()).collect();
        let names: Vec<String> = new.iter().map(|e| e.event.clone()).collect();
        let all: Vec<Event> = queued.into_iter().chain(new.iter().cloned()).collect();
        let total = all.len();

        let mut report = Report {
            busy,
            ..Report::default()
        };
        let mut done: HashSet<String> = HashSet::new();
        let mut delivered: HashSet<String> = HashSet::new();
        let (batches, too_large) = self.target.batches(all);
        if !too_large.is_empty() {
            self.ui.warn(&format!(
                "dropped {} event(s) larger than the backend accepts",
                too_large.len()
            ));
            done.extend(too_large.into_iter().map(|e| e.message_id));
        }
        let mut pending_reason = None;
        'batches: for batch in &batches {
            for request in self.target.encode(batch, &event::now_rfc3339()) {
                match self.send_with_retries(&request) {
                    Outcome::Delivered(body) => {
                        report.sent += request.message_ids.len();
                        report.responses.push(body);
                        delivered.extend(request.message_ids.iter().cloned());
                        done.extend(request.message_ids);
                    }
                    Outcome::Rejected(reason) => {
                        self.ui
                            .warn(&format!("{reason}; dropped {} event(s)", request.message_ids.len()));
                        done.extend(request.message_ids);
                    }
                    Outcome::Transient { reason, .. } => {
                        pending_reason = Some(reason);
                        break 'batches;
                    }
                }
            }
        }

        let left: Vec<Event> = batches
            .into_iter()
            .flatten()
            .filter(|e| !done.contains(&e.message_id))
            .collect();
        let unsent_new: Vec<Event> = left
            .iter()
            .filter(|e| new_ids.contains(&e.message_id))
            .cloned()
            .collect();
        report.failed = new_ids.iter().any(|id| !delivered.contains(id));
        report.queued = left.len();
        let what = match names.as_slice() {
            [name] => format!("'{name}'"),
            _ => format!("{total} event(s)"),
        };

        let queued_done = done.iter().any(|id| !new_ids.contains(id));
        let needs_write = queued_done || !unsent_new.is_empty() || skipped > 0;
        match self.outbox {
            Some(outbox) if needs_write => match outbox.update(&done, &unsent_new) {
                Ok(change) => {
                    report.queued = change.queued;
                    if change.dropped > 0 {
                        self.ui.warn(&format!(
                            "outbox full: dropped the {} oldest event(s) to stay under its limits",
                            change.dropped
                        ));
                    }
                    if let Some(reason) = &pending_reason {
                        self.ui.warn(&format!(
                            "could not send {what} to {}: {reason}; queued for the next call ({} in queue)",
                            self.target.url(),
                            change.queued
                        ));
                    }
                }
                Err(e) => {
                    let reason = pending_reason.as_deref().unwrap_or("delivered");
                    self.ui.warn(&format!(
                        "could not send {what} to {}: {reason}; and cannot queue in {}: {e}",
                        self.target.url(),
                        outbox.path().display()
                    ));
                }
            },
            _ => {
                if let Some(reason) = &pending_reason {
                    let tail = if self.outbox.is_some() {
                        ""
                    } else {
                        " (no state directory to queue it in)"
                    };
                    self.ui.warn(&format!(
                        "could not send {what} to {}: {reason}{tail}",
                        self.target.url()
                    ));
                }
            }
        }
        report
    }

    /// Sends one request, retrying busy servers and broken connections while time allows.
    fn send_with_retries(&self, request: &Request) -> Outcome {
        let mut attempt = 0;
        loop {
            if self.debug {
                ui::stderr(&self.target.render(request));
            }
            let outcome = self.transport.send(request);
            attempt += 1;
            let Outcome::Transient {
                retry_after,
                retry_now: true,
                ..
            } = &outcome
            else {
                return outcome;
            };
            let wait = retry_after.unwrap_or_else(|| backoff(attempt));
            if attempt >= MAX_ATTEMPTS || wait + MIN_ATTEMPT > self.transport.remaining() {
                return outcome;
            }
            thread::sleep(wait);
        }
    }
}

/// Full-jitter exponential backoff: a random wait up to 100 ms × 2^(attempt-1).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(6));
    ceiling.mul_f64(fastrand::f64().max(0.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let wait = backoff(attempt);
            let ceiling = BACKOFF * (1 << (attempt - 1).min(6));
            assert!(wait <= ceiling && wait >= ceiling / 10, "{attempt}: {wait:?}");
        }
    }
}
