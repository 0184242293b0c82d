//! Erasure and retention in SQL: `forget` deletes everything of one installation; `retain`
//! deletes raw events older than a cutoff and keeps what the report needs of them.
//!
//! The report reads no raw event older than a day: its aggregates (`tallies`, `error_counts`,
//! `day_counts`) were counted at ingest and stay. Old installations keep their outcome but lose
//! their ID.

use rusqlite::Connection;

use super::aggregates;
use super::codec::Id;
use crate::store::{Forgotten, Retained, StoreError};

/// Deletes every event of installation `id` (in every product), its installation and instance
/// rows, and whatever of it still waits to be forwarded, and takes it out of the aggregates; in
/// one transaction.
pub fn forget(conn: &mut Connection, id: &str) -> Result<Forgotten, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    aggregates::uncount(&tx, id)?;
    tx.execute(
        "DELETE FROM forward_queue WHERE event_id IN (SELECT id FROM events WHERE installation_id = ?1)",
        [Id::new(id)],
    )?;
    let events = tx.execute("DELETE FROM events WHERE installation_id = ?1", [Id::new(id)])?;
    let installations = tx.execute("DELETE FROM installations WHERE installation_id = ?1", [Id::new(id)])?;
    tx.execute("DELETE FROM instances WHERE installation_id = ?1", [Id::new(id)])?;
    tx.commit()?;
    Ok(Forgotten { events, installations })
}

/// Deletes raw events sent before `cutoff_ms` (the aggregates counted them at ingest), and
/// remembers the cutoff for `rebuild`; old installations keep their outcome under an anonymous
/// ID, and instances not active since the cutoff are dropped. One transaction.
pub fn retain(conn: &mut Connection, cutoff_ms: i64) -> Result<Retained, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let events = tx.execute("DELETE FROM events WHERE ts_ms < ?1", [cutoff_ms])?;
    if events > 0 {
        tx.execute(
            "DELETE FROM forward_queue WHERE NOT EXISTS (SELECT 1 FROM events WHERE id = event_id)",
            [],
        )?;
        aggregates::set_retained_before(&tx, cutoff_ms)?;
    }
    let installations = tx.execute(
        "UPDATE installations SET installation_id = randomblob(12)
         WHERE first_at < ?1 AND NOT (typeof(installation_id) = 'blob' AND length(installation_id) = 12)",
        [cutoff_ms],
    )?;
    tx.execute("DELETE FROM instances WHERE last_active_at < ?1", [cutoff_ms])?;
    aggregates::retain_active(&tx, cutoff_ms)?;
    tx.commit()?;
    Ok(Retained { events, installations })
}

#[cfg(test)]
mod tests {
    use super::super::Sqlite;
    use crate::event::names;
    use crate::store::conformance::event;
    use crate::store::{DayCount, Forgotten, Retained, Store};
    use serde_json::json;

    fn count(store: &Sqlite, sql: &str) -> i64 {
        store.writer().conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn sample(store: &Sqlite) {
        let p = json!({"product": "acme"});
        let err = json!({"product": "acme", "step": "db", "exit_code": 5, "message": "disk full"});
        let events = [
            event("1", "old", names::STARTED, "2025-01-01T10:00:00Z", p.clone()),
            event("2", "old", names::ERROR, "2025-01-01T10:01:00Z", err.clone()),
            event("3", "old", names::SUPPORT, "2025-01-01T10:02:00Z", p.clone()),
            event("4", "new", names::STARTED, "2026-11-01T10:00:00Z", p.clone()),
            event("5", "new", names::ERROR, "2026-11-01T10:01:00Z", err),
        ];
        // Received now: long after they were sent.
        store.insert(&events, crate::clock::now_ms()).unwrap();
    }

    #[test]
    fn forget_deletes_one_installation_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::create(&dir.path().join("f.sqlite"), std::time::Duration::from_secs(1)).unwrap();
        sample(&store);
        assert_eq!(
            store.forget("old").unwrap(),
            Forgotten {
                events: 3,
                installations: 1
            }
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM events WHERE installation_id = 'old'"),
            0
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 2);
        assert_eq!(store.forget("old").unwrap(), Forgotten::default());
    }

    #[test]
    fn retention_keeps_daily_counts_and_drops_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::create(&dir.path().join("r.sqlite"), std::time::Duration::from_secs(1)).unwrap();
        sample(&store);
        let gone = json!({"product": "acme"});
        let gone = event("6", "gone", names::BEACON_UNAVAILABLE, "2025-01-02T10:00:00Z", gone);
        store.insert(&[gone], 0).unwrap();
        let cutoff = 1_767_225_600_000; // 2026-01-01
        let done = store.retain(cutoff).unwrap();
        assert_eq!(
            done,
            Retained {
                events: 4,
                installations: 1
            }
        );
        let acme = ["acme".to_string()];
        assert_eq!(
            store.day_counts(DayCount::Unavailable, &acme, 0, 1 << 30).unwrap(),
            [("acme".to_string(), 1)]
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 2);
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM installations"),
            2,
            "the outcome stays"
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM installations WHERE installation_id = 'old'"
            ),
            0
        );
        assert_eq!(
            count(
                &store,
                "SELECT SUM(events) FROM error_counts WHERE step = 'db' AND message = 'disk full' AND day < 20454"
            ),
            1
        );
        assert_eq!(count(&store, "SELECT SUM(n) FROM day_counts WHERE kind = 0"), 1);
        assert_eq!(
            store.retain(cutoff).unwrap(),
            Retained::default(),
            "a second pass is a no-op"
        );
    }
}
