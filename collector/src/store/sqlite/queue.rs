//! The relay's durable queue, in the same database: one row per (backend, event) still to send,
//! added in the transaction that stores the event (see `ingest.rs`), removed once the backend has
//! accepted it. Per backend, `forward_status` keeps what the page shows.

use rusqlite::{Connection, params};

use super::codec::{self, EVENT_COLUMNS, EVENT_TABLES};
use crate::clock;
use crate::store::{Forward, Forwarding, Queued, Settled, StoreError};

/// Names the backends events are forwarded to. Returns the backends no longer named that still
/// have events queued, with how many.
pub fn configure(conn: &Connection, backends: &[Forward<'_>]) -> Result<Vec<(String, u64)>, StoreError> {
    for Forward { name, url, .. } in backends {
        conn.execute(
            "INSERT INTO forward_status (target, url) VALUES (?1, ?2)
             ON CONFLICT (target) DO UPDATE SET url = excluded.url",
            params![name, url],
        )?;
    }
    let mut stmt = conn.prepare("SELECT target, COUNT(*) FROM forward_queue GROUP BY target")?;
    let queued = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
    let mut left = Vec::new();
    for row in queued {
        let (backend, n) = row?;
        if !backends.iter().any(|b| b.name == backend) {
            left.push((backend, n));
        }
    }
    Ok(left)
}

/// The oldest `limit` queued events of `target`.
pub fn load(conn: &Connection, target: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS}, q.event_id
         FROM forward_queue q JOIN {EVENT_TABLES}
         WHERE e.id = q.event_id AND q.target = ?1 ORDER BY q.event_id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![target, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        let (e, ts_ms, _) = codec::decode(r)?;
        Ok(Queued {
            event_id: r.get(codec::DECODED_COLUMNS)?,
            properties: serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into()),
            message_id: e.message_id,
            event: e.event,
            installation_id: e.installation_id,
            ts_ms,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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

/// The forwarding status of every backend ever configured on this database (none if never).
pub fn status(conn: &Connection) -> Result<Vec<Forwarding>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.target, s.url, s.forwarded,
                (SELECT COUNT(*) FROM forward_queue q WHERE q.target = s.target),
                s.rejected, s.last_success_at, s.failing_since, s.last_error
         FROM forward_status s ORDER BY s.target",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Forwarding {
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
