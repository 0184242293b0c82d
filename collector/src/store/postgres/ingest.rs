//! The write path, as in `sqlite/ingest.rs`: one transaction per request stores the events
//! (a message ID already stored, by this replica or another, is skipped: `ON CONFLICT DO
//! NOTHING`), folds each into its installation or instance, and queues it for the relay.

use postgres::{Client, Statement, Transaction};

use crate::event::{Event, EventNames, NO_PRODUCT, names};
use crate::store::{Fold, Inserted, StoreError, sql};

/// `ts_ms` is the sent timestamp when it parses and lies in `[$16, $17]`, else the receipt time.
const INSERT: &str = "
INSERT INTO events (
    message_id, protocol, event, installation_id, timestamp, ts_ms, received_at,
    product, product_version, os, os_version, step, exit_code, email, duration_ms, properties
) VALUES (
    $1, $2, $3, $4, $5,
    COALESCE((SELECT sent FROM (SELECT beacon_sent_ms($5) AS sent) AS t WHERE sent BETWEEN $16 AND $17), $6), $6,
    $7, $8, $9, $10, $11, $12, $13, $14, $15
) ON CONFLICT (message_id) DO NOTHING RETURNING id, ts_ms";

/// `sqlite/ingest.rs`'s upsert: a later attempt starts over, an earlier one changes nothing.
const UPSERT_INSTALLATION: &str = "
INSERT INTO installations AS i (
    product, installation_id, os, os_version, product_version,
    first_at, started_at, success_at, error_at, success_duration, arch, container, ci,
    attempt, agent, install_method
) VALUES (
    $1, $2, COALESCE($3, 'unknown'), COALESCE($4, ''), COALESCE($5, 'unknown'), $6,
    CASE WHEN $7::text = '{STARTED}' THEN $6::bigint END,
    CASE WHEN $7::text = '{SUCCESS}' THEN $6::bigint END,
    CASE WHEN $7::text = '{ERROR}' THEN $6::bigint END,
    CASE WHEN $7::text = '{SUCCESS}' THEN $8::bigint END,
    COALESCE($9, 'unknown'), COALESCE($10, 'unknown'), COALESCE($11, false),
    COALESCE($12::bigint, 1), COALESCE($13, ''), COALESCE($14, 'unknown')
) ON CONFLICT (product, installation_id) DO UPDATE SET
    os = COALESCE($3, i.os),
    os_version = COALESCE($4, i.os_version),
    product_version = COALESCE($5, i.product_version),
    arch = COALESCE($9, i.arch),
    container = COALESCE($10, i.container),
    ci = COALESCE($11, i.ci),
    agent = COALESCE($13, i.agent),
    install_method = COALESCE($14, i.install_method),
    first_at = LEAST(i.first_at, excluded.first_at),
    attempt = GREATEST(i.attempt, excluded.attempt),
    earlier_succeeded = i.earlier_succeeded + (excluded.attempt > i.attempt AND i.success_at IS NOT NULL
        AND (i.error_at IS NULL OR i.success_at >= i.error_at))::int,
    earlier_failed = i.earlier_failed + (excluded.attempt > i.attempt AND i.error_at IS NOT NULL
        AND (i.success_at IS NULL OR i.success_at < i.error_at))::int,
    started_at = CASE WHEN excluded.attempt > i.attempt THEN excluded.started_at
        WHEN excluded.attempt < i.attempt THEN i.started_at
        ELSE LEAST(i.started_at, excluded.started_at) END,
    success_at = CASE WHEN excluded.attempt > i.attempt THEN excluded.success_at
        WHEN excluded.attempt < i.attempt THEN i.success_at
        ELSE GREATEST(i.success_at, excluded.success_at) END,
    error_at = CASE WHEN excluded.attempt > i.attempt THEN excluded.error_at
        WHEN excluded.attempt < i.attempt THEN i.error_at
        ELSE GREATEST(i.error_at, excluded.error_at) END,
    success_duration = CASE WHEN excluded.attempt > i.attempt THEN excluded.success_duration
        WHEN excluded.attempt < i.attempt THEN i.success_duration
        WHEN excluded.success_at IS NOT NULL AND (i.success_at IS NULL OR excluded.success_at >= i.success_at)
        THEN excluded.success_duration ELSE i.success_duration END";

const UPSERT_INSTANCE: &str = "
INSERT INTO instances AS i (product, installation_id, last_active_at) VALUES ($1, $2, $3)
ON CONFLICT (product, installation_id) DO UPDATE SET last_active_at = GREATEST(i.last_active_at, excluded.last_active_at)";

const QUEUE: &str = "INSERT INTO forward_queue (target, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// The two upserts events are folded with, prepared once per transaction.
struct Folds {
    installation: Statement,
    instance: Statement,
}

impl Folds {
    fn prepare(tx: &mut Transaction<'_>) -> Result<Folds, postgres::Error> {
        Ok(Folds {
            installation: tx.prepare(&sql(UPSERT_INSTALLATION))?,
            instance: tx.prepare(UPSERT_INSTANCE)?,
        })
    }
}

