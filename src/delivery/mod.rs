//! Delivery of one call's events: whatever the outbox holds goes first, then the new events, in as
//! few requests as the backend allows; busy servers are retried with jittered exponential backoff
//! within the call's deadline; what could not go out is queued, what the backend refuses is dropped.
//!
//! Three steps: `plan` (pure: batches), `send` (over any `Transport`: retries), `settle` (the
//! outbox). The `Report` says what happened; the caller decides what to print.

pub mod audit;
pub mod background;
mod dispatch;
pub mod notices;
pub mod outbox;
pub mod resolver;
pub mod roots;
pub mod tls;
pub mod transport;

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::encode::{Endpoint, Request, Target};
use crate::event::{self, Event};
use audit::{AuditLog, Record};
use outbox::Outbox;
use transport::{Attempt, Transport};

pub use dispatch::{Dispatch, arm_deadline};

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
    /// The deadline-bound client.
    pub transport: &'a dyn Transport,
    /// The queue, when the state directory is usable.
    pub outbox: Option<&'a Outbox>,
    /// Called with every request as text before it is sent (`INSTALL_BEACON_DEBUG`).
    pub debug: Option<&'a dyn Fn(&str)>,
    /// Where every event delivered, queued or dropped is recorded, when the state directory is usable.
    pub audit: Option<&'a AuditLog>,
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
    /// What went wrong on the way, in order, for the caller to show.
    pub problems: Vec<Problem>,
    /// Events left in the outbox for other destinations.
    pub foreign: usize,
    /// The endpoint could not be reached (timeout or no route): the reason.
    pub unreachable: Option<String>,
}

/// Something the person running the installer may want to know about a delivery.
#[derive(Debug)]
pub enum Problem {
    /// The outbox could not be read.
    QueueUnreadable(PathBuf, io::Error),
    /// Lines of the outbox were not events.
    SkippedLines(usize, PathBuf),
    /// Events larger than the backend accepts were dropped.
    TooLarge(usize),
    /// The backend refused a request for good; its events were dropped.
    Rejected(String, usize),
    /// The outbox's caps pushed out old events.
    OutboxFull(usize),
    /// The audit log could not be written.
    AuditUnwritable(PathBuf, io::Error),
    /// Events queued for another destination were older than `outbox::MAX_AGE` and dropped.
    Expired(usize),
    /// Events did not go out: `what`, URL, reason, and where they are now.
    NotSent {
        /// `'Installation Started'` or `N event(s)`.
        what: String,
        /// Where they were posted (shown masked).
        url: Endpoint,
        /// Why they did not go out.
        reason: String,
        /// What became of them.
        fate: Fate,
    },
}

/// What became of events that did not go out.
#[derive(Debug)]
pub enum Fate {
    /// In the outbox, which now holds this many events.
    Queued(usize),
    /// Lost: the outbox could not be written.
    QueueFailed(PathBuf, io::Error),
    /// Still in the outbox, where they already were.
    StillQueued,
    /// Lost: there is no state directory.
    NoStateDir,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::QueueUnreadable(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            Problem::SkippedLines(n, path) => write!(
                f,
                "skipped {n} unreadable line(s) in {}; delivering the rest",
                path.display()
            ),
            Problem::TooLarge(n) => write!(f, "dropped {n} event(s) larger than the backend accepts"),
            Problem::Rejected(reason, n) => write!(f, "{reason}; dropped {n} event(s)"),
            Problem::AuditUnwritable(path, e) => write!(f, "cannot record what was sent in {}: {e}", path.display()),
            Problem::OutboxFull(n) => write!(
                f,
                "outbox full: dropped the {n} oldest event(s) to stay under its limits"
            ),
            Problem::Expired(n) => write!(
                f,
                "dropped {n} event(s) queued more than {} days ago for another destination",
                outbox::MAX_AGE.as_secs() / 86_400
            ),
            Problem::NotSent {
                what,
                url,
                reason,
                fate,
            } => {
                write!(f, "could not send {what} to {url}: {reason}")?;
                match fate {
                    Fate::Queued(n) => write!(f, "; queued for the next call ({n} in queue)"),
                    Fate::QueueFailed(path, e) => write!(f, "; and cannot queue in {}: {e}", path.display()),
                    Fate::StillQueued => Ok(()),
                    Fate::NoStateDir => f.write_str(" (no state directory to queue it in)"),
                }
            }
        }
    }
}

