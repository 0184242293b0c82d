//! The write path, as in `sqlite/ingest.rs`: one transaction per request stores the events (a
//! message ID already stored, by this replica or another, is skipped: `ON CONFLICT DO
//! NOTHING`), queues them for the relay, folds each into its installation or instance and counts
//! it into the aggregates (`aggregates.rs`). Each of those steps is one statement over arrays,
//! whatever the number of events, so a request costs a dozen round trips.

use std::collections::{HashMap, HashSet};

use postgres::{Client, Row, Transaction};

use super::aggregates;
use crate::event::{Event, EventNames, names};
use crate::store::fold::{Changes, Fold, Installation};
use crate::store::{Inserted, StoreError, sql};

/// `ts_ms` is the sent timestamp when it parses and lies in `[$16, $17]`, else the receipt time
/// ($15). Rows are inserted in the request's order (so are their IDs); returns the message IDs
/// stored (not those already stored).
const INSERT: &str = "
INSERT INTO events (
    message_id, protocol, event, installation_id, timestamp, ts_ms, received_at,
    product, product_version, os, os_version, step, exit_code, email, duration_ms, properties
)
SELECT e.message_id, e.protocol, e.event, e.installation_id, e.timestamp,
       COALESCE((SELECT sent FROM (SELECT beacon_sent_ms(e.timestamp) AS sent) AS t WHERE sent BETWEEN $16 AND $17),
                $15),
       $15, e.product, e.product_version, e.os, e.os_version, e.step, e.exit_code, e.email, e.duration_ms,
       e.properties
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::bigint[], $12::text[], $13::bigint[], $14::text[]) WITH ORDINALITY
     AS e (message_id, protocol, event, installation_id, timestamp, product, product_version, os, os_version, step,
           exit_code, email, duration_ms, properties, n)
ORDER BY e.n
ON CONFLICT (message_id) DO NOTHING RETURNING message_id, id, ts_ms";

const QUEUE: &str = "INSERT INTO forward_queue (target, event_id) SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT DO NOTHING";

const UPSERT_INSTANCES: &str = "
INSERT INTO instances AS i (product, installation_id, last_active_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
ON CONFLICT (product, installation_id) DO UPDATE SET last_active_at = GREATEST(i.last_active_at, excluded.last_active_at)";

/// Stores `events` in one transaction, committed before this returns; see `sqlite/ingest.rs`.
pub fn insert(
    client: &mut Client,
    events: &[Event],
    received_at_ms: i64,
    trusted: (i64, i64),
    forward: &[(String, Option<String>)],
) -> Result<Inserted, StoreError> {
    // A message ID sent twice in one request is stored the first time.
    let mut seen = HashSet::new();
    let unique: Vec<&Event> = events.iter().filter(|e| seen.insert(e.message_id.as_str())).collect();
    let mut tx = client.transaction()?;
    let text = |f: fn(&Event) -> Option<&str>| unique.iter().map(|e| f(e)).collect::<Vec<Option<&str>>>();
    let int = |f: fn(&Event) -> Option<i64>| unique.iter().map(|e| f(e)).collect::<Vec<Option<i64>>>();
    let properties: Vec<String> = unique
        .iter()
        .map(|e| serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into()))
        .collect();
    let stored: HashMap<String, (i64, i64)> = tx
        .query(
            INSERT,
            &[
                &text(|e| Some(&e.message_id)),
                &text(|e| Some(e.protocol.name())),
                &text(|e| Some(&e.event)),
                &text(|e| Some(&e.installation_id)),
                &text(|e| e.timestamp.as_deref()),
                &text(|e| e.product.as_deref()),
                &text(|e| e.product_version.as_deref()),
                &text(|e| e.os.as_deref()),
                &text(|e| e.os_version.as_deref()),
                &text(|e| e.step.as_deref()),
                &int(|e| e.exit_code),
                &text(|e| e.email.as_deref()),
                &int(|e| e.duration_ms),
                &properties,
                &received_at_ms,
                &trusted.0,
                &trusted.1,
            ],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
        .collect::<Result<_, postgres::Error>>()?;
    let new: Vec<(&Event, i64, i64)> = unique
        .iter()
        .filter_map(|e| stored.get(&e.message_id).map(|(id, ts)| (*e, *id, *ts)))
        .collect();
    let (mut targets, mut queued) = (Vec::new(), Vec::new());
    for (e, id, _) in &new {
        for (backend, only) in forward {
            if only.as_ref().is_none_or(|name| *name == e.event) {
                targets.push(backend.as_str());
                queued.push(*id);
            }
        }
    }
    if !queued.is_empty() {
        tx.execute(QUEUE, &[&targets, &queued])?;
    }
    let folds: Vec<Fold<'_>> = new.iter().map(|(e, _, ts)| Fold::of(e, *ts)).collect();
    fold(&mut tx, &folds)?;
    tx.commit()?;
    Ok(Inserted {
        stored: new.len(),
        duplicates: events.len() - new.len(),
    })
}

/// Folds stored events into their installations and instances and counts them into the
/// aggregates. The installations are locked (see [`aggregates::lock`]) and loaded first, so a
/// replica folding events of the same installation at once waits, then folds into this
/// transaction's row.
fn fold(tx: &mut Transaction<'_>, folds: &[Fold<'_>]) -> Result<(), StoreError> {
    let keys = |wanted: fn(&Fold<'_>) -> bool| {
        let mut keys: Vec<(&str, &str)> = folds
            .iter()
            .filter(|f| wanted(f))
            .map(|f| (f.product(), f.installation_id))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    };
    let (installations, instances) = (
        keys(|f| f.is_installation()),
        keys(|f| f.event == names::INSTANCE_ACTIVE),
    );
    let mut both = [installations.as_slice(), instances.as_slice()].concat();
    both.sort_unstable();
    both.dedup();
    aggregates::lock(tx, &both)?;
    let mut stored: HashMap<(String, String), Installation> = aggregates::load(tx, &installations)?
        .into_iter()
        .map(|i| ((i.product.clone(), i.installation_id.clone()), i))
        .collect();
    let mut active = aggregates::last_active(tx, &instances)?;
    let mut changes = Changes::default();
    for f in folds {
        let key = || (f.product().to_string(), f.installation_id.to_string());
        if f.event == names::INSTANCE_ACTIVE {
            changes.instance(f, || Ok::<_, StoreError>(active.remove(&key())))?;
        }
        changes.fold(f, || Ok::<_, StoreError>(stored.remove(&key())))?;
    }
    let mut done = changes.finish();
    aggregates::save(tx, &done.installations)?;
    if !done.instances.is_empty() {
        // Sorted, so that replicas upserting the same instances lock them in one order.
        done.instances.sort_unstable();
        let products: Vec<&str> = done.instances.iter().map(|(p, _, _)| p.as_str()).collect();
        let ids: Vec<&str> = done.instances.iter().map(|(_, id, _)| id.as_str()).collect();
        let at: Vec<i64> = done.instances.iter().map(|(_, _, at)| *at).collect();
        tx.execute(UPSERT_INSTANCES, &[&products, &ids, &at])?;
    }
    aggregates::write(tx, &done.tallies)?;
    Ok(())
}

