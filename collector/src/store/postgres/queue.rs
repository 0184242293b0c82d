//! The relay's queue, as in `sqlite/queue.rs`, shared by every replica: [`load`] claims the
//! events it hands out (`FOR UPDATE SKIP LOCKED`, then a lease), so two replicas relaying to the
//! same backend send each event once. A replica sees its own claims again (it retries them). Its
//! connections carry its claimant name ([`application_name`]), so the claims of a replica with no
//! session left (killed: its connections closed) are free at once; a claim left by a replica whose
//! connections linger (its machine gone without closing them) lapses after [`CLAIM_MS`].

use postgres::Client;

use super::count;
use crate::clock;
use crate::store::{Forward, Forwarding, Queued, Settled, StoreError};

/// How long a claim keeps other replicas off an event: longer than a send takes.
const CLAIM_MS: i64 = 120_000;

/// The `application_name` of the sessions of a replica that claims as `claimant`.
pub fn application_name(claimant: &str) -> String {
    format!("beacon-collector {claimant}")
}

pub fn configure(client: &mut Client, backends: &[Forward<'_>]) -> Result<Vec<(String, u64)>, StoreError> {
    for Forward { name, url, .. } in backends {
        client.execute(
            "INSERT INTO forward_status (target, url) VALUES ($1, $2)
             ON CONFLICT (target) DO UPDATE SET url = excluded.url",
            &[name, url],
        )?;
    }
    let rows = client.query(
        "SELECT target, COUNT(*) FROM forward_queue GROUP BY target ORDER BY target",
        &[],
    )?;
    let mut left = Vec::new();
    for r in &rows {
        let backend: String = r.try_get(0)?;
        if !backends.iter().any(|b| b.name == backend) {
            left.push((backend, count(r, 1)?));
        }
    }
    Ok(left)
}

/// Claims for `claimant` and returns the oldest `limit` events of `target` no other live replica
/// holds.
pub fn load(client: &mut Client, claimant: &str, target: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
    let now = clock::now_ms();
    let rows = client.query(
        "WITH live AS (
            SELECT substr(application_name, length($6) + 1) AS claimant FROM pg_stat_activity
            WHERE starts_with(application_name, $6)),
         free AS (
            SELECT event_id FROM forward_queue
            WHERE target = $1
              AND (claimed_until < $3 OR claimed_by = $2 OR claimed_by NOT IN (SELECT claimant FROM live))
            ORDER BY event_id LIMIT $4 FOR UPDATE SKIP LOCKED),
         claimed AS (
            UPDATE forward_queue q SET claimed_by = $2, claimed_until = $3 + $5
            FROM free WHERE q.target = $1 AND q.event_id = free.event_id RETURNING q.event_id)
         SELECT e.id, e.message_id, e.event, e.installation_id, e.ts_ms, e.properties
         FROM claimed JOIN events e ON e.id = claimed.event_id ORDER BY e.id",
        &[
            &target,
            &claimant,
            &now,
            &i64::try_from(limit).unwrap_or(i64::MAX),
            &CLAIM_MS,
            &application_name(""),
        ],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Queued {
                event_id: r.try_get(0)?,
                message_id: r.try_get(1)?,
                event: r.try_get(2)?,
                installation_id: r.try_get(3)?,
                ts_ms: r.try_get(4)?,
                properties: r.try_get(5)?,
            })
        })
        .collect()
}

/// Records the outcome of sending `events`: sent or refused ones leave the queue, failed ones
/// are released for whichever replica tries next.
pub fn settle(
    client: &mut Client,
    claimant: &str,
    target: &str,
    events: &[Queued],
    outcome: &Settled,
    now_ms: i64,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = events.iter().map(|e| e.event_id).collect();
    let n = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let mut tx = client.transaction()?;
    match outcome {
        Settled::Failed(error) => {
            tx.execute(
                "UPDATE forward_queue SET claimed_until = 0
                 WHERE target = $1 AND event_id = ANY($2) AND claimed_by = $3",
                &[&target, &ids, &claimant],
            )?;
            tx.execute(
                "UPDATE forward_status SET failing_since = COALESCE(failing_since, $2), last_error = $3
                 WHERE target = $1",
                &[&target, &now_ms, error],
            )?;
        }
        Settled::Forwarded | Settled::Rejected(_) => {
            tx.execute(
                "DELETE FROM forward_queue WHERE target = $1 AND event_id = ANY($2)",
                &[&target, &ids],
            )?;
            match outcome {
                Settled::Rejected(error) => tx.execute(
                    "UPDATE forward_status SET rejected = rejected + $2, last_error = $3 WHERE target = $1",
                    &[&target, &n, error],
                )?,
                _ => tx.execute(
                    "UPDATE forward_status SET forwarded = forwarded + $2, last_success_at = $3,
                         failing_since = NULL, last_error = NULL WHERE target = $1",
                    &[&target, &n, &now_ms],
                )?,
            };
        }
    }
    tx.commit()?;
    Ok(())
}

pub fn status(client: &mut Client) -> Result<Vec<Forwarding>, StoreError> {
    let rows = client.query(
        "SELECT s.target, s.url, s.forwarded,
                (SELECT COUNT(*) FROM forward_queue q WHERE q.target = s.target),
                s.rejected, s.last_success_at, s.failing_since, s.last_error
         FROM forward_status s ORDER BY s.target",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Forwarding {
                backend: r.try_get(0)?,
                url: r.try_get(1)?,
                forwarded: count(r, 2)?,
                queued: count(r, 3)?,
                rejected: count(r, 4)?,
                last_success: r.try_get::<_, Option<i64>>(5)?.map(clock::iso_seconds),
                failing_since: r.try_get::<_, Option<i64>>(6)?.map(clock::iso_seconds),
                last_error: r.try_get(7)?,
            })
        })
        .collect()
}
