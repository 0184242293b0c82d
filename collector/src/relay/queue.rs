//! The durable forward queue, in the collector's own database: one row per (backend, event) still
//! to send, added by a trigger in the transaction that stores the event, removed once the backend
//! has accepted it. Per backend, `forward_status` keeps what the page shows.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::Target;
use super::batch::Queued;
use crate::clock;
use crate::store::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS forward_queue (
    target   TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (target, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forward_status (
    target          TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    forwarded       INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    last_success_at INTEGER,
    failing_since   INTEGER,
    last_error      TEXT
);
";

/// Creates the queue tables and, on this connection only, the triggers that queue every newly
/// stored event for each target (a duplicate that `INSERT OR IGNORE` skips fires no trigger).
/// Returns the backends no target names any more that still have events queued, with how many.
pub fn install(conn: &Connection, targets: &[Target]) -> Result<Vec<(String, u64)>, StoreError> {
    conn.execute_batch(SCHEMA)?;
    for t in targets {
        let name = t.backend.as_str();
        conn.execute_batch(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS forward_{name} AFTER INSERT ON main.events
             BEGIN INSERT OR IGNORE INTO forward_queue (target, event_id) VALUES ('{name}', new.id); END;"
        ))?;
        conn.execute(
            "INSERT INTO forward_status (target, url) VALUES (?1, ?2)
             ON CONFLICT (target) DO UPDATE SET url = excluded.url",
            params![name, t.url],
        )?;
    }
    let mut stmt = conn.prepare("SELECT target, COUNT(*) FROM forward_queue GROUP BY target")?;
    let queued = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
    let mut left = Vec::new();
    for row in queued {
        let (backend, n) = row?;
        if !targets.iter().any(|t| t.backend.as_str() == backend) {
            left.push((backend, n));
        }
    }
    Ok(left)
}

/// The oldest `limit` queued events of `target`.
pub fn load(conn: &Connection, target: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT q.event_id, e.message_id, e.event, e.installation_id, e.ts_ms, e.properties
         FROM forward_queue q JOIN events e ON e.id = q.event_id
         WHERE q.target = ?1 ORDER BY q.event_id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![target, limit as i64], |r| {
        Ok(Queued {
            event_id: r.get(0)?,
            message_id: r.get(1)?,
            event: r.get(2)?,
            installation_id: r.get(3)?,
            ts_ms: r.get(4)?,
            properties: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The backend took it: dequeue, count as forwarded.
    Forwarded,
    /// The backend refused these events for good: dequeue, count as rejected.
    Rejected(String),
    /// Try again later: keep queued, remember since when it fails.
    Failed(String),
}

/// Records the outcome of sending `events` to `target` at `now_ms`.
pub fn settle(
    conn: &mut Connection,
    target: &str,
    events: &[Queued],
    outcome: &Settled,
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if !matches!(outcome, Settled::Failed(_)) {
        let mut dequeue = tx.prepare_cached("DELETE FROM forward_queue WHERE target = ?1 AND event_id = ?2")?;
        for e in events {
            dequeue.execute(params![target, e.event_id])?;
        }
    }
    let n = events.len() as i64;
    match outcome {
        Settled::Forwarded => tx.execute(
            "UPDATE forward_status SET forwarded = forwarded + ?2, last_success_at = ?3,
                 failing_since = NULL, last_error = NULL WHERE target = ?1",
            params![target, n, now_ms],
        )?,
        Settled::Rejected(error) => tx.execute(
            "UPDATE forward_status SET rejected = rejected + ?2, last_error = ?3 WHERE target = ?1",
            params![target, n, error],
        )?,
        Settled::Failed(error) => tx.execute(
            "UPDATE forward_status SET failing_since = COALESCE(failing_since, ?2), last_error = ?3
             WHERE target = ?1",
            params![target, now_ms, error],
        )?,
    };
    tx.commit()?;
    Ok(())
}

/// Forwarding to one backend, as the page and `report` show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
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

/// The forwarding status of every backend ever configured on this database (none if never).
pub fn status(conn: &Connection) -> Result<Vec<Status>, StoreError> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'forward_status'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT s.target, s.url, s.forwarded,
                (SELECT COUNT(*) FROM forward_queue q WHERE q.target = s.target),
                s.rejected, s.last_success_at, s.failing_since, s.last_error
         FROM forward_status s ORDER BY s.target",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Status {
            backend: r.get(0)?,
            url: r.get(1)?,
            forwarded: r.get(2)?,
            queued: r.get(3)?,
            rejected: r.get(4)?,
            last_success: r.get::<_, Option<i64>>(5)?.map(clock::iso_seconds),
            failing_since: r.get::<_, Option<i64>>(6)?.map(clock::iso_seconds),
            last_error: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Fallbacks, Protocol};
    use crate::relay::Backend;

    fn event(id: &str) -> Event {
        Event::new(
            Protocol::Json,
            Some(id.into()),
            "E".into(),
            "i".into(),
            None,
            serde_json::Map::new(),
            Fallbacks::default(),
        )
    }

    #[test]
    fn stored_events_are_queued_once_and_settled() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::open(&dir.path().join("q.sqlite"), std::time::Duration::from_secs(1)).unwrap();
        assert_eq!(status(&conn).unwrap(), vec![]);
        let target = Target {
            backend: Backend::Posthog,
            url: "http://x".into(),
            key: "k".into(),
        };
        assert_eq!(install(&conn, std::slice::from_ref(&target)).unwrap(), vec![]);
        crate::store::insert(&mut conn, &[event("a"), event("b"), event("a")], 5).unwrap();
        crate::store::insert(&mut conn, &[event("b"), event("c")], 6).unwrap();
        let queued = load(&conn, "posthog", 10).unwrap();
        let ids: Vec<&str> = queued.iter().map(|q| q.message_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);

        settle(
            &mut conn,
            "posthog",
            &queued[..1],
            &Settled::Failed("503".into()),
            1_000,
        )
        .unwrap();
        settle(
            &mut conn,
            "posthog",
            &queued[..1],
            &Settled::Failed("503 again".into()),
            2_000,
        )
        .unwrap();
        let s = &status(&conn).unwrap()[0];
        assert_eq!((s.queued, s.forwarded), (3, 0));
        assert_eq!(install(&conn, &[]).unwrap(), vec![("posthog".to_string(), 3)]);
        install(&conn, &[target]).unwrap();
        assert_eq!(s.failing_since.as_deref(), Some("1970-01-01T00:00:01Z"));
        assert_eq!(s.last_error.as_deref(), Some("503 again"));

        settle(&mut conn, "posthog", &queued[..2], &Settled::Forwarded, 3_000).unwrap();
        settle(
            &mut conn,
            "posthog",
            &queued[2..],
            &Settled::Rejected("400".into()),
            4_000,
        )
        .unwrap();
        let s = &status(&conn).unwrap()[0];
        assert_eq!((s.queued, s.forwarded, s.rejected), (0, 2, 1));
        assert_eq!(s.failing_since, None);
        assert!(load(&conn, "posthog", 10).unwrap().is_empty());
    }
}
