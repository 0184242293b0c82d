//! The write path: one transaction per request stores the events, queues them for the relay's
//! backends, folds each into its installation (or instance) and counts it into the aggregates.

use rusqlite::{Connection, OptionalExtension, Statement, params};

use super::aggregates;
use super::codec::{self, Codes, EVENT_COLUMNS, EVENT_TABLES, Encoded, Id};
use crate::event::{Event, EventNames, Fallbacks, NO_PRODUCT, Protocol, names};
use crate::store::fold::{Changes, Fold};
use crate::store::{Inserted, StoreError};

/// Stores an event at time ?15 (see [`EVENT_TIME`]); ?6 is when it was received, ?12 the
/// timestamp it was sent with (stored as NULL when ?13: it is ?15 written the beacon's way). See
/// `codec.rs` for the rest. Changes no row for a message ID already stored.
const INSERT: &str = "
INSERT OR IGNORE INTO events (
    id, message_id, name, product, installation_id, ts_ms, received_after, facts,
    step, exit_code, email, duration_ms, timestamp, properties
) VALUES (
    ?1, ?2, ?3, ?4, ?5, ?15, ?6 - ?15, ?7, ?8, ?9, ?10, ?11,
    CASE WHEN ?12 IS NULL THEN X'' WHEN ?13 THEN NULL ELSE ?12 END, jsonb(?14)
)";

/// The time of an event sent with a timestamp ?1 that is not written the beacon's way (or none):
/// the timestamp as SQLite parses it (ISO 8601, `Z` or `±HH:MM`) when that lies in `[?2, ?3]`
/// ([`crate::store::trusted_times`]), else the time it was received (?4).
const EVENT_TIME: &str = "
SELECT COALESCE((
    SELECT sent FROM (SELECT CAST(round((julianday(?1) - 2440587.5) * 86400000.0) AS INTEGER) AS sent)
    WHERE sent BETWEEN ?2 AND ?3), ?4)";

const UPSERT_INSTANCE: &str = "
INSERT INTO instances (product, installation_id, last_active_at) VALUES (?1, ?2, ?3)
ON CONFLICT (product, installation_id) DO UPDATE SET last_active_at = max(last_active_at, excluded.last_active_at)";

/// Queues a newly stored event (?2 = its row ID) for backend ?1.
const QUEUE: &str = "INSERT OR IGNORE INTO forward_queue (target, event_id) VALUES (?1, ?2)";

/// Where and when an event is stored: its row ID and time when copied from an older schema
/// (else new ones), when it was received, and the window of trusted sent times.
struct Placing {
    id: Option<i64>,
    ts: Option<i64>,
    received_at_ms: i64,
    trusted: (i64, i64),
}

/// Stores `e` (see [`INSERT`]); its row ID and time, or `None` if its message ID is stored.
fn store(
    conn: &Connection,
    insert: &mut Statement<'_>,
    codes: &mut Codes,
    e: &Event,
    encoded: &Encoded,
    at: &Placing,
) -> rusqlite::Result<Option<(i64, i64)>> {
    let ts = match at.ts.or(encoded.sent_at) {
        Some(ts) => ts,
        None => conn.prepare_cached(EVENT_TIME)?.query_row(
            params![e.timestamp, at.trusted.0, at.trusted.1, at.received_at_ms],
            |r| r.get(0),
        )?,
    };
    let stored = insert.execute(params![
        at.id,
        Id::new(&e.message_id),
        codec::name_code(conn, codes, &e.event)?,
        codec::product_code(conn, codes, e.product.as_deref().unwrap_or(NO_PRODUCT))?,
        Id::new(&e.installation_id),
        at.received_at_ms,
        encoded.facts_code(conn, codes, e)?,
        e.step,
        e.exit_code,
        e.email,
        e.duration_ms,
        e.timestamp,
        encoded.sent_at.is_some(),
        encoded.rest,
        ts,
    ])?;
    Ok((stored == 1).then(|| (conn.last_insert_rowid(), ts)))
}

/// Stores `events` in one transaction; events with an already-stored message ID are skipped.
/// Each new event is queued for every backend in `forward` (name, and the only event name it
/// takes, if any), folded into its installation or instance, and counted into the aggregates.
/// `encoded` is [`Encoded::of`] each event. `codes` must be forgotten if it fails.
pub fn insert(
    conn: &mut Connection,
    codes: &mut Codes,
    events: &[Event],
    encoded: &[Encoded],
    received_at_ms: i64,
    trusted: (i64, i64),
    forward: &[(String, Option<String>)],
) -> Result<Inserted, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = Inserted::default();
    {
        let mut folds = Folds::new(&tx)?;
        let (mut insert, mut queue) = (tx.prepare_cached(INSERT)?, tx.prepare_cached(QUEUE)?);
        let at = Placing {
            id: None,
            ts: None,
            received_at_ms,
            trusted,
        };
        for (e, encoded) in events.iter().zip(encoded) {
            let Some((id, ts)) = store(&tx, &mut insert, codes, e, encoded, &at)? else {
                inserted.duplicates += 1;
                continue;
            };
            inserted.stored += 1;
            for (backend, only) in forward {
                if only.as_ref().is_none_or(|name| *name == e.event) {
                    queue.execute(params![backend, id])?;
                }
            }
            folds.fold(codes, &Fold::of(e, ts))?;
        }
        folds.finish(codes)?;
    }
    tx.commit()?;
    Ok(inserted)
}

