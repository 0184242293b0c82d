//! The [`Store`] on a PostgreSQL database that several `serve` replicas share: the same tables
//! and meaning as `sqlite/`, with what sharing needs. A message ID is stored once whichever
//! replica receives it (`ON CONFLICT DO NOTHING`); the relay's queue rows are claimed (`FOR
//! UPDATE SKIP LOCKED`) so each event is sent once; every write is one transaction, committed
//! before the request is acknowledged. `schema.rs` migrates at open, under an advisory lock.
//!
//! Connections are opened on demand and kept in a small pool (the sync `postgres` client, like
//! `rusqlite`, is called from the HTTP layer's blocking threads).

mod aggregates;
mod ingest;
mod queue;
mod report;
mod retention;
mod schema;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Row};

use super::{
    Cell, Counts, DayCount, Dim, ErrorKey, Facts, Forgotten, Forward, Forwarding, Inserted, MessageRow, Prepared,
    Queued, Rebuilt, Retained, Scope, Settled, Status, StepRow, Store, StoreError, StoredEvent, SupportRow, TallyKey,
};
use crate::event::{Event, EventNames};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        match e.code() {
            Some(
                &SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE | &SqlState::LOCK_NOT_AVAILABLE,
            ) => StoreError::Busy,
            Some(&SqlState::DISK_FULL) => StoreError::Full,
            _ => match std::error::Error::source(&e) {
                // Connection errors say why only in their source ("Connection refused").
                Some(cause) if e.as_db_error().is_none() => StoreError::Database(format!("{e}: {cause}").into()),
                _ => StoreError::Database(Box::new(e)),
            },
        }
    }
}

/// An installation status as `installations.status` spells it.
fn status(text: &str) -> Result<Status, StoreError> {
    match text {
        "succeeded" => Ok(Status::Succeeded),
        "failed" => Ok(Status::Failed),
        "abandoned" => Ok(Status::Abandoned),
        other => Err(StoreError::Database(
            format!("unknown installation status {other:?}").into(),
        )),
    }
}

/// Column `i` of `r`, a `bigint` count.
fn count(r: &Row, i: usize) -> Result<u64, StoreError> {
    Ok(u64::try_from(r.try_get::<_, i64>(i)?).unwrap_or(0))
}

/// Connections kept for reuse.
const IDLE_CONNECTIONS: usize = 8;

/// A [`Store`] on a PostgreSQL database.
pub struct Postgres {
    config: postgres::Config,
    idle: Mutex<Vec<Client>>,
    /// The backends new events are queued for (name, and the only event name it takes, if any).
    forward: Mutex<Vec<(String, Option<String>)>>,
    /// `serve --retain`: events dated before it count at their receipt.
    retain: Option<Duration>,
    /// Who this process is when it claims queued events (unique per process).
    claimant: String,
    /// Whether the last insert failed because the database's disk is full.
    full: AtomicBool,
}