/// Renames events stored under a branded name and folds them in as if they had arrived under
/// their standard name; see `sqlite/ingest.rs`.
pub fn adopt_renamed(client: &mut Client, names: &EventNames) -> Result<u64, StoreError> {
    let mut tx = client.transaction()?;
    let rename = tx.prepare(&sql(
        "UPDATE events SET event = $1 WHERE event = $2
         RETURNING product, installation_id, os, os_version, product_version, ts_ms, duration_ms,
                   properties::jsonb ->> '{ARCH}', properties::jsonb ->> '{CONTAINER}',
                   properties::jsonb -> '{CI}' IN ('1'::jsonb, 'true'::jsonb, '\"true\"'::jsonb),
                   properties::jsonb ->> '{AGENT}', properties::jsonb ->> '{INSTALL_METHOD}',
                   CASE WHEN properties::jsonb ->> '{ATTEMPT}' ~ '^[0-9]{1,18}$'
                        THEN (properties::jsonb ->> '{ATTEMPT}')::bigint END,
                   step, exit_code,
                   CASE WHEN jsonb_typeof(properties::jsonb -> '{MESSAGE}') = 'string' THEN message END",
    ))?;
    let mut renamed: Vec<(&str, Row)> = Vec::new();
    for (branded, standard) in names.renamed() {
        renamed.extend(
            tx.query(&rename, &[&standard, &branded])?
                .into_iter()
                .map(|r| (standard, r)),
        );
    }
    let folds = renamed
        .iter()
        .map(|(standard, r)| {
            Ok(Fold {
                event: standard,
                product: r.try_get(0)?,
                installation_id: r.try_get(1)?,
                os: r.try_get(2)?,
                os_version: r.try_get(3)?,
                product_version: r.try_get(4)?,
                ts: r.try_get(5)?,
                duration_ms: r.try_get(6)?,
                arch: r.try_get(7)?,
                container: r.try_get(8)?,
                ci: r.try_get(9)?,
                agent: r.try_get(10)?,
                install_method: r.try_get(11)?,
                attempt: r.try_get::<_, Option<i64>>(12)?.filter(|a| *a >= 1),
                step: r.try_get(13)?,
                exit_code: r.try_get(14)?,
                message: r.try_get(15)?,
            })
        })
        .collect::<Result<Vec<_>, postgres::Error>>()?;
    fold(&mut tx, &folds)?;
    tx.commit()?;
    Ok(u64::try_from(renamed.len()).unwrap_or(u64::MAX))
}
