//! Erasure, retention and export, as in `sqlite/retention.rs` and `sqlite/export.rs`.

use postgres::Client;

use super::aggregates;
use crate::store::{Forgotten, Retained, StoreError, StoredEvent};

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Deletes everything of installation `id`, after taking it out of the aggregates; one
/// transaction.
pub fn forget(client: &mut Client, id: &str) -> Result<Forgotten, StoreError> {
    let mut tx = client.transaction()?;
    aggregates::uncount(&mut tx, id)?;
    tx.execute(
        "DELETE FROM forward_queue WHERE event_id IN (SELECT id FROM events WHERE installation_id = $1)",
        &[&id],
    )?;
    let events = tx.execute("DELETE FROM events WHERE installation_id = $1", &[&id])?;
    // Rows an ingest is folding into are left for the next pass (see `aggregates::load`).
    let installations = tx.execute("DELETE FROM installations WHERE installation_id = $1", &[&id])?;
    tx.execute("DELETE FROM instances WHERE installation_id = $1", &[&id])?;
    tx.commit()?;
    Ok(Forgotten {
        events: usize_of(events),
        installations: usize_of(installations),
    })
}

/// Key of the advisory lock a retention pass holds, so that replicas retaining at once take
/// turns at deleting the same old events ("retain" in ASCII).
const RETAIN_LOCK: i64 = 0x7265_7461_696e;

/// Deletes raw events sent before `cutoff_ms` (the aggregates counted them at ingest), and
/// remembers the cutoff for `rebuild`; see `sqlite/retention.rs`.
pub fn retain(client: &mut Client, cutoff_ms: i64) -> Result<Retained, StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RETAIN_LOCK])?;
    tx.execute(
        "DELETE FROM forward_queue WHERE event_id IN (SELECT id FROM events WHERE ts_ms < $1)",
        &[&cutoff_ms],
    )?;
    let events = tx.execute("DELETE FROM events WHERE ts_ms < $1", &[&cutoff_ms])?;
    if events > 0 {
        aggregates::set_retained_before(&mut tx, cutoff_ms)?;
    }
    // Rows an ingest is folding into are left for the next pass (see `aggregates::load`).
    let installations = tx.execute(
        "UPDATE installations SET installation_id = 'expired:' || replace(gen_random_uuid()::text, '-', '')
         WHERE (product, installation_id) IN (
             SELECT product, installation_id FROM installations
             WHERE first_at < $1 AND installation_id NOT LIKE 'expired:%'
             FOR UPDATE SKIP LOCKED)",
        &[&cutoff_ms],
    )?;
    tx.execute(
        "DELETE FROM instances WHERE (product, installation_id) IN (
             SELECT product, installation_id FROM instances WHERE last_active_at < $1 FOR UPDATE SKIP LOCKED)",
        &[&cutoff_ms],
    )?;
    aggregates::retain_active(&mut tx, cutoff_ms)?;
    tx.commit()?;
    Ok(Retained {
        events: usize_of(events),
        installations: usize_of(installations),
    })
}

/// Rows fetched per round trip while exporting.
const EXPORT_BATCH: i32 = 1000;

/// Hands every event to `each`, oldest first, streaming through a cursor; returns how many.
pub fn each_event(
    client: &mut Client,
    each: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut tx = client.build_transaction().read_only(true).start()?;
    let portal = tx.bind(
        "SELECT message_id, event, installation_id, ts_ms, received_at, protocol, product, product_version,
                os, os_version, step, exit_code, email, duration_ms, properties, timestamp
         FROM events ORDER BY id",
        &[],
    )?;
    let mut n = 0;
    loop {
        let rows = tx.query_portal(&portal, EXPORT_BATCH)?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            each(StoredEvent {
                message_id: r.try_get(0)?,
                event: r.try_get(1)?,
                installation_id: r.try_get(2)?,
                ts_ms: r.try_get(3)?,
                received_at_ms: r.try_get(4)?,
                protocol: r.try_get(5)?,
                product: r.try_get(6)?,
                product_version: r.try_get(7)?,
                os: r.try_get(8)?,
                os_version: r.try_get(9)?,
                step: r.try_get(10)?,
                exit_code: r.try_get(11)?,
                email: r.try_get(12)?,
                duration_ms: r.try_get(13)?,
                properties: r.try_get(14)?,
                sent_timestamp: r.try_get(15)?,
            })?;
            n += 1;
        }
    }
    tx.commit()?;
    Ok(n)
}
