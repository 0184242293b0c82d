//! The collector's storage boundary: one [`Store`] trait, named after what the server needs
//! (store a request's events, count installations for a report, drain the relay's queue, forget,
//! retain, export), with typed rows in and out. The rest of the collector sees no SQL.
//!
//! `sqlite/` is the embedded implementation (one file, WAL); `postgres/` the one several
//! replicas share ([`postgres_url`] tells which a `--db` names).

#[cfg(test)]
pub(crate) mod conformance;
pub mod export;
pub(crate) mod fold;
pub mod postgres;
pub mod retention;
mod rows;
pub mod seed;
pub mod sqlite;
pub mod tally;

use std::time::Duration;

use crate::clock::DAY_MS;
use crate::event::{Event, EventNames, NO_PRODUCT, names};

pub use tally::{Counts, DayCount, Dim, ErrorKey, Periods, TallyKey};

pub use rows::{
    Cell, Facts, Forgotten, Forward, Forwarding, Inserted, MessageRow, Queued, Rebuilt, Retained, Scope, Settled,
    Status, StepRow, StoredEvent, SupportRow,
};

/// The span of event times trusted for an event received at `received_ms`: at most a day ahead
/// (clock skew) and, with a retention, no older than it. An event dated outside it counts at
/// `received_ms` (its sent timestamp is kept as sent), so a batch dated years ahead or back
/// cannot rewrite the report's recent days nor slip past retention.
pub fn trusted_times(received_ms: i64, retain: Option<Duration>) -> (i64, i64) {
    let oldest = retain.map_or(i64::MIN, |keep| {
        received_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
    });
    (oldest, received_ms.saturating_add(DAY_MS))
}

/// SQL with the event names of `beacon_wire` (and [`NO_PRODUCT`]) put in for `{STARTED}`,
/// `{SUCCESS}`, `{ERROR}`, `{SUPPORT}`, `{INSTANCE_ACTIVE}` and `{NO_PRODUCT}`, and the property
/// keys for `{ARCH}`, `{CONTAINER}`, `{CI}`, `{MESSAGE}`, `{AGENT}`, `{INSTALL_METHOD}` and
/// `{ATTEMPT}` (and `{BEACON_UNAVAILABLE}`, `{NO_EXIT_CODE}`), so that no name is written twice. The names hold no `'` (see the test below), so they are safe in SQL quotes.
pub(crate) fn sql(template: &str) -> String {
    template
        .replace("{STARTED}", names::STARTED)
        .replace("{SUCCESS}", names::SUCCESS)
        .replace("{ERROR}", names::ERROR)
        .replace("{SUPPORT}", names::SUPPORT)
        .replace("{INSTANCE_ACTIVE}", names::INSTANCE_ACTIVE)
        .replace("{NO_PRODUCT}", NO_PRODUCT)
        .replace("{ARCH}", beacon_wire::prop::ARCH)
        .replace("{CONTAINER}", beacon_wire::prop::CONTAINER)
        .replace("{CI}", beacon_wire::prop::CI)
        .replace("{MESSAGE}", beacon_wire::prop::MESSAGE)
        .replace("{AGENT}", beacon_wire::prop::AGENT)
        .replace("{INSTALL_METHOD}", beacon_wire::prop::INSTALL_METHOD)
        .replace("{ATTEMPT}", beacon_wire::prop::ATTEMPT)
        .replace("{BEACON_UNAVAILABLE}", names::BEACON_UNAVAILABLE)
        .replace("{NO_EXIT_CODE}", &NO_EXIT_CODE.to_string())
}

/// The columns `installations` computes from its times, in either store's SQL: its status and,
/// if it succeeded, its duration; the day it started, and the day of its outcome (what
/// `Installation::status`, `duration`, `start_day` and `outcome_day` work out). `text` and
/// `integer` are the dialect's column types; `kept` is `VIRTUAL` or `STORED`.
pub(crate) fn outcome_columns(text: &str, integer: &str, kept: &str) -> String {
    format!(
        "status {text} GENERATED ALWAYS AS (
        CASE WHEN error_at IS NOT NULL AND (success_at IS NULL OR success_at < error_at) THEN 'failed'
             WHEN success_at IS NOT NULL THEN 'succeeded'
             ELSE 'abandoned' END) {kept},
    duration {integer} GENERATED ALWAYS AS (
        CASE WHEN success_at IS NOT NULL AND (error_at IS NULL OR success_at >= error_at)
             THEN COALESCE(success_duration, success_at - started_at) END) {kept},
    start_day {integer} GENERATED ALWAYS AS (first_at / 86400000) {kept},
    outcome_day {integer} GENERATED ALWAYS AS (
        CASE WHEN error_at IS NOT NULL AND (success_at IS NULL OR success_at < error_at) THEN error_at
             ELSE success_at END / 86400000) {kept},"
    )
}