impl Postgres {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`, or `host=/socket/dir` in
    /// its query) and brings the schema up to date. A lock held longer than `busy_timeout` fails
    /// the write as [`StoreError::Busy`].
    pub fn open(url: &str, busy_timeout: Duration) -> Result<Postgres, StoreError> {
        let mut config: postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.options(&format!("-c lock_timeout={}", busy_timeout.as_millis().max(1)));
        let claimant = uuid::Uuid::new_v4().to_string();
        config.application_name(&queue::application_name(&claimant));
        let store = Postgres {
            config,
            idle: Mutex::new(Vec::new()),
            forward: Mutex::new(Vec::new()),
            retain: None,
            claimant,
            full: AtomicBool::new(false),
        };
        store.with(schema::migrate)?;
        Ok(store)
    }

    /// [`Postgres::open`] for `serve`: events dated before `retain` count at their receipt.
    pub fn serve(url: &str, busy_timeout: Duration, retain: Option<Duration>) -> Result<Postgres, StoreError> {
        let mut store = Postgres::open(url, busy_timeout)?;
        store.retain = retain;
        Ok(store)
    }

    /// Runs `f` on a pooled connection (opened when none is idle); a connection that broke is
    /// not kept. The sync client runs its own small runtime, which cannot start on a thread of
    /// the server's: there, `f` runs as a blocking section (`block_in_place`).
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        outside_runtime(|| self.pooled(f))
    }

    fn pooled<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = {
            let mut idle = lock(&self.idle);
            std::iter::from_fn(|| idle.pop()).find(|c| !c.is_closed())
        };
        let mut client = match idle {
            Some(client) => client,
            None => self.config.connect(NoTls)?,
        };
        let result = f(&mut client);
        let mut idle = lock(&self.idle);
        if idle.len() < IDLE_CONNECTIONS && !client.is_closed() {
            idle.push(client);
        }
        result
    }
}

/// Runs `f`, as a blocking section (`block_in_place`) on a thread of the server's runtime.
fn outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing a connection blocks too (the server drops its store on its runtime).
        let idle = std::mem::take(&mut *lock(&self.idle));
        outside_runtime(|| drop(idle));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store for Postgres {
    fn tallies(
        &self,
        products: &[String],
        dims: &[Dim],
        ranges: &[(i64, i64, i64)],
        durations: bool,
    ) -> Result<Vec<(TallyKey, Counts)>, StoreError> {
        self.with(|c| aggregates::tallies(c, products, dims, ranges, durations))
    }

    fn error_days(
        &self,
        products: &[String],
        from_day: i64,
        until_day: i64,
    ) -> Result<Vec<(ErrorKey, u64, u64)>, StoreError> {
        self.with(|c| aggregates::error_days(c, products, from_day, until_day))
    }

    fn day_counts(
        &self,
        kind: DayCount,
        products: &[String],
        from_day: i64,
        until_day: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| aggregates::day_counts(c, kind, products, from_day, until_day))
    }

    fn rebuild(&self) -> Result<Rebuilt, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let rebuilt = aggregates::rebuild(&mut tx)?;
            tx.commit()?;
            Ok(rebuilt)
        })
    }

    fn insert_prepared(&self, events: &[Event], received_at_ms: i64, _: &Prepared) -> Result<Inserted, StoreError> {
        let forward = lock(&self.forward).clone();
        let trusted = crate::store::trusted_times(received_at_ms, self.retain);
        let inserted = self.with(|c| ingest::insert(c, events, received_at_ms, trusted, &forward));
        self.full
            .store(matches!(inserted, Err(StoreError::Full)), Ordering::Relaxed);
        inserted
    }

    fn adopt_renamed(&self, names: &EventNames) -> Result<u64, StoreError> {
        self.with(|c| ingest::adopt_renamed(c, names))
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.full.load(Ordering::Relaxed) {
            return Err(StoreError::Full);
        }
        self.with(|c| Ok(c.simple_query("SELECT 1").map(drop)?))
    }

    fn products(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.with(|c| report::products(c, limit))
    }

    fn reported_products(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.with(|c| report::reported_products(c, limit))
    }

    fn busiest_products(
        &self,
        since_ms: i64,
        until_ms: i64,
        active_since_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let days = crate::store::tally::days_around(since_ms, until_ms);
        let hour = active_since_ms.div_euclid(crate::store::tally::HOUR_MS);
        self.with(|c| report::busiest_products(c, days, hour, limit))
    }

    fn outcome_cells(&self, scope: &Scope<'_>) -> Result<Vec<Cell>, StoreError> {
        self.with(|c| report::outcome_cells(c, scope))
    }

    fn success_durations(&self, scope: &Scope<'_>) -> Result<Vec<(Facts, Vec<i64>)>, StoreError> {
        self.with(|c| report::success_durations(c, scope))
    }

    fn unlisted_installations(
        &self,
        since_ms: i64,
        until_ms: i64,
        product: Option<&str>,
        listed: &[String],
    ) -> Result<(u64, Vec<(Status, u64)>), StoreError> {
        self.with(|c| report::unlisted_installations(c, since_ms, until_ms, product, listed))
    }

    fn failing_steps(&self, scope: &Scope<'_>, top: usize) -> Result<Vec<StepRow>, StoreError> {
        self.with(|c| report::failing_steps(c, scope, top))
    }

    fn error_messages(&self, scope: &Scope<'_>, top: usize) -> Result<Vec<MessageRow>, StoreError> {
        self.with(|c| report::error_messages(c, scope, top))
    }

    fn support_counts(&self, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| report::support_counts(c, scope))
    }

    fn support_requests(&self, scope: &Scope<'_>, latest: usize) -> Result<Vec<SupportRow>, StoreError> {
        self.with(|c| report::support_requests(c, scope, latest))
    }

    fn support_emails(&self, scope: &Scope<'_>) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| report::support_emails(c, scope))
    }

    fn beacon_unavailable(&self, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| report::beacon_unavailable(c, scope))
    }

    fn active_instances(&self, products: &[String], since_ms: i64) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| aggregates::active_instances(c, products, since_ms))
    }

    fn forward_to(&self, backends: &[Forward<'_>]) -> Result<Vec<(String, u64)>, StoreError> {
        let left = self.with(|c| queue::configure(c, backends))?;
        *lock(&self.forward) = backends
            .iter()
            .map(|b| (b.name.to_string(), b.only.map(String::from)))
            .collect();
        Ok(left)
    }

    fn queued(&self, backend: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        self.with(|c| queue::load(c, &self.claimant, backend, limit))
    }

    fn settle(&self, backend: &str, events: &[Queued], outcome: &Settled, now_ms: i64) -> Result<(), StoreError> {
        self.with(|c| queue::settle(c, &self.claimant, backend, events, outcome, now_ms))
    }

    fn forwarding(&self) -> Result<Vec<Forwarding>, StoreError> {
        self.with(queue::status)
    }

    fn forget(&self, id: &str) -> Result<Forgotten, StoreError> {
        self.with(|c| retention::forget(c, id))
    }

    fn retain(&self, cutoff_ms: i64) -> Result<Retained, StoreError> {
        self.with(|c| retention::retain(c, cutoff_ms))
    }

    fn each_event(&self, each: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>) -> Result<u64, StoreError> {
        self.with(|c| retention::each_event(c, each))
    }
}

/// `url` with its password (after `user:` or as `password=`) masked, for messages.
pub fn masked(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme) = out.find("://") {
        let rest = scheme + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@').map(|i| rest + i)
            && let Some(colon) = out[rest..at].find(':').map(|i| rest + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(p) = out.find("password=") {
        let start = p + "password=".len();
        let end = out[start..].find('&').map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_store_conformance_suite() {
        let Some(server) = testkit::Postgres::start() else {
            return;
        };
        for (i, (name, check)) in crate::store::conformance::ALL.iter().enumerate() {
            let url = server.database(&format!("conformance{i}"));
            let store = Postgres::open(&url, Duration::from_secs(1)).unwrap();
            eprintln!("conformance: {name}");
            check(&store);
        }
    }

    #[test]
    fn two_stores_on_one_database_store_an_event_once_and_relay_it_once() {
        let Some(server) = testkit::Postgres::start() else {
            return;
        };
        let url = server.database("replicas");
        let (a, b) = (
            Postgres::open(&url, Duration::from_secs(1)).unwrap(),
            Postgres::open(&url, Duration::from_secs(1)).unwrap(),
        );
        let target = [Forward {
            name: "posthog",
            url: "http://x",
            only: None,
        }];
        a.forward_to(&target).unwrap();
        b.forward_to(&target).unwrap();
        let e = crate::store::conformance::event("m", "i", "E", "2026-11-23T10:00:00Z", serde_json::json!({}));
        assert_eq!(a.insert(std::slice::from_ref(&e), 1).unwrap().stored, 1);
        assert_eq!(b.insert(std::slice::from_ref(&e), 1).unwrap().duplicates, 1);
        let claimed = a.queued("posthog", 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(
            b.queued("posthog", 10).unwrap().is_empty(),
            "claimed by the other replica"
        );
        assert_eq!(
            a.queued("posthog", 10).unwrap(),
            claimed,
            "a replica sees its own claims again"
        );
        a.settle("posthog", &claimed, &Settled::Failed("503".into()), 2)
            .unwrap();
        assert_eq!(
            b.queued("posthog", 10).unwrap(),
            claimed,
            "released for another replica"
        );
    }

    #[test]
    fn sent_timestamps_parse_as_sqlite_parses_them() {
        let Some(server) = testkit::Postgres::start() else {
            return;
        };
        let store = Postgres::open(&server.database("times"), Duration::from_secs(1)).unwrap();
        const RECEIVED: i64 = 1_795_500_000_000;
        let events: Vec<Event> = [
            ("a", "2026-11-23T10:00:00.123Z"),
            ("b", "2026-11-23T12:00:00.5+02:00"),
            ("c", "not a time"),
            ("d", "2026-13-45T10:00:00Z"),
            ("e", "2026-11-23"),
        ]
        .into_iter()
        .map(|(id, ts)| crate::store::conformance::event(id, "i", "E", ts, serde_json::json!({})))
        .collect();
        store.insert(&events, RECEIVED).unwrap();
        let mut ts = Vec::new();
        store
            .each_event(&mut |e| {
                ts.push(e.ts_ms);
                Ok(())
            })
            .unwrap();
        assert_eq!(
            ts,
            [
                1_795_428_000_123,
                1_795_428_000_500,
                RECEIVED,
                RECEIVED,
                1_795_392_000_000
            ]
        );
    }

    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(masked("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(
            masked("postgres://u@h/db?password=s&x=1"),
            "postgres://u@h/db?password=***&x=1"
        );
        assert_eq!(masked("postgres://h/db"), "postgres://h/db");
    }
}
