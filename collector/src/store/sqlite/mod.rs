//! The [`Store`] on one SQLite file (WAL mode): `schema.rs` (migrated once, at open),
//! `ingest.rs` (the one-transaction-per-request insert), `report.rs`, `queue.rs` (the relay's
//! queue), `retention.rs`, `export.rs`, and `file.rs` (0600, the deleted-file check).
//!
//! One writer connection (behind a mutex: SQLite has one writer at a time anyway) and a small
//! pool of read-only connections, so reports never wait for inserts.

mod aggregates;
mod codec;
mod export;
mod file;
mod ingest;
mod queue;
mod report;
mod retention;
mod schema;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::sql;
use super::{
    Cell, Counts, DayCount, Dim, ErrorKey, Facts, Forgotten, Forward, Forwarding, Inserted, MessageRow, Prepared,
    Queued, Rebuilt, Retained, Scope, Settled, Status, StepRow, Store, StoreError, StoredEvent, SupportRow, TallyKey,
};
use crate::event::{Event, EventNames};

use file::DbFile;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            Some(ErrorCode::DiskFull) => StoreError::Full,
            _ => StoreError::Database(Box::new(e)),
        }
    }
}

impl Status {
    /// The value of the `installations.status` column (see `schema.rs`).
    fn as_sql(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Abandoned => "abandoned",
        }
    }
}

impl FromSql for Status {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Status> {
        match value.as_str()? {
            "succeeded" => Ok(Status::Succeeded),
            "failed" => Ok(Status::Failed),
            "abandoned" => Ok(Status::Abandoned),
            other => Err(FromSqlError::Other(
                format!("unknown installation status {other:?}").into(),
            )),
        }
    }
}

/// Read-only connections kept for reuse.
const IDLE_READERS: usize = 4;

/// The writer's connection and the backends new events are queued for.
struct Writer {
    conn: Connection,
    /// The dictionaries' codes this connection knows.
    codes: codec::Codes,
    forward: Vec<(String, Option<String>)>,
}

/// A [`Store`] on one SQLite file.
pub struct Sqlite {
    path: std::path::PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    /// The file as opened, checked around every insert (set by [`Sqlite::serve`]).
    file: Option<DbFile>,
    /// `serve --retain`: events dated before it count at their receipt.
    retain: Option<Duration>,
    /// Whether the last insert failed because the disk is full (cleared by one that succeeds).
    full: std::sync::atomic::AtomicBool,
}

impl Sqlite {
    /// Opens (creating if missing, 0600) a database for writing, in WAL mode, with the schema in
    /// place.
    pub fn create(path: &Path, busy_timeout: Duration) -> Result<Sqlite, StoreError> {
        file::create_private(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints normally run from `checkpoint_in_background`; this is only the safety net, so
        // that requests rarely wait for a checkpoint's fsync.
        conn.pragma_update(None, "wal_autocheckpoint", 25_000)?;
        Sqlite::with_writer(path, conn)
    }

    /// [`Sqlite::create`] for `serve`: also watches the file for being deleted or replaced
    /// ([`Store::check`], and around every insert), and checkpoints the write-ahead log on a
    /// background thread.
    /// Events dated before `retain` count at their receipt.
    pub fn serve(path: &Path, busy_timeout: Duration, retain: Option<Duration>) -> Result<Sqlite, StoreError> {
        let mut store = Sqlite::create(path, busy_timeout)?;
        store.file = Some(DbFile::of(path)?);
        store.retain = retain;
        checkpoint_in_background(path, Duration::from_millis(500))?;
        Ok(store)
    }

    /// Opens an existing database (for `report`, `forget`, `export`), bringing an older schema up
    /// to date; fails if the file does not exist.
    pub fn existing(path: &Path) -> Result<Sqlite, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Sqlite::with_writer(path, conn)
    }