/// Copies the events of schema 7 (`events_7`) into `events` under their row IDs, and drops
/// `events_7`; in the caller's transaction. Their facts are taken as they were stored.
pub fn copy_events_7(conn: &Connection) -> Result<(), StoreError> {
    let mut codes = Codes::default();
    let mut insert = conn.prepare(INSERT)?;
    let mut old = conn.prepare(
        "SELECT id, message_id, protocol, event, installation_id, timestamp, ts_ms, received_at, product,
                product_version, os, os_version, step, exit_code, email, duration_ms, properties
         FROM events_7 ORDER BY id",
    )?;
    let mut rows = old.query([])?;
    while let Some(r) = rows.next()? {
        let protocol: String = r.get(2)?;
        let properties: String = r.get(16)?;
        let mut e = Event::new(
            Protocol::from_name(&protocol).unwrap_or(Protocol::Json),
            Some(r.get(1)?),
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            codec::object(&properties),
            Fallbacks::default(),
        );
        (e.product, e.product_version, e.os, e.os_version) = (r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?);
        (e.step, e.exit_code, e.email, e.duration_ms) = (r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?);
        let ts: i64 = r.get(6)?;
        let at = Placing {
            id: Some(r.get(0)?),
            ts: Some(ts),
            received_at_ms: r.get(7)?,
            trusted: (ts, ts),
        };
        store(conn, &mut insert, &mut codes, &e, &Encoded::of(&e, at.trusted), &at)?;
    }
    drop(rows);
    drop((old, insert));
    conn.execute_batch("DROP TABLE events_7")?;
    Ok(())
}

/// What one transaction does to installations, instances and the aggregates.
struct Folds<'c> {
    conn: &'c Connection,
    installations: aggregates::Installations<'c>,
    changes: Changes,
}

impl<'c> Folds<'c> {
    fn new(conn: &'c Connection) -> rusqlite::Result<Folds<'c>> {
        Ok(Folds {
            conn,
            installations: aggregates::Installations::new(conn)?,
            changes: Changes::default(),
        })
    }

    /// Folds one stored event into its installation (or instance) and the daily counts.
    fn fold(&mut self, codes: &mut Codes, f: &Fold<'_>) -> rusqlite::Result<()> {
        let conn = self.conn;
        if f.event == names::INSTANCE_ACTIVE {
            self.changes.instance(f, || {
                aggregates::last_active(conn, codec::product_code(conn, codes, f.product())?, f.installation_id)
            })?;
        }
        let installations = &mut self.installations;
        self.changes.fold(f, || {
            let product = codec::product_code(conn, codes, f.product())?;
            installations.load(product, f.installation_id)
        })
    }

    /// Writes the changed installations and instances, and the aggregates.
    fn finish(self, codes: &mut Codes) -> rusqlite::Result<()> {
        let (conn, mut installations) = (self.conn, self.installations);
        let done = self.changes.finish();
        for i in &done.installations {
            installations.save(codes, i)?;
        }
        let mut instance = conn.prepare_cached(UPSERT_INSTANCE)?;
        for (product, id, at) in &done.instances {
            instance.execute(params![codec::product_code(conn, codes, product)?, Id::new(id), at])?;
        }
        aggregates::write(conn, &done.tallies)
    }
}

/// Gives stored events sent under a branded name (see [`EventNames`]) their standard name, and
/// folds them in as if they had arrived under it: events stored before the mapping was
/// configured join the funnel. Returns how many events were renamed. `codes` must be forgotten
/// if it fails.
pub fn adopt_renamed(conn: &mut Connection, codes: &mut Codes, names: &EventNames) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut renamed = 0;
    let mut folds = Folds::new(&tx)?;
    for (branded, standard) in names.renamed() {
        let from: Option<i64> = tx
            .query_row("SELECT id FROM names WHERE name = ?1", [branded], |r| r.get(0))
            .optional()?;
        let Some(from) = from else { continue };
        let mut events = Vec::new();
        {
            let mut stmt = tx.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM {EVENT_TABLES} WHERE e.name = ?1 ORDER BY e.id"
            ))?;
            let mut rows = stmt.query([from])?;
            while let Some(r) = rows.next()? {
                let (mut e, ts, _) = codec::decode(r)?;
                e.event = standard.to_string();
                events.push((e, ts));
            }
        }
        tx.execute(
            "UPDATE events SET name = ?1 WHERE name = ?2",
            params![codec::code(standard), from],
        )?;
        for (e, ts) in &events {
            folds.fold(codes, &Fold::of(e, *ts))?;
        }
        renamed += events.len() as u64;
    }
    folds.finish(codes)?;
    tx.commit()?;
    Ok(renamed)
}