/// The aggregate tables (and filters) that count a product with installations, active instances,
/// support requests or unavailable beacons: where both stores find the products to report.
pub(crate) const REPORTED_IN: [(&str, &str); 4] = [
    ("tallies", "TRUE"),
    ("active_hours", "TRUE"),
    ("day_counts", "kind = 0"),
    ("day_counts", "kind = 1"),
];

/// `error_counts.exit_code` of errors sent without one (the column is part of the key, where
/// NULLs would not collide).
pub const NO_EXIT_CODE: i64 = i64::MIN + 1;

/// The `postgres://` (or `postgresql://`) URL a `--db` names, if it names one rather than a
/// SQLite file.
pub fn postgres_url(db: &std::path::Path) -> Option<&str> {
    db.to_str()
        .filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// What a `--db` is called in messages: a PostgreSQL URL without its password.
pub fn db_name(db: &std::path::Path) -> std::path::PathBuf {
    postgres_url(db).map_or_else(|| db.to_path_buf(), |url| postgres::masked(url).into())
}

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// The database stayed locked by another writer past the busy timeout (answer 503).
    Busy,
    /// Anything else the database reported.
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// The database file was deleted or replaced while open (answer 503).
    Gone,
    /// The disk is full: nothing of the write was kept (answer 503, retry later).
    Full,
    /// The operating system refused something (e.g. starting a background thread, writing).
    Io(std::io::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Busy => f.write_str("database is locked by another writer"),
            StoreError::Database(e) => write!(f, "database error: {e}"),
            StoreError::Gone => f.write_str("the database file (or its -wal) was deleted or replaced while open"),
            StoreError::Full => f.write_str("the disk is full"),
            StoreError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What [`Store::prepare`] worked out for a request's events, in the store's own terms.
pub struct Prepared(pub Box<dyn std::any::Any + Send>);

/// Everything the collector keeps: events, the installations folded from them, the relay's
/// queue, and the daily counts retention leaves behind. Every method is one unit of work (a
/// write is one transaction); implementations are shared between threads.
pub trait Store: Send + Sync {
    // Ingest.

    /// Stores `events` in one transaction, skipping message IDs already stored, folds them into
    /// their installations, and queues each new one for every backend of [`Store::forward_to`].
    fn insert(&self, events: &[Event], received_at_ms: i64) -> Result<Inserted, StoreError> {
        self.insert_prepared(events, received_at_ms, &self.prepare(events, received_at_ms))
    }

    /// The work of storing `events` that needs no database (SQLite encodes each event), done
    /// before waiting for the writer so that it goes on while another request is stored.
    fn prepare(&self, _events: &[Event], _received_at_ms: i64) -> Prepared {
        Prepared(Box::new(()))
    }

    /// [`Store::insert`], with the work [`Store::prepare`] did on the same events.
    fn insert_prepared(
        &self,
        events: &[Event],
        received_at_ms: i64,
        prepared: &Prepared,
    ) -> Result<Inserted, StoreError>;

    /// Gives stored events sent under a branded name their standard name and folds them in as if
    /// they had arrived under it; returns how many were renamed.
    fn adopt_renamed(&self, names: &EventNames) -> Result<u64, StoreError>;

    /// Whether the store can still keep what it acknowledges ([`StoreError::Gone`] when not,
    /// [`StoreError::Full`] while the last write failed for want of space).
    fn check(&self) -> Result<(), StoreError>;

    // Report.

    /// Up to `limit` products with installations, by name.
    fn products(&self, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` products with installations, active instances or support requests, by name.
    fn reported_products(&self, limit: usize) -> Result<Vec<String>, StoreError>;

    /// The `limit` products with the most installations first seen in `[since_ms, until_ms)`
    /// (also counting those with instances active since `active_since_ms` or support requests).
    fn busiest_products(
        &self,
        since_ms: i64,
        until_ms: i64,
        active_since_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Installations of the scope (the part of a day a report reads one by one) counted by their
    /// facts, first day, status and outcome day.
    fn outcome_cells(&self, scope: &Scope<'_>) -> Result<Vec<Cell>, StoreError>;

    /// Durations of the scope's succeeded installations, grouped by their facts.
    fn success_durations(&self, scope: &Scope<'_>) -> Result<Vec<(Facts, Vec<i64>)>, StoreError>;

    /// Installations first seen in `[since_ms, until_ms)` of the products not in `listed` (only
    /// `product` when given): how many products, and how many installations per status.
    fn unlisted_installations(
        &self,
        since_ms: i64,
        until_ms: i64,
        product: Option<&str>,
        listed: &[String],
    ) -> Result<(u64, Vec<(Status, u64)>), StoreError>;

    /// The `top` failing (step, exit code) pairs per product, most errors first.
    fn failing_steps(&self, scope: &Scope<'_>, top: usize) -> Result<Vec<StepRow>, StoreError>;

    /// The `top` messages of each failing (product, step, exit code).
    fn error_messages(&self, scope: &Scope<'_>, top: usize) -> Result<Vec<MessageRow>, StoreError>;

    /// Support requests per product.
    fn support_counts(&self, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError>;

    /// The `latest` support requests of each product, newest first.
    fn support_requests(&self, scope: &Scope<'_>, latest: usize) -> Result<Vec<SupportRow>, StoreError>;

    /// The distinct (product, email) of the scope's support requests.
    fn support_emails(&self, scope: &Scope<'_>) -> Result<Vec<(String, String)>, StoreError>;

    /// `Beacon Unavailable` events (the installer could not fetch the beacon) per product.
    fn beacon_unavailable(&self, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError>;

    /// Installations of `products` with an instance active since the start of the hour `since_ms`
    /// falls in, per product.
    fn active_instances(&self, products: &[String], since_ms: i64) -> Result<Vec<(String, u64)>, StoreError>;

    // Report, from the aggregates kept at ingest.

    /// The `tallies` rows of `products` and `dims` in the `(tier, from, to)` period ranges (their
    /// duration histograms left empty unless `durations`).
    fn tallies(
        &self,
        products: &[String],
        dims: &[Dim],
        ranges: &[(i64, i64, i64)],
        durations: bool,
    ) -> Result<Vec<(TallyKey, Counts)>, StoreError>;

    /// Errors of `products` on days `[from_day, until_day)`, summed per (product, step, exit code,
    /// message; `day` is `from_day`): error events, and installations first failing there.
    fn error_days(
        &self,
        products: &[String],
        from_day: i64,
        until_day: i64,
    ) -> Result<Vec<(ErrorKey, u64, u64)>, StoreError>;

    /// Support requests or unavailable beacons of `products` on days `[from_day, until_day)`,
    /// per product.
    fn day_counts(
        &self,
        kind: DayCount,
        products: &[String],
        from_day: i64,
        until_day: i64,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// Computes the aggregates again from the installations and the raw events (the days
    /// retention emptied keep their counts).
    fn rebuild(&self) -> Result<Rebuilt, StoreError>;

    // Relay.

    /// Queues every event stored from now on (of its `only` name) for these backends; returns
    /// the backends no longer named that still have events queued, with how many.
    fn forward_to(&self, backends: &[Forward<'_>]) -> Result<Vec<(String, u64)>, StoreError>;

    /// The oldest `limit` events queued for `backend`.
    fn queued(&self, backend: &str, limit: usize) -> Result<Vec<Queued>, StoreError>;

    /// Records what became of sending `events` to `backend` at `now_ms`.
    fn settle(&self, backend: &str, events: &[Queued], outcome: &Settled, now_ms: i64) -> Result<(), StoreError>;

    /// Forwarding per backend ever configured, as the page and `report` show it.
    fn forwarding(&self) -> Result<Vec<Forwarding>, StoreError>;

    // Erasure, retention, export.

    /// Deletes everything of installation `id` (every product), queued copies included.
    fn forget(&self, id: &str) -> Result<Forgotten, StoreError>;

    /// Deletes events sent before `cutoff_ms`, keeping daily counts of errors and support
    /// requests; old installations keep their outcome under an anonymous ID.
    fn retain(&self, cutoff_ms: i64) -> Result<Retained, StoreError>;

    /// Hands every stored event to `each`, oldest first; returns how many.
    fn each_event(&self, each: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>) -> Result<u64, StoreError>;
}
