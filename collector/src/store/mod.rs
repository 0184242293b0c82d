//! The SQLite event table: schema, indexes and the one-transaction-per-request insert.

pub mod export;
mod file;
pub mod retention;
mod schema;
pub mod seed;

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Statement, params};

use crate::event::{Event, EventNames, NO_PRODUCT, names};

pub use file::DbFile;

/// Why a write failed.
#[derive(Debug)]
pub enum StoreError {
    /// The database stayed locked by another writer past the busy timeout (answer 503).
    Busy,
    /// Anything else SQLite reported.
    Sqlite(rusqlite::Error),
    /// The database file was deleted or replaced while open (answer 503).
    Gone,
    /// The operating system refused something (e.g. starting the checkpoint thread).
    Io(std::io::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Busy => f.write_str("database is locked by another writer"),
            StoreError::Sqlite(e) => write!(f, "database error: {e}"),
            StoreError::Gone => f.write_str("the database file was deleted or replaced while open"),
            StoreError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Where an installation ended up: the `installations.status` column (see `schema.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its last outcome is a Success.
    Succeeded,
    /// It has an Error and no later Success.
    Failed,
    /// It reported neither outcome (yet).
    Abandoned,
}

impl Status {
    /// The value stored in the column.
    pub fn as_sql(self) -> &'static str {
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

/// How many events of a request were new and how many had been seen before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Newly stored events.
    pub stored: usize,
    /// Events whose message ID was already stored (acknowledged, not stored again).
    pub duplicates: usize,
}

/// `ts_ms` is the event's own timestamp parsed by SQLite (ISO 8601, `Z` or `±HH:MM`), else the
/// time it was received. Returns no row for a message ID already stored.
const INSERT: &str = "
INSERT OR IGNORE INTO events (
    message_id, protocol, event, installation_id, timestamp, ts_ms, received_at,
    product, product_version, os, os_version, step, exit_code, email, duration_ms, properties
) VALUES (
    ?1, ?2, ?3, ?4, ?5,
    COALESCE(CAST(round((julianday(?5) - 2440587.5) * 86400000.0) AS INTEGER), ?6), ?6,
    ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
) RETURNING ts_ms";

/// SQL with the event names of `beacon_wire` (and [`NO_PRODUCT`]) put in for `{STARTED}`,
/// `{SUCCESS}`, `{ERROR}`, `{SUPPORT}`, `{INSTANCE_ACTIVE}` and `{NO_PRODUCT}`, and the property
/// keys for `{ARCH}`, `{CONTAINER}`, `{CI}` and `{MESSAGE}`, so that no name is written twice. The names hold no `'` (see the test below), so they are safe in SQL quotes.
pub fn sql(template: &str) -> String {
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
}

/// Folds one Started/Success/Error event (?6 = its time, ?7 = its name) into its installation.
const UPSERT_INSTALLATION: &str = "
INSERT INTO installations (
    product, installation_id, os, os_version, product_version,
    first_at, started_at, success_at, error_at, success_duration, arch, container, ci
) VALUES (
    ?1, ?2, COALESCE(?3, 'unknown'), COALESCE(?4, ''), COALESCE(?5, 'unknown'), ?6,
    CASE WHEN ?7 = '{STARTED}' THEN ?6 END,
    CASE WHEN ?7 = '{SUCCESS}' THEN ?6 END,
    CASE WHEN ?7 = '{ERROR}' THEN ?6 END,
    CASE WHEN ?7 = '{SUCCESS}' THEN ?8 END,
    COALESCE(?9, 'unknown'), COALESCE(?10, 'unknown'), COALESCE(?11, 0)
) ON CONFLICT (product, installation_id) DO UPDATE SET
    os = COALESCE(?3, os),
    os_version = COALESCE(?4, os_version),
    product_version = COALESCE(?5, product_version),
    arch = COALESCE(?9, arch),
    container = COALESCE(?10, container),
    ci = COALESCE(?11, ci),
    first_at = min(first_at, excluded.first_at),
    started_at = min(COALESCE(started_at, excluded.started_at), COALESCE(excluded.started_at, started_at)),
    success_at = max(COALESCE(success_at, excluded.success_at), COALESCE(excluded.success_at, success_at)),
    error_at = max(COALESCE(error_at, excluded.error_at), COALESCE(excluded.error_at, error_at)),
    success_duration = CASE
        WHEN excluded.success_at IS NOT NULL AND (success_at IS NULL OR excluded.success_at >= success_at)
        THEN excluded.success_duration ELSE success_duration END";

const UPSERT_INSTANCE: &str = "
INSERT INTO instances (product, installation_id, last_active_at) VALUES (?1, ?2, ?3)
ON CONFLICT (product, installation_id) DO UPDATE SET last_active_at = max(last_active_at, excluded.last_active_at)";

/// Opens (creating if missing) a database for writing, in WAL mode, with the schema in place.
/// A new file is created 0600 (see [`file::create_private`]).
pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    file::create_private(path)?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoints normally run from `checkpoint_in_background`; this is only the safety net, so
    // that requests rarely wait for a checkpoint's fsync.
    conn.pragma_update(None, "wal_autocheckpoint", 25_000)?;
    tune(&conn)?;
    schema::migrate(&conn)?;
    Ok(conn)
}

/// Copies the write-ahead log back into the database every `every`, on its own thread and
/// connection, without blocking writers (a passive checkpoint). Runs until the process exits.
pub fn checkpoint_in_background(path: &Path, every: Duration) -> Result<(), StoreError> {
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

/// Opens an existing database for the `report` command, bringing an older schema up to date;
/// fails if the file does not exist.
pub fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    tune(&conn)?;
    schema::migrate(&conn)?;
    Ok(conn)
}

/// Opens the database `serve` has already migrated, read-only, for one report page.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    tune(&conn)?;
    Ok(conn)
}

/// A page cache big enough for the indexes' working set, and memory-mapped reads.
fn tune(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    conn.pragma_update(None, "mmap_size", 1024 * 1024 * 1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Stores `events` in one transaction; events with an already-stored message ID are skipped.
pub fn insert(conn: &mut Connection, events: &[Event], received_at_ms: i64) -> Result<Inserted, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = Inserted::default();
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        let mut installation = tx.prepare_cached(&sql(UPSERT_INSTALLATION))?;
        let mut instance = tx.prepare_cached(UPSERT_INSTANCE)?;
        for e in events {
            let props = serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into());
            let ts: Option<i64> = insert
                .query_row(
                    params![
                        e.message_id,
                        e.protocol.name(),
                        e.event,
                        e.installation_id,
                        e.timestamp,
                        received_at_ms,
                        e.product,
                        e.product_version,
                        e.os,
                        e.os_version,
                        e.step,
                        e.exit_code,
                        e.email,
                        e.duration_ms,
                        props,
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(ts) = ts else {
                inserted.duplicates += 1;
                continue;
            };
            inserted.stored += 1;
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
            }
            .into(&mut installation, &mut instance)?;
        }
    }
    tx.commit()?;
    Ok(inserted)
}

/// What of a stored event goes into `installations` (Started, Success, Error) or `instances`
/// (Instance Active).
struct Fold<'a> {
    event: &'a str,
    product: Option<&'a str>,
    installation_id: &'a str,
    os: Option<&'a str>,
    os_version: Option<&'a str>,
    product_version: Option<&'a str>,
    ts: i64,
    duration_ms: Option<i64>,
    arch: Option<&'a str>,
    container: Option<&'a str>,
    ci: Option<bool>,
}

