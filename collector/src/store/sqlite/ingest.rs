//! The write path: one transaction per request stores the events, queues them for the relay's
//! backends, folds each into its installation (or instance) and counts it into the aggregates.

use rusqlite::{Connection, OptionalExtension, params};

use super::{aggregates, sql};
use crate::event::{Event, EventNames, names};
use crate::store::fold::{Changes, Fold};
use crate::store::{Inserted, StoreError};

/// `ts_ms` is the event's own timestamp parsed by SQLite (ISO 8601, `Z` or `±HH:MM`) when it lies in
/// `[?16, ?17]` ([`crate::store::trusted_times`]), else the time it was received; `timestamp` keeps
/// what was sent. Returns no row for a message ID already stored.
const INSERT: &str = "
INSERT OR IGNORE INTO events (
    message_id, protocol, event, installation_id, timestamp, ts_ms, received_at,
    product, product_version, os, os_version, step, exit_code, email, duration_ms, properties
) VALUES (
    ?1, ?2, ?3, ?4, ?5,
    COALESCE((
        SELECT sent FROM (SELECT CAST(round((julianday(?5) - 2440587.5) * 86400000.0) AS INTEGER) AS sent)
        WHERE sent BETWEEN ?16 AND ?17
    ), ?6), ?6,
    ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
) RETURNING id, ts_ms";

const UPSERT_INSTANCE: &str = "
INSERT INTO instances (product, installation_id, last_active_at) VALUES (?1, ?2, ?3)
ON CONFLICT (product, installation_id) DO UPDATE SET last_active_at = max(last_active_at, excluded.last_active_at)";

/// Queues a newly stored event (?2 = its row ID) for backend ?1.
const QUEUE: &str = "INSERT OR IGNORE INTO forward_queue (target, event_id) VALUES (?1, ?2)";

/// Stores `events` in one transaction; events with an already-stored message ID are skipped.
/// Each new event is queued for every backend in `forward` (name, and the only event name it
/// takes, if any), folded into its installation or instance, and counted into the aggregates.
pub fn insert(
    conn: &mut Connection,
    events: &[Event],
    received_at_ms: i64,
    trusted: (i64, i64),
    forward: &[(String, Option<String>)],
) -> Result<Inserted, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = Inserted::default();
    let mut folds = Folds::default();
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        let mut queue = tx.prepare_cached(QUEUE)?;
        for e in events {
            let props = serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into());
            let stored: Option<(i64, i64)> = insert
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
                        trusted.0,
                        trusted.1,
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, ts)) = stored else {
                inserted.duplicates += 1;
                continue;
            };
            inserted.stored += 1;
            for (backend, only) in forward {
                if only.as_ref().is_none_or(|name| *name == e.event) {
                    queue.execute(params![backend, id])?;
                }
            }
            folds.fold(&tx, &Fold::of(e, ts))?;
        }
    }
    folds.finish(&tx)?;
    tx.commit()?;
    Ok(inserted)
}

/// What one transaction does to installations, instances and the aggregates.
#[derive(Default)]
struct Folds {
    changes: Changes,
}

impl Folds {
    /// Folds one stored event into its installation (or instance) and the daily counts.
    fn fold(&mut self, conn: &Connection, f: &Fold<'_>) -> rusqlite::Result<()> {
        if f.event == names::INSTANCE_ACTIVE {
            self.changes
                .instance(f, || aggregates::last_active(conn, f.product(), f.installation_id))?;
        }
        self.changes
            .fold(f, || aggregates::load(conn, f.product(), f.installation_id))
    }

    /// Writes the changed installations and instances, and the aggregates.
    fn finish(self, conn: &Connection) -> rusqlite::Result<()> {
        let done = self.changes.finish();
        for i in &done.installations {
            aggregates::save(conn, i)?;
        }
        let mut instance = conn.prepare_cached(UPSERT_INSTANCE)?;
        for (product, id, at) in &done.instances {
            instance.execute(params![product, id, at])?;
        }
        aggregates::write(conn, &done.tallies)
    }
}

/// Gives stored events sent under a branded name (see [`EventNames`]) their standard name, and
/// folds them in as if they had arrived under it: events stored before the mapping was
/// configured join the funnel. Returns how many events were renamed.
pub fn adopt_renamed(conn: &mut Connection, names: &EventNames) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut renamed = 0;
    let mut folds = Folds::default();
    {
        let mut rename = tx.prepare(&sql("UPDATE events SET event = ?1 WHERE event = ?2
             RETURNING product, installation_id, os, os_version, product_version, ts_ms, duration_ms,
                       json_extract(properties, '$.{ARCH}'), json_extract(properties, '$.{CONTAINER}'),
                       json_extract(properties, '$.{CI}') IN (1, 'true'),
                       json_extract(properties, '$.{AGENT}'), json_extract(properties, '$.{INSTALL_METHOD}'),
                       CAST(json_extract(properties, '$.{ATTEMPT}') AS INTEGER), step, exit_code,
                       CASE WHEN json_type(properties, '$.{MESSAGE}') = 'text' THEN message END"))?;
        for (branded, standard) in names.renamed() {
            let mut rows = rename.query(params![standard, branded])?;
            while let Some(r) = rows.next()? {
                renamed += 1;
                let (product, id): (Option<String>, String) = (r.get(0)?, r.get(1)?);
                let (os, os_version, version): (Option<String>, Option<String>, Option<String>) =
                    (r.get(2)?, r.get(3)?, r.get(4)?);
                let (arch, container): (Option<String>, Option<String>) = (r.get(7)?, r.get(8)?);
                let (agent, method): (Option<String>, Option<String>) = (r.get(10)?, r.get(11)?);
                let (step, message): (Option<String>, Option<String>) = (r.get(13)?, r.get(15)?);
                folds.fold(
                    &tx,
                    &Fold {
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
                        agent: agent.as_deref(),
                        install_method: method.as_deref(),
                        attempt: r.get::<_, Option<i64>>(12)?.filter(|a| *a >= 1),
                        step: step.as_deref(),
                        exit_code: r.get(14)?,
                        message: message.as_deref(),
                    },
                )?;
            }
        }
    }
    folds.finish(&tx)?;
    tx.commit()?;
    Ok(renamed)
}
