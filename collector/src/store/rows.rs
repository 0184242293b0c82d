//! The typed rows that cross the storage boundary.

use serde::Serialize;

/// Where an installation ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Its last outcome is a Success.
    Succeeded,
    /// It has an Error and no later Success.
    Failed,
    /// It reported neither outcome (yet).
    Abandoned,
}

/// How many events of a request were new and how many had been seen before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Newly stored events.
    pub stored: usize,
    /// Events whose message ID was already stored (acknowledged, not stored again).
    pub duplicates: usize,
}

/// What a report counts: installations first seen in `[since_ms, until_ms)` (and events sent in
/// it) of these products.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Start of the window (ms), inclusive.
    pub since_ms: i64,
    /// End of the window (ms), exclusive.
    pub until_ms: i64,
    /// The products reported on.
    pub products: &'a [String],
}

/// The facts an installation is grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Product name.
    pub product: String,
    /// Whether it ran in CI.
    pub ci: bool,
    /// The AI agent that ran it, empty for none.
    pub agent: String,
    /// OS id.
    pub os: String,
    /// OS version.
    pub os_version: String,
    /// Product version.
    pub version: String,
    /// CPU architecture.
    pub arch: String,
    /// Container runtime, `none` on a plain host.
    pub container: String,
    /// How the product was installed (`curl-sh`, `docker`, ...; `unknown` when not said).
    pub install_method: String,
}

/// Installations sharing their facts, first day, status and outcome day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Their facts.
    pub facts: Facts,
    /// The UTC day they were first seen (days since the epoch).
    pub start_day: i64,
    /// Their status.
    pub status: Status,
    /// The UTC day of their outcome, if any.
    pub outcome_day: Option<i64>,
    /// How many.
    pub installations: u64,
    /// Their install attempts (the latest attempt numbers, summed).
    pub attempts: u64,
    /// Their attempts before the latest that succeeded.
    pub earlier_succeeded: u64,
    /// Their attempts before the latest that failed.
    pub earlier_failed: u64,
    /// How many had a failed attempt before their latest (of a succeeded cell: recovered).
    pub had_failed: u64,
}

/// Errors at one step with one exit code, of one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    /// Product.
    pub product: String,
    /// Step (`unknown` when none was named).
    pub step: String,
    /// Exit code, if sent.
    pub exit_code: Option<i64>,
    /// Error events.
    pub events: u64,
    /// Distinct installations.
    pub installations: u64,
}

/// One message of a failing step, and how often it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// Product.
    pub product: String,
    /// Step.
    pub step: String,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// The message (empty when none was sent).
    pub message: String,
    /// Error events with it.
    pub count: u64,
}

/// One stored support request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportRow {
    /// Product.
    pub product: String,
    /// When it was sent (ms).
    pub ts_ms: i64,
    /// Product version.
    pub product_version: Option<String>,
    /// The step it names.
    pub step: Option<String>,
    /// Installation ID.
    pub installation_id: String,
    /// Contact email.
    pub email: Option<String>,
}

/// An event waiting in the relay's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// The store's own ID of the event.
    pub event_id: i64,
    /// The message ID the client sent (or the one generated at ingest).
    pub message_id: String,
    /// Event name.
    pub event: String,
    /// Installation ID.
    pub installation_id: String,
    /// Event time (ms since the epoch), as parsed at ingest.
    pub ts_ms: i64,
    /// The properties object as sent (JSON text).
    pub properties: String,
}

/// What became of a batch sent to a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The backend took it: dequeue, count as forwarded.
    Forwarded,
    /// The backend refused these events for good: dequeue, count as rejected.
    Rejected(String),
    /// Try again later: keep queued, remember since when it fails.
    Failed(String),
}

/// A queue the relay sends from, as the store fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward<'a> {
    /// The queue's name (the backend's, or one per notification URL).
    pub name: &'a str,
    /// Its URL as shown (masked).
    pub url: &'a str,
    /// Queue only events of this name (`Installation Support` for notifications); all when `None`.
    pub only: Option<&'a str>,
}

/// Forwarding to one backend, as the page and `report` show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Forwarding {
    /// `posthog` or `segment`.
    pub backend: String,
    /// Base URL events go to.
    pub url: String,
    /// Events the backend accepted.
    pub forwarded: u64,
    /// Events still queued.
    pub queued: u64,
    /// Events the backend refused for good (dropped from the queue).
    pub rejected: u64,
    /// When the backend last accepted a batch (UTC).
    pub last_success: Option<String>,
    /// Since when sending fails, while it does (UTC).
    pub failing_since: Option<String>,
    /// The last error, while failing or after a rejection.
    pub last_error: Option<String>,
}

/// What `forget` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Raw events.
    pub events: usize,
    /// Installation rows (one per product it was installed as).
    pub installations: usize,
}

/// What one retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    /// Raw events deleted.
    pub events: usize,
    /// Installations first seen before the cutoff whose ID was dropped.
    pub installations: usize,
}

/// One stored event as `export` writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Message ID.
    pub message_id: String,
    /// Event name.
    pub event: String,
    /// Installation ID.
    pub installation_id: String,
    /// Event time (ms): as sent, or when received if the sent time was not trusted.
    pub ts_ms: i64,
    /// When it was received (ms).
    pub received_at_ms: i64,
    /// The protocol it came in.
    pub protocol: String,
    /// Product.
    pub product: Option<String>,
    /// Product version.
    pub product_version: Option<String>,
    /// OS id.
    pub os: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// Step.
    pub step: Option<String>,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Email (support requests).
    pub email: Option<String>,
    /// Duration.
    pub duration_ms: Option<i64>,
    /// The properties object as sent (JSON text).
    pub properties: String,
    /// The event's own timestamp, as sent (if it sent one).
    pub sent_timestamp: Option<String>,
}

/// What `rebuild` computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Installations counted into `tallies`.
    pub installations: u64,
    /// Raw events counted into the daily counts of errors, support requests and unavailable beacons.
    pub events: u64,
}