impl Fold<'_> {
    /// Runs the upsert that fits the event, if any.
    fn into(self, installation: &mut Statement<'_>, instance: &mut Statement<'_>) -> rusqlite::Result<()> {
        let product = self.product.unwrap_or(NO_PRODUCT);
        match self.event {
            names::STARTED | names::SUCCESS | names::ERROR => {
                installation.execute(params![
                    product,
                    self.installation_id,
                    self.os,
                    self.os_version,
                    self.product_version,
                    self.ts,
                    self.event,
                    self.duration_ms,
                    self.arch,
                    self.container,
                    self.ci,
                ])?;
            }
            names::INSTANCE_ACTIVE => {
                instance.execute(params![product, self.installation_id, self.ts])?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Gives stored events sent under a branded name (see [`EventNames`]) their standard name, and
/// folds them into `installations` and `instances` as if they had arrived under it: events stored
/// before the mapping was configured join the funnel. Returns how many events were renamed.
pub fn adopt_renamed(conn: &mut Connection, names: &EventNames) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut renamed = 0;
    {
        let mut rename = tx.prepare(&sql("UPDATE events SET event = ?1 WHERE event = ?2
             RETURNING product, installation_id, os, os_version, product_version, ts_ms, duration_ms,
                       json_extract(properties, '$.{ARCH}'), json_extract(properties, '$.{CONTAINER}'),
                       json_extract(properties, '$.{CI}') IN (1, 'true')"))?;
        let mut installation = tx.prepare_cached(&sql(UPSERT_INSTALLATION))?;
        let mut instance = tx.prepare_cached(UPSERT_INSTANCE)?;
        for (branded, standard) in names.renamed() {
            let mut rows = rename.query(params![standard, branded])?;
            while let Some(r) = rows.next()? {
                renamed += 1;
                let (product, id): (Option<String>, String) = (r.get(0)?, r.get(1)?);
                let (os, os_version, version): (Option<String>, Option<String>, Option<String>) =
                    (r.get(2)?, r.get(3)?, r.get(4)?);
                let (arch, container): (Option<String>, Option<String>) = (r.get(7)?, r.get(8)?);
                Fold {
                    event: standard,
                    product: product.as_deref(),
                    installation_id: &id,
                    os: os.as_deref(),
                    os_version: os_version.as_deref(),
                    product_version: version.as_deref(),
                    ts: r.get(5)?,
                    duration_ms: r.get(6)?,
                    arch: arch.as_deref(),
                    container: container.as_deref(),
                    ci: r.get(9)?,
                }
                .into(&mut installation, &mut instance)?;
            }
        }
    }
    tx.commit()?;
    Ok(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Fallbacks, Protocol};

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
    fn event_names_fit_in_sql_quotes() {
        for name in [
            names::STARTED,
            names::SUCCESS,
            names::ERROR,
            names::SUPPORT,
            names::INSTANCE_ACTIVE,
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
        let mut conn = open(&path, Duration::from_millis(100)).unwrap();
        let events = [
            event("a", Some("2026-11-23T10:00:00.123Z")),
            event("b", Some("2026-11-23T12:00:00.5+02:00")),
            event("c", Some("not a time")),
        ];
        assert_eq!(
            insert(&mut conn, &events, 42).unwrap(),
            Inserted {
                stored: 3,
                duplicates: 0
            }
        );
        assert_eq!(
            insert(&mut conn, &events[..1], 42).unwrap(),
            Inserted {
                stored: 0,
                duplicates: 1
            }
        );
        let ts: Vec<i64> = conn
            .prepare("SELECT ts_ms FROM events ORDER BY message_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ts, vec![1_795_428_000_123, 1_795_428_000_500, 42]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn older_databases_get_their_installations_backfilled() {
        let dir = tempfile_dir("backfill");
        let path = dir.join("t.sqlite");
        let mut conn = open(&path, Duration::from_millis(100)).unwrap();
        let mut started = event("s", Some("2026-11-23T10:00:00Z"));
        started.event = names::STARTED.into();
        insert(&mut conn, &[started], 0).unwrap();
        conn.execute_batch("DELETE FROM installations; PRAGMA user_version = 0;")
            .unwrap();
        drop(conn);
        let conn = open(&path, Duration::from_millis(100)).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM installations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_status_the_schema_computes_is_known() {
        let dir = tempfile_dir("status");
        let mut conn = open(&dir.join("t.sqlite"), Duration::from_millis(100)).unwrap();
        let mut events = Vec::new();
        for (id, name) in [("s", names::SUCCESS), ("f", names::ERROR), ("a", names::STARTED)] {
            let mut e = event(id, Some("2026-11-23T10:00:00Z"));
            e.event = name.into();
            e.installation_id = id.into();
            events.push(e);
        }
        insert(&mut conn, &events, 0).unwrap();
        let statuses: Vec<Status> = conn
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
