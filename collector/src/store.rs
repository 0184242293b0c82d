//! The SQLite event table: schema, indexes and the one-transaction-per-request insert.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use crate::event::Event;

/// Why a write failed.
#[derive(Debug)]
pub enum StoreError {
    /// The database stayed locked by another writer past the busy timeout (answer 503).
    Busy,
    /// Anything else SQLite reported.
    Sqlite(rusqlite::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Busy => f.write_str("database is locked by another writer"),
            StoreError::Sqlite(e) => write!(f, "database error: {e}"),
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

/// How many events of a request were new and how many had been seen before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Newly stored events.
    pub stored: usize,
    /// Events whose message ID was already stored (acknowledged, not stored again).
    pub duplicates: usize,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    protocol        TEXT NOT NULL,
    event           TEXT NOT NULL,
    installation_id TEXT NOT NULL,
    timestamp       TEXT,
    ts_ms           INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    product         TEXT,
    product_version TEXT,
    os              TEXT,
    os_version      TEXT,
    step            TEXT,
    exit_code       INTEGER,
    email           TEXT,
    duration_ms     INTEGER,
    properties      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_event_time ON events (event, ts_ms);
CREATE INDEX IF NOT EXISTS events_by_installation
    ON events (product, installation_id, event, ts_ms, duration_ms, os, os_version, product_version);
";

/// `ts_ms` is the event's own timestamp parsed by SQLite (ISO 8601, `Z` or `±HH:MM`), else the
/// time it was received.
const INSERT: &str = "
INSERT OR IGNORE INTO events (
    message_id, protocol, event, installation_id, timestamp, ts_ms, received_at,
    product, product_version, os, os_version, step, exit_code, email, duration_ms, properties
) VALUES (
    ?1, ?2, ?3, ?4, ?5,
    COALESCE(CAST(round((julianday(?5) - 2440587.5) * 86400000.0) AS INTEGER), ?6), ?6,
    ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
)";

/// Opens (creating if missing) a database for writing, in WAL mode, with the schema in place.
pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Opens an existing database for reporting; fails if the file does not exist.
pub fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Stores `events` in one transaction; events with an already-stored message ID are skipped.
pub fn insert(
    conn: &mut Connection,
    events: &[Event],
    received_at_ms: i64,
) -> Result<Inserted, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = Inserted::default();
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        for e in events {
            let props = serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into());
            let n = stmt.execute(params![
                e.message_id,
                e.protocol.as_str(),
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
            ])?;
            if n == 1 {
                inserted.stored += 1;
            } else {
                inserted.duplicates += 1;
            }
        }
    }
    tx.commit()?;
    Ok(inserted)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
}