/// The requests to make: queued events first, then the new ones, grouped as the backend allows.
#[derive(Debug)]
pub struct Plan {
    /// Batches, oldest events first.
    pub batches: Vec<Vec<Event>>,
    /// Events no request may carry.
    pub too_large: Vec<Event>,
    /// Message IDs of this call's own events.
    pub new_ids: HashSet<String>,
    /// How warnings name the events: the one new event's name, else a count.
    pub what: String,
}

/// Plans the requests; pure.
pub fn plan(target: &Target, queued: Vec<Event>, new: Vec<Event>) -> Plan {
    let new_ids = new.iter().map(|e| e.message_id.clone()).collect();
    let what = match new.as_slice() {
        [one] => format!("'{}'", one.event),
        _ => format!("{} event(s)", queued.len() + new.len()),
    };
    let (batches, too_large) = target.batches(queued.into_iter().chain(new).collect());
    Plan {
        batches,
        too_large,
        new_ids,
        what,
    }
}

/// What sending the plan achieved.
#[derive(Debug, Default)]
pub struct Sent {
    /// Message IDs delivered.
    pub delivered: HashSet<String>,
    /// Message IDs that need no further attempt: delivered, rejected or too large.
    pub done: HashSet<String>,
    /// Why sending stopped early, when it did; the rest waits for a later call.
    pub pending: Option<String>,
    /// Bodies of successful responses.
    pub responses: Vec<Vec<u8>>,
    /// Refusals: reason and number of events.
    pub rejected: Vec<(String, usize)>,
    /// Sending stopped because the endpoint could not be reached at all.
    pub unreachable: bool,
}

/// Makes the plan's requests in order, retrying busy servers while time allows, and stops at the
/// first failure worth retrying later (the backend or the network is down: the rest would fail too).
pub fn send(plan: &Plan, target: &Target, transport: &dyn Transport, debug: Option<&dyn Fn(&str)>) -> Sent {
    let mut sent = Sent::default();
    sent.done.extend(plan.too_large.iter().map(|e| e.message_id.clone()));
    for batch in &plan.batches {
        for request in target.encode(batch, &event::now_rfc3339()) {
            let before_each = || {
                if let Some(show) = debug {
                    show(&target.render(&request));
                }
            };
            let mut attempt = send_with_retries(&request, transport, &before_each);
            // OTLP answers 200 when it refuses records: all of them is a refusal like a 4xx; some
            // of them is reported as one while the request counts as delivered.
            if let Attempt::Delivered(body) = &attempt
                && let Some((reason, refused)) = target.partly_refused(body, request.message_ids.len())
            {
                if refused == request.message_ids.len() {
                    attempt = Attempt::Rejected(reason);
                } else {
                    sent.rejected.push((reason, refused));
                }
            }
            match attempt {
                Attempt::Delivered(body) => {
                    sent.responses.push(body);
                    sent.delivered.extend(request.message_ids.iter().cloned());
                    sent.done.extend(request.message_ids);
                }
                Attempt::Rejected(reason) => {
                    sent.rejected.push((reason, request.message_ids.len()));
                    sent.done.extend(request.message_ids);
                }
                Attempt::Transient {
                    reason, unreachable, ..
                } => {
                    sent.pending = Some(reason);
                    sent.unreachable = unreachable;
                    return sent;
                }
            }
        }
    }
    sent
}

/// Sends one request, retrying busy servers and broken connections while time allows;
/// `before_each` runs before every attempt.
fn send_with_retries(request: &Request, transport: &dyn Transport, before_each: &dyn Fn()) -> Attempt {
    let mut attempt = 0;
    loop {
        before_each();
        let outcome = transport.send(request);
        attempt += 1;
        let Attempt::Transient {
            retry_after,
            retry_now: true,
            ..
        } = &outcome
        else {
            return outcome;
        };
        let wait = retry_after.unwrap_or_else(|| backoff(attempt));
        if attempt >= MAX_ATTEMPTS || wait + MIN_ATTEMPT > transport.remaining() {
            return outcome;
        }
        transport.pause(wait);
    }
}

