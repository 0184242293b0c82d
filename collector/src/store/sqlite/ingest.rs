//! The write path: one transaction per request stores the events, folds each into its
//! installation (or instance), and queues it for the relay's backends.

use rusqlite::{Connection, OptionalExtension, Statement, params};

use super::sql;
use crate::event::{Event, EventNames, NO_PRODUCT, names};
use crate::store::{Fold, Inserted, StoreError};

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

/// Folds one Started/Success/Error event (?6 = its time, ?7 = its name, ?12 = its attempt) into
/// its installation. An event of a later attempt than the installation's starts that attempt over
/// (its outcome so far is added to `earlier_succeeded` or `earlier_failed`); one of an earlier
/// attempt leaves the outcome alone; one of the same attempt is folded in.
const UPSERT_INSTALLATION: &str = "
INSERT INTO installations (
    product, installation_id, os, os_version, product_version,
    first_at, started_at, success_at, error_at, success_duration, arch, container, ci,
    attempt, agent, install_method
) VALUES (
    ?1, ?2, COALESCE(?3, 'unknown'), COALESCE(?4, ''), COALESCE(?5, 'unknown'), ?6,
    CASE WHEN ?7 = '{STARTED}' THEN ?6 END,
    CASE WHEN ?7 = '{SUCCESS}' THEN ?6 END,
    CASE WHEN ?7 = '{ERROR}' THEN ?6 END,
    CASE WHEN ?7 = '{SUCCESS}' THEN ?8 END,
    COALESCE(?9, 'unknown'), COALESCE(?10, 'unknown'), COALESCE(?11, 0),
    COALESCE(?12, 1), COALESCE(?13, ''), COALESCE(?14, 'unknown')
) ON CONFLICT (product, installation_id) DO UPDATE SET
    os = COALESCE(?3, os),
    os_version = COALESCE(?4, os_version),
    product_version = COALESCE(?5, product_version),
    arch = COALESCE(?9, arch),
    container = COALESCE(?10, container),
    ci = COALESCE(?11, ci),
    agent = COALESCE(?13, agent),
    install_method = COALESCE(?14, install_method),
    first_at = min(first_at, excluded.first_at),
    attempt = max(attempt, excluded.attempt),
    earlier_succeeded = earlier_succeeded + (excluded.attempt > attempt AND success_at IS NOT NULL
        AND (error_at IS NULL OR success_at >= error_at)),
    earlier_failed = earlier_failed + (excluded.attempt > attempt AND error_at IS NOT NULL
        AND (success_at IS NULL OR success_at < error_at)),
    started_at = CASE WHEN excluded.attempt > attempt THEN excluded.started_at
        WHEN excluded.attempt < attempt THEN started_at
        ELSE min(COALESCE(started_at, excluded.started_at), COALESCE(excluded.started_at, started_at)) END,
    success_at = CASE WHEN excluded.attempt > attempt THEN excluded.success_at
        WHEN excluded.attempt < attempt THEN success_at
        ELSE max(COALESCE(success_at, excluded.success_at), COALESCE(excluded.success_at, success_at)) END,
    error_at = CASE WHEN excluded.attempt > attempt THEN excluded.error_at
        WHEN excluded.attempt < attempt THEN error_at
        ELSE max(COALESCE(error_at, excluded.error_at), COALESCE(excluded.error_at, error_at)) END,
    success_duration = CASE WHEN excluded.attempt > attempt THEN excluded.success_duration
        WHEN excluded.attempt < attempt THEN success_duration
        WHEN excluded.success_at IS NOT NULL AND (success_at IS NULL OR excluded.success_at >= success_at)
        THEN excluded.success_duration ELSE success_duration END";

const UPSERT_INSTANCE: &str = "
INSERT INTO instances (product, installation_id, last_active_at) VALUES (?1, ?2, ?3)
ON CONFLICT (product, installation_id) DO UPDATE SET last_active_at = max(last_active_at, excluded.last_active_at)";

/// Queues a newly stored event (?2 = its row ID) for backend ?1.
const QUEUE: &str = "INSERT OR IGNORE INTO forward_queue (target, event_id) VALUES (?1, ?2)";

/// Stores `events` in one transaction; events with an already-stored message ID are skipped.
/// Each new event is queued for every backend in `forward` (name, and the only event name it
/// takes, if any).
pub fn insert(
    conn: &mut Connection,
    events: &[Event],
    received_at_ms: i64,
    trusted: (i64, i64),
    forward: &[(String, Option<String>)],
) -> Result<Inserted, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = Inserted::default();
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        let mut installation = tx.prepare_cached(&sql(UPSERT_INSTALLATION))?;
        let mut instance = tx.prepare_cached(UPSERT_INSTANCE)?;
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
            fold(Fold::of(e, ts), &mut installation, &mut instance)?;
        }
    }
    tx.commit()?;
    Ok(inserted)
}

/// Runs the upsert that fits the event, if any.
fn fold(f: Fold<'_>, installation: &mut Statement<'_>, instance: &mut Statement<'_>) -> rusqlite::Result<()> {
    let product = f.product.unwrap_or(NO_PRODUCT);
    match f.event {
        names::STARTED | names::SUCCESS | names::ERROR => {
            installation.execute(params![
                product,
                f.installation_id,
                f.os,
                f.os_version,
                f.product_version,
                f.ts,
                f.event,
                f.duration_ms,
                f.arch,
                f.container,
                f.ci,
                f.attempt,
                f.agent,
                f.install_method,
            ])?;
        }
        names::INSTANCE_ACTIVE => {
            instance.execute(params![product, f.installation_id, f.ts])?;
        }
        _ => {}
    }
    Ok(())
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
                       json_extract(properties, '$.{CI}') IN (1, 'true'),
                       json_extract(properties, '$.{AGENT}'), json_extract(properties, '$.{INSTALL_METHOD}'),
                       CAST(json_extract(properties, '$.{ATTEMPT}') AS INTEGER)"))?;
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
                let (agent, method): (Option<String>, Option<String>) = (r.get(10)?, r.get(11)?);
                fold(
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
                        agent: agent.as_deref(),
                        install_method: method.as_deref(),
                        attempt: r.get::<_, Option<i64>>(12)?.filter(|a| *a >= 1),
                    },
                    &mut installation,
                    &mut instance,
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(renamed)
}
