//! Every stored event, oldest first, for `export`.

use rusqlite::Connection;

use super::codec::{self, EVENT_COLUMNS, EVENT_TABLES};
use crate::store::{StoreError, StoredEvent};

/// Hands every event to `each`, oldest first, streaming; returns how many.
pub fn each_event(
    conn: &Connection,
    each: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS}, e.step, e.exit_code, e.email, e.duration_ms
         FROM {EVENT_TABLES} ORDER BY e.id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let (e, ts_ms, received_at_ms) = codec::decode(r)?;
        let at = codec::DECODED_COLUMNS;
        each(StoredEvent {
            properties: serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into()),
            message_id: e.message_id,
            event: e.event,
            installation_id: e.installation_id,
            ts_ms,
            received_at_ms,
            protocol: e.protocol.name().to_string(),
            product: e.product,
            product_version: e.product_version,
            os: e.os,
            os_version: e.os_version,
            step: r.get(at)?,
            exit_code: r.get(at + 1)?,
            email: r.get(at + 2)?,
            duration_ms: r.get(at + 3)?,
            sent_timestamp: e.timestamp,
        })?;
        n += 1;
    }
    Ok(n)
}