/// Full-jitter exponential backoff: a random wait up to 100 ms × 2^(attempt-1).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(6));
    ceiling.mul_f64(fastrand::f64().max(0.1))
}

/// The audit lines of one call: every event delivered or dropped, and this call's own events that
/// wait for a later call (queued). Events already queued by an earlier call and still waiting were
/// logged then. Pure.
fn audit_records(target: &Target, plan: &Plan, sent: &Sent) -> Vec<Record> {
    let now = event::now_rfc3339();
    let refused = sent
        .rejected
        .first()
        .map_or("refused by the backend", |(r, _)| r.as_str());
    let mut entries = Vec::new();
    for e in &plan.too_large {
        let reason = Some("larger than the backend accepts");
        entries.push(Record::new(e, audit::Outcome::Dropped, reason, target, &now));
    }
    for e in plan.batches.iter().flatten() {
        let (outcome, reason) = if sent.delivered.contains(&e.message_id) {
            (audit::Outcome::Delivered, None)
        } else if sent.done.contains(&e.message_id) {
            (audit::Outcome::Dropped, Some(refused))
        } else if plan.new_ids.contains(&e.message_id) {
            (audit::Outcome::Queued, sent.pending.as_deref())
        } else {
            continue;
        };
        entries.push(Record::new(e, outcome, reason, target, &now));
    }
    entries
}

/// What the outbox must become after sending; pure.
#[derive(Debug, PartialEq, Eq)]
pub struct Settlement {
    /// New events to queue (not delivered, not refused).
    pub unsent_new: Vec<String>,
    /// Whether the outbox file must be rewritten.
    pub needs_write: bool,
    /// Whether one of the new events failed to reach the backend.
    pub failed: bool,
    /// Events left for a later call.
    pub left: usize,
}

/// Decides the settlement from the plan and what was sent; `stale` lines (unreadable, or queued
/// too long ago for another destination) force a rewrite so they are cleaned up.
pub fn settlement(plan: &Plan, sent: &Sent, stale: usize) -> Settlement {
    let left: Vec<&Event> = plan
        .batches
        .iter()
        .flatten()
        .filter(|e| !sent.done.contains(&e.message_id))
        .collect();
    let unsent_new: Vec<String> = left
        .iter()
        .filter(|e| plan.new_ids.contains(&e.message_id))
        .map(|e| e.message_id.clone())
        .collect();
    let queued_done = sent.done.iter().any(|id| !plan.new_ids.contains(id));
    Settlement {
        needs_write: queued_done || !unsent_new.is_empty() || stale > 0,
        failed: plan.new_ids.iter().any(|id| !sent.delivered.contains(id)),
        left: left.len(),
        unsent_new,
    }
}