    fn with_writer(path: &Path, conn: Connection) -> Result<Sqlite, StoreError> {
        tune(&conn)?;
        schema::migrate(&conn)?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            writer: Mutex::new(Writer {
                conn,
                forward: Vec::new(),
                codes: codec::Codes::default(),
            }),
            readers: Mutex::new(Vec::new()),
            file: None,
            retain: None,
            full: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// [`DbFile::check`] when serving.
    fn check_file(&self) -> Result<(), StoreError> {
        self.file.as_ref().map_or(Ok(()), DbFile::check)
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a pooled read-only connection (opened when none is idle).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(5))?;
                tune(&conn)?;
                conn
            }
        };
        let result = f(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// What [`Store::prepare`] works out on SQLite: each event's [`codec::Encoded`], for a request
/// received at `received_at_ms` (which decides the trusted sent times).
struct Encoding {
    received_at_ms: i64,
    events: Vec<codec::Encoded>,
}

impl Sqlite {
    fn encode(&self, events: &[Event], received_at_ms: i64) -> Encoding {
        let trusted = crate::store::trusted_times(received_at_ms, self.retain);
        Encoding {
            received_at_ms,
            events: events.iter().map(|e| codec::Encoded::of(e, trusted)).collect(),
        }
    }
}

/// Copies the write-ahead log back into the database every `every`, on its own thread and
/// connection, without blocking writers (a passive checkpoint). Runs until the process exits.
fn checkpoint_in_background(path: &Path, every: Duration) -> Result<(), StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_millis(100))?;
    std::thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                // A busy or failed checkpoint is retried next time; the WAL just grows meanwhile.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        })
        .map_err(StoreError::Io)?;
    Ok(())
}