/// Stores `events` in one transaction, committed before this returns; see `sqlite/ingest.rs`.
pub fn insert(
    client: &mut Client,
    events: &[Event],
    received_at_ms: i64,
    trusted: (i64, i64),
    forward: &[(String, Option<String>)],
) -> Result<Inserted, StoreError> {
    let mut tx = client.transaction()?;
    let insert = tx.prepare(INSERT)?;
    let queue = tx.prepare(QUEUE)?;
    let folds = Folds::prepare(&mut tx)?;
    let mut inserted = Inserted::default();
    for e in events {
        let props = serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into());
        let stored = tx.query_opt(
            &insert,
            &[
                &e.message_id,
                &e.protocol.name(),
                &e.event,
                &e.installation_id,
                &e.timestamp,
                &received_at_ms,
                &e.product,
                &e.product_version,
                &e.os,
                &e.os_version,
                &e.step,
                &e.exit_code,
                &e.email,
                &e.duration_ms,
                &props,
                &trusted.0,
                &trusted.1,
            ],
        )?;
        let Some(row) = stored else {
            inserted.duplicates += 1;
            continue;
        };
        let (id, ts): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        inserted.stored += 1;
        for (backend, only) in forward {
            if only.as_ref().is_none_or(|name| *name == e.event) {
                tx.execute(&queue, &[backend, &id])?;
            }
        }
        fold(&mut tx, &folds, Fold::of(e, ts))?;
    }
    tx.commit()?;
    Ok(inserted)
}

/// Runs the upsert that fits the event, if any.
fn fold(tx: &mut Transaction<'_>, folds: &Folds, f: Fold<'_>) -> Result<(), postgres::Error> {
    let product = f.product.unwrap_or(NO_PRODUCT);
    match f.event {
        names::STARTED | names::SUCCESS | names::ERROR => {
            tx.execute(
                &folds.installation,
                &[
                    &product,
                    &f.installation_id,
                    &f.os,
                    &f.os_version,
                    &f.product_version,
                    &f.ts,
                    &f.event,
                    &f.duration_ms,
                    &f.arch,
                    &f.container,
                    &f.ci,
                    &f.attempt,
                    &f.agent,
                    &f.install_method,
                ],
            )?;
        }
        names::INSTANCE_ACTIVE => {
            tx.execute(&folds.instance, &[&product, &f.installation_id, &f.ts])?;
        }
        _ => {}
    }
    Ok(())
}

/// Renames events stored under a branded name and folds them in; see `sqlite/ingest.rs`.
pub fn adopt_renamed(client: &mut Client, names: &EventNames) -> Result<u64, StoreError> {
    let mut tx = client.transaction()?;
    let rename = tx.prepare(&sql("UPDATE events SET event = $1 WHERE event = $2
         RETURNING product, installation_id, os, os_version, product_version, ts_ms, duration_ms,
                   properties::jsonb ->> '{ARCH}', properties::jsonb ->> '{CONTAINER}',
                   properties::jsonb -> '{CI}' IN ('1'::jsonb, 'true'::jsonb, '\"true\"'::jsonb),
                   properties::jsonb ->> '{AGENT}', properties::jsonb ->> '{INSTALL_METHOD}',
                   CASE WHEN properties::jsonb ->> '{ATTEMPT}' ~ '^[0-9]{1,18}$'
                        THEN (properties::jsonb ->> '{ATTEMPT}')::bigint END"))?;
    let folds = Folds::prepare(&mut tx)?;
    let mut renamed = 0;
    for (branded, standard) in names.renamed() {
        for r in tx.query(&rename, &[&standard, &branded])? {
            renamed += 1;
            let (product, id): (Option<String>, String) = (r.try_get(0)?, r.try_get(1)?);
            let (os, os_version, version): (Option<String>, Option<String>, Option<String>) =
                (r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
            let (arch, container): (Option<String>, Option<String>) = (r.try_get(7)?, r.try_get(8)?);
            let (agent, method): (Option<String>, Option<String>) = (r.try_get(10)?, r.try_get(11)?);
            fold(
                &mut tx,
                &folds,
                Fold {
                    event: standard,
                    product: product.as_deref(),
                    installation_id: &id,
                    os: os.as_deref(),
                    os_version: os_version.as_deref(),
                    product_version: version.as_deref(),
                    ts: r.try_get(5)?,
                    duration_ms: r.try_get(6)?,
                    arch: arch.as_deref(),
                    container: container.as_deref(),
                    ci: r.try_get(9)?,
                    agent: agent.as_deref(),
                    install_method: method.as_deref(),
                    attempt: r.try_get::<_, Option<i64>>(12)?.filter(|a| *a >= 1),
                    ..Fold::empty()
                },
            )?;
        }
    }
    tx.commit()?;
    Ok(renamed)
}
