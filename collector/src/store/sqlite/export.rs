//! Every stored event, oldest first, for `export`.

use rusqlite::Connection;

use crate::store::{StoreError, StoredEvent};

/// Hands every event to `each`, oldest first, streaming; returns how many.
pub fn each_event(
    conn: &Connection,
    each: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT message_id, event, installation_id, ts_ms, received_at, protocol, product, product_version,
                os, os_version, step, exit_code, email, duration_ms, properties, timestamp
         FROM events ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        each(StoredEvent {
            message_id: r.get(0)?,
            event: r.get(1)?,
            installation_id: r.get(2)?,
            ts_ms: r.get(3)?,
            received_at_ms: r.get(4)?,
            protocol: r.get(5)?,
            product: r.get(6)?,
            product_version: r.get(7)?,
            os: r.get(8)?,
            os_version: r.get(9)?,
            step: r.get(10)?,
            exit_code: r.get(11)?,
            email: r.get(12)?,
            duration_ms: r.get(13)?,
            properties: r.get(14)?,
            sent_timestamp: r.get(15)?,
        })?;
        n += 1;
    }
    Ok(n)
}