/// A page cache big enough for the indexes' working set. No memory-mapped reads: a report reads
/// aggregates scattered over a large file, and mapped pages fault in one by one (and count as
/// the process's memory); measured, 10% slower and twice the RSS.
fn tune(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

impl Store for Sqlite {
    fn prepare(&self, events: &[Event], received_at_ms: i64) -> Prepared {
        Prepared(Box::new(self.encode(events, received_at_ms)))
    }

    fn insert_prepared(
        &self,
        events: &[Event],
        received_at_ms: i64,
        prepared: &Prepared,
    ) -> Result<Inserted, StoreError> {
        let trusted = crate::store::trusted_times(received_at_ms, self.retain);
        let encoded_here: Encoding;
        let encoded = match prepared.0.downcast_ref::<Encoding>() {
            Some(e) if e.received_at_ms == received_at_ms && e.events.len() == events.len() => &e.events,
            _ => {
                encoded_here = self.encode(events, received_at_ms);
                &encoded_here.events
            }
        };
        let mut writer = self.writer();
        self.check_file()?;
        let Writer { conn, codes, forward } = &mut *writer;
        let inserted = ingest::insert(conn, codes, events, encoded, received_at_ms, trusted, forward);
        if inserted.is_err() {
            codes.forget();
        }
        self.full.store(
            matches!(inserted, Err(StoreError::Full)),
            std::sync::atomic::Ordering::Relaxed,
        );
        let inserted = inserted?;
        self.check_file()?;
        Ok(inserted)
    }

    fn adopt_renamed(&self, names: &EventNames) -> Result<u64, StoreError> {
        let Writer { conn, codes, .. } = &mut *self.writer();
        let renamed = ingest::adopt_renamed(conn, codes, names);
        if renamed.is_err() {
            codes.forget();
        }
        renamed
    }

    fn check(&self) -> Result<(), StoreError> {
        self.check_file()?;
        if self.full.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Full);
        }
        Ok(())
    }

    fn products(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.read(|c| report::distinct_products(c, "tallies", "TRUE", limit))
    }

    fn reported_products(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.read(|c| report::reported_products(c, limit))
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
        self.read(|c| report::busiest_products(c, days, hour, limit))
    }

    fn outcome_cells(&self, scope: &Scope<'_>) -> Result<Vec<Cell>, StoreError> {
        self.read(|c| report::outcome_cells(c, scope))
    }

    fn success_durations(&self, scope: &Scope<'_>) -> Result<Vec<(Facts, Vec<i64>)>, StoreError> {
        self.read(|c| report::success_durations(c, scope))
    }

    fn unlisted_installations(
        &self,
        since_ms: i64,
        until_ms: i64,
        product: Option<&str>,
        listed: &[String],
    ) -> Result<(u64, Vec<(Status, u64)>), StoreError> {
        self.read(|c| report::unlisted_installations(c, since_ms, until_ms, product, listed))
    }

    fn failing_steps(&self, scope: &Scope<'_>, top: usize) -> Result<Vec<StepRow>, StoreError> {
        self.read(|c| report::failing_steps(c, scope, top))
    }

    fn error_messages(&self, scope: &Scope<'_>, top: usize) -> Result<Vec<MessageRow>, StoreError> {
        self.read(|c| report::error_messages(c, scope, top))
    }

    fn support_counts(&self, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| report::support_counts(c, scope))
    }

    fn support_requests(&self, scope: &Scope<'_>, latest: usize) -> Result<Vec<SupportRow>, StoreError> {
        self.read(|c| report::support_requests(c, scope, latest))
    }

    fn support_emails(&self, scope: &Scope<'_>) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| report::support_emails(c, scope))
    }

    fn beacon_unavailable(&self, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| report::beacon_unavailable(c, scope))
    }

    fn active_instances(&self, products: &[String], since_ms: i64) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| aggregates::active_instances(c, products, since_ms))
    }

    fn tallies(
        &self,
        products: &[String],
        dims: &[Dim],
        ranges: &[(i64, i64, i64)],
        durations: bool,
    ) -> Result<Vec<(TallyKey, Counts)>, StoreError> {
        self.read(|c| aggregates::tallies(c, products, dims, ranges, durations))
    }

    fn error_days(
        &self,
        products: &[String],
        from_day: i64,
        until_day: i64,
    ) -> Result<Vec<(ErrorKey, u64, u64)>, StoreError> {
        self.read(|c| aggregates::error_days(c, products, from_day, until_day))
    }

    fn day_counts(
        &self,
        kind: DayCount,
        products: &[String],
        from_day: i64,
        until_day: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| aggregates::day_counts(c, kind, products, from_day, until_day))
    }

    fn rebuild(&self) -> Result<Rebuilt, StoreError> {
        let mut writer = self.writer();
        let tx = writer
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rebuilt = aggregates::rebuild(&tx)?;
        tx.commit()?;
        Ok(rebuilt)
    }

    fn forward_to(&self, backends: &[Forward<'_>]) -> Result<Vec<(String, u64)>, StoreError> {
        let mut writer = self.writer();
        let left = queue::configure(&writer.conn, backends)?;
        writer.forward = backends
            .iter()
            .map(|b| (b.name.to_string(), b.only.map(String::from)))
            .collect();
        Ok(left)
    }

    fn queued(&self, backend: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        self.read(|c| queue::load(c, backend, limit))
    }

    fn settle(&self, backend: &str, events: &[Queued], outcome: &Settled, now_ms: i64) -> Result<(), StoreError> {
        queue::settle(&mut self.writer().conn, backend, events, outcome, now_ms)
    }

    fn forwarding(&self) -> Result<Vec<Forwarding>, StoreError> {
        self.read(queue::status)
    }

    fn forget(&self, id: &str) -> Result<Forgotten, StoreError> {
        retention::forget(&mut self.writer().conn, id)
    }

    fn retain(&self, cutoff_ms: i64) -> Result<Retained, StoreError> {
        retention::retain(&mut self.writer().conn, cutoff_ms)
    }

    fn each_event(&self, each: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>) -> Result<u64, StoreError> {
        self.read(|c| export::each_event(c, each))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Fallbacks, NO_PRODUCT, Protocol, names};
    use rusqlite::params;

    fn event(id: &str, ts: Option<&str>) -> Event {
        Event::new(
            Protocol::Json,
            Some(id.into()),
            "E".into(),
            "i".into(),
            ts.map(String::from),
            serde_json::Map::new(),
            Fallbacks::default(),
        )
    }

    #[test]
    fn passes_the_store_conformance_suite() {
        for (name, check) in crate::store::conformance::ALL {
            let dir = tempfile::tempdir().unwrap();
            let store = Sqlite::create(&dir.path().join("c.sqlite"), Duration::from_secs(1)).unwrap();
            eprintln!("conformance: {name}");
            check(&store);
        }
    }

    #[test]
    fn event_names_fit_in_sql_quotes() {
        for name in [
            names::STARTED,
            names::SUCCESS,
            names::ERROR,
            names::SUPPORT,
            names::INSTANCE_ACTIVE,
            names::BEACON_UNAVAILABLE,
            NO_PRODUCT,
        ] {
            assert!(!name.contains('\'') && !name.contains('{'), "{name}");
        }
        assert_eq!(sql("'{ERROR}' '{NO_PRODUCT}'"), "'Installation Error' '(none)'");
    }

    #[test]
    fn duplicates_are_ignored_and_timestamps_parsed() {
        let dir = std::env::temp_dir().join(format!("bc-store-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.sqlite");
        let _ = std::fs::remove_file(&path);
        let store = Sqlite::create(&path, Duration::from_millis(100)).unwrap();
        // 2026-11-24, a day after the events.
        const RECEIVED: i64 = 1_795_500_000_000;
        let events = [
            event("a", Some("2026-11-23T10:00:00.123Z")),
            event("b", Some("2026-11-23T12:00:00.5+02:00")),
            event("c", Some("not a time")),
        ];
        assert_eq!(
            store.insert(&events, RECEIVED).unwrap(),
            Inserted {
                stored: 3,
                duplicates: 0
            }
        );
        assert_eq!(
            store.insert(&events[..1], RECEIVED).unwrap(),
            Inserted {
                stored: 0,
                duplicates: 1
            }
        );
        let ts: Vec<i64> = store
            .writer()
            .conn
            .prepare("SELECT ts_ms FROM events ORDER BY message_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ts, vec![1_795_428_000_123, 1_795_428_000_500, RECEIVED]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_database_of_the_first_schema_is_brought_up_to_date_and_exports_what_was_sent() {
        let dir = tempfile_dir("backfill");
        let path = dir.join("t.sqlite");
        let id = "1d1bbc9e-745e-49c7-a271-7eef126d3a5a";
        let sent = [
            // message ID, event, installation ID, timestamp as sent, properties
            (
                "0b7e2c7a-1f1e-4c51-9a55-3d1f4c9b2a10",
                names::STARTED,
                id,
                Some("2026-11-23T10:00:00.000Z"),
                r#"{"arch":"x86_64","attempt":1,"cpu_count":4,"os":"debian","product":"acme"}"#,
            ),
            (
                "custom-message-1",
                names::ERROR,
                "inst-7",
                Some("2026-11-23T12:00:00+02:00"),
                r#"{"exit_code":3,"message":"disk full","product":"acme","step":"db"}"#,
            ),
            ("m3", "Custom Thing", id, None, "{}"),
        ];
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema::first_schema()).unwrap();
            for (message_id, name, installation_id, timestamp, properties) in sent {
                conn.execute(
                    "INSERT INTO events (message_id, protocol, event, installation_id, timestamp, ts_ms, received_at,
                         product, os, step, exit_code, properties)
                     VALUES (?1, 'json', ?2, ?3, ?4, 1795428000000, 1795428000100,
                         json_extract(?5, '$.product'), json_extract(?5, '$.os'), json_extract(?5, '$.step'),
                         json_extract(?5, '$.exit_code'), ?5)",
                    params![message_id, name, installation_id, timestamp, properties],
                )
                .unwrap();
            }
        }
        let store = Sqlite::create(&path, Duration::from_millis(100)).unwrap();
        let n: i64 = store
            .writer()
            .conn
            .query_row("SELECT COUNT(*) FROM installations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2, "both installations of acme backfilled");
        let kinds: Vec<String> = store
            .writer()
            .conn
            .prepare("SELECT typeof(message_id) || ' ' || typeof(installation_id) FROM events ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kinds,
            ["blob blob", "text text", "text blob"],
            "UUIDs as their 16 bytes"
        );
        let mut exported = Vec::new();
        store
            .each_event(&mut |e| {
                exported.push((
                    e.message_id,
                    e.event,
                    e.installation_id,
                    e.sent_timestamp,
                    e.properties,
                    e.received_at_ms,
                ));
                Ok(())
            })
            .unwrap();
        let expected: Vec<_> = sent
            .iter()
            .map(|(m, n, i, t, p)| {
                (
                    m.to_string(),
                    n.to_string(),
                    i.to_string(),
                    t.map(String::from),
                    p.to_string(),
                    1_795_428_000_100,
                )
            })
            .collect();
        assert_eq!(exported, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_status_the_schema_computes_is_known() {
        let dir = tempfile_dir("status");
        let store = Sqlite::create(&dir.join("t.sqlite"), Duration::from_millis(100)).unwrap();
        let mut events = Vec::new();
        for (id, name) in [("s", names::SUCCESS), ("f", names::ERROR), ("a", names::STARTED)] {
            let mut e = event(id, Some("2026-11-23T10:00:00Z"));
            e.event = name.into();
            e.installation_id = id.into();
            events.push(e);
        }
        store.insert(&events, 0).unwrap();
        let statuses: Vec<Status> = store
            .writer()
            .conn
            .prepare("SELECT status FROM installations ORDER BY installation_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(statuses, [Status::Abandoned, Status::Failed, Status::Succeeded]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}