impl Delivery<'_> {
    /// Delivers queued events (when this process gets the delivery lock) and then `new`.
    pub fn run(&self, new: Vec<Event>) -> Report {
        let mut report = Report::default();
        // An empty queue (no file) needs no lock: the common call opens nothing here. A symlink
        // counts as a queue, so that reading it is refused with a warning.
        let queue = self.outbox.filter(|o| std::fs::symlink_metadata(o.path()).is_ok());
        let lock = queue.and_then(|o| o.try_lock_delivery().ok().flatten());
        report.busy = queue.is_some() && lock.is_none();
        let mut queued = Vec::new();
        let mut skipped = 0;
        let mut expired = 0;
        if let (Some(outbox), Some(_)) = (queue, &lock) {
            match outbox.load() {
                Ok(contents) => {
                    queued = contents.events;
                    skipped = contents.skipped;
                    expired = contents.expired;
                    report.foreign = contents.foreign;
                }
                Err(e) => report.problems.push(Problem::QueueUnreadable(outbox.path(), e)),
            }
            if skipped > 0 {
                report.problems.push(Problem::SkippedLines(skipped, outbox.path()));
            }
        }

        let plan = plan(self.target, queued, new);
        if !plan.too_large.is_empty() {
            report.problems.push(Problem::TooLarge(plan.too_large.len()));
        }
        let sent = send(&plan, self.target, self.transport, self.debug);
        report.sent = sent.delivered.len();
        report.problems.extend(
            sent.rejected
                .iter()
                .map(|(reason, n)| Problem::Rejected(reason.clone(), *n)),
        );
        let entries = self.audit.map(|_| audit_records(self.target, &plan, &sent));
        self.settle(&plan, sent, skipped + expired, &mut report);
        if let (Some(log), Some(mut entries)) = (self.audit, entries) {
            // New events that stayed behind were queued only if the outbox took them.
            let lost = report.problems.iter().find_map(|p| match p {
                Problem::NotSent {
                    fate: Fate::QueueFailed(..) | Fate::NoStateDir,
                    ..
                } => Some("could not be queued"),
                _ => None,
            });
            if let Some(reason) = lost {
                entries.iter_mut().for_each(|e| e.drop_if_queued(reason));
            }
            if let Err(e) = log.append(&entries) {
                report.problems.push(Problem::AuditUnwritable(log.path().to_owned(), e));
            }
        }
        report
    }

    /// Brings the outbox up to date and adds what became of unsent events to the report.
    fn settle(&self, plan: &Plan, sent: Sent, stale: usize, report: &mut Report) {
        let settlement = settlement(plan, &sent, stale);
        report.failed = settlement.failed;
        report.unreachable = sent.pending.clone().filter(|_| sent.unreachable);
        report.queued = settlement.left;
        report.responses = sent.responses;
        let not_sent = |reason: String, fate| Problem::NotSent {
            what: plan.what.clone(),
            url: self.target.url(),
            reason,
            fate,
        };
        let Some(outbox) = self.outbox.filter(|_| settlement.needs_write) else {
            if let Some(reason) = sent.pending {
                let fate = match self.outbox {
                    Some(_) => Fate::StillQueued,
                    None => Fate::NoStateDir,
                };
                report.problems.push(not_sent(reason, fate));
            }
            return;
        };
        let unsent: HashSet<&String> = settlement.unsent_new.iter().collect();
        let add: Vec<Event> = plan
            .batches
            .iter()
            .flatten()
            .filter(|e| unsent.contains(&e.message_id))
            .cloned()
            .collect();
        match outbox.update(&sent.done, &add) {
            Ok(change) => {
                report.queued = change.queued;
                report.foreign = change.foreign;
                if change.expired > 0 {
                    report.problems.push(Problem::Expired(change.expired));
                }
                if change.dropped > 0 {
                    report.problems.push(Problem::OutboxFull(change.dropped));
                }
                if let Some(reason) = sent.pending {
                    report.problems.push(not_sent(reason, Fate::Queued(change.queued)));
                }
            }
            Err(e) => {
                let reason = sent.pending.unwrap_or_else(|| "delivered".into());
                report
                    .problems
                    .push(not_sent(reason, Fate::QueueFailed(outbox.path(), e)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_wire::Protocol;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    /// A transport that answers from a script and keeps a fake clock: no sockets, no sleeping.
    struct Fake {
        answers: RefCell<VecDeque<Attempt>>,
        requests: RefCell<Vec<Request>>,
        left: Cell<Duration>,
    }

    impl Fake {
        fn new(answers: Vec<Attempt>, left: Duration) -> Fake {
            Fake {
                answers: RefCell::new(answers.into()),
                requests: RefCell::default(),
                left: Cell::new(left),
            }
        }

        fn attempts(&self) -> usize {
            self.requests.borrow().len()
        }
    }

    impl Transport for Fake {
        fn send(&self, request: &Request) -> Attempt {
            self.requests.borrow_mut().push(request.clone());
            self.answers
                .borrow_mut()
                .pop_front()
                .unwrap_or(Attempt::Delivered(Vec::new()))
        }

        fn remaining(&self) -> Duration {
            self.left.get()
        }

        fn pause(&self, wait: Duration) {
            self.left.set(self.left.get().saturating_sub(wait));
        }
    }

    fn busy(retry_after: Option<u64>) -> Attempt {
        Attempt::Transient {
            reason: "server answered HTTP 503".into(),
            retry_after: retry_after.map(Duration::from_secs),
            retry_now: true,
            unreachable: false,
        }
    }

    fn refused() -> Attempt {
        Attempt::Transient {
            reason: "connection refused".into(),
            retry_after: None,
            retry_now: false,
            unreachable: false,
        }
    }

    fn target(protocol: Protocol) -> Target {
        Target {
            protocol,
            endpoint: Endpoint::parse("http://127.0.0.1:9").unwrap(),
            key: Some("k".into()),
            headers: Vec::new(),
        }
    }

    const SECONDS: Duration = Duration::from_secs(3);

    #[test]
    fn queued_events_go_first_in_as_few_requests_as_allowed() {
        let t = target(Protocol::Segment);
        let queued: Vec<Event> = (0..2999).map(Event::numbered).collect();
        let plan = plan(&t, queued, vec![Event::numbered(9999)]);
        assert_eq!(plan.what, "'E'");
        let fake = Fake::new(vec![], SECONDS);
        let sent = send(&plan, &t, &fake, None);
        assert_eq!(fake.attempts(), 2, "3000 Segment events fit in two batches");
        let last = &fake.requests.borrow()[1];
        assert_eq!(last.message_ids.last().map(String::as_str), Some("m9999"));
        assert_eq!(sent.delivered.len(), 3000);
        let s = settlement(&plan, &sent, 0);
        assert!(!s.failed && s.left == 0 && s.needs_write, "{s:?}");

        let json = plan_json(3);
        let fake = Fake::new(vec![], SECONDS);
        send(&json, &target(Protocol::Json), &fake, None);
        assert_eq!(fake.attempts(), 3, "plain JSON: one request per event");
    }

    fn plan_json(n: usize) -> Plan {
        plan(
            &target(Protocol::Json),
            Vec::new(),
            (0..n).map(Event::numbered).collect(),
        )
    }

    #[test]
    fn busy_servers_are_retried_while_time_allows() {
        let p = plan_json(1);
        let t = target(Protocol::Json);
        let fake = Fake::new(vec![busy(None), busy(None)], SECONDS);
        let sent = send(&p, &t, &fake, None);
        assert_eq!(fake.attempts(), 3);
        assert!(sent.pending.is_none() && sent.delivered.contains("m0"));

        let fake = Fake::new((0..10).map(|_| busy(None)).collect(), SECONDS);
        let sent = send(&p, &t, &fake, None);
        assert_eq!(fake.attempts(), MAX_ATTEMPTS as usize, "attempts are capped");
        assert_eq!(sent.pending.as_deref(), Some("server answered HTTP 503"));
        let s = settlement(&p, &sent, 0);
        assert_eq!(s.unsent_new, ["m0"]);
        assert!(s.failed && s.needs_write);

        let fake = Fake::new(vec![busy(Some(5))], SECONDS);
        send(&p, &t, &fake, None);
        assert_eq!(fake.attempts(), 1, "a Retry-After past the deadline is not waited for");
    }

    #[test]
    fn a_refused_connection_stops_the_call_and_queues_the_rest() {
        let p = plan_json(3);
        let fake = Fake::new(vec![Attempt::Delivered(b"{}".to_vec()), refused()], SECONDS);
        let sent = send(&p, &target(Protocol::Json), &fake, None);
        assert_eq!(fake.attempts(), 2, "no retry within the call, no further request");
        assert_eq!(sent.responses, [b"{}".to_vec()]);
        let s = settlement(&p, &sent, 0);
        assert_eq!(s.unsent_new, ["m1", "m2"]);
        assert_eq!(s.left, 2);
    }

    #[test]
    fn refused_events_are_dropped_not_queued() {
        let p = plan_json(1);
        let fake = Fake::new(
            vec![Attempt::Rejected("server rejected the event: HTTP 400".into())],
            SECONDS,
        );
        let sent = send(&p, &target(Protocol::Json), &fake, None);
        assert_eq!(sent.rejected, [("server rejected the event: HTTP 400".to_owned(), 1)]);
        let s = settlement(&p, &sent, 0);
        assert!(s.failed, "a refused new event counts as failed (for --strict)");
        assert!(s.unsent_new.is_empty() && s.left == 0 && !s.needs_write);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let wait = backoff(attempt);
            let ceiling = BACKOFF * (1 << (attempt - 1).min(6));
            assert!(wait <= ceiling && wait >= ceiling / 10, "{attempt}: {wait:?}");
        }
    }
}
