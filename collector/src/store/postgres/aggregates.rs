//! The report's aggregates in PostgreSQL, as in `sqlite/aggregates.rs` (see `store/tally.rs`),
//! with what several writers on one database need: a transaction locks the installations it
//! folds into before loading them (advisory locks, taken in one order by every writer), and it
//! changes the aggregates by additive upserts whose rows come in the sorted order [`Tallies`]
//! gives, so that concurrent writers neither lose a count nor deadlock. Each table's changes are
//! one statement (arrays unnested), whatever the number of rows.

use std::collections::{HashMap, HashSet};

use postgres::types::ToSql;
use postgres::{Client, Row, Transaction};

use super::count;
use crate::clock::DAY_MS;
use crate::event::names;
use crate::store::fold::{Fold, Installation};
use crate::store::tally::{Counts, DayCount, Dim, ErrorKey, HOUR_MS, Histogram, Tallies, TallyKey};
use crate::store::{NO_EXIT_CODE, Rebuilt, Status, StoreError, sql};

const INSTALLATION: &str = "product, installation_id, os, os_version, product_version, arch, container, ci, agent,
    install_method, first_at, started_at, success_at, error_at, success_duration, attempt, earlier_succeeded,
    earlier_failed, error_steps";

fn installation(r: &Row) -> Result<Installation, postgres::Error> {
    Ok(Installation {
        product: r.try_get(0)?,
        installation_id: r.try_get(1)?,
        os: r.try_get(2)?,
        os_version: r.try_get(3)?,
        product_version: r.try_get(4)?,
        arch: r.try_get(5)?,
        container: r.try_get(6)?,
        ci: r.try_get(7)?,
        agent: r.try_get(8)?,
        install_method: r.try_get(9)?,
        first_at: r.try_get(10)?,
        started_at: r.try_get(11)?,
        success_at: r.try_get(12)?,
        error_at: r.try_get(13)?,
        success_duration: r.try_get(14)?,
        attempt: r.try_get(15)?,
        earlier_succeeded: r.try_get(16)?,
        earlier_failed: r.try_get(17)?,
        error_steps: r.try_get(18)?,
    })
}

/// Locks installations `keys` (product, ID) until the transaction ends: one advisory lock per
/// key's hash, taken in the hashes' order, so that writers touching the same installations wait
/// for each other instead of deadlocking.
pub fn lock(tx: &mut Transaction<'_>, keys: &[(&str, &str)]) -> Result<(), postgres::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let (products, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
    tx.execute(
        "SELECT pg_advisory_xact_lock(k) FROM (
             SELECT DISTINCT hashtextextended(p || chr(31) || i, 0) AS k
             FROM unnest($1::text[], $2::text[]) AS t(p, i) ORDER BY k) AS sorted",
        &[&products, &ids],
    )?;
    Ok(())
}

/// The stored rows of installations `keys` (product, ID), in one query, locked until the
/// transaction ends: retention, which does not take the advisory locks, renames only rows no
/// writer holds (and a writer that waited for a renamed row finds none, so it starts a new one).
pub fn load(tx: &mut Transaction<'_>, keys: &[(&str, &str)]) -> Result<Vec<Installation>, postgres::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (products, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
    tx.query(
        &format!(
            "SELECT {INSTALLATION} FROM installations
             WHERE (product, installation_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
             FOR UPDATE"
        ),
        &[&products, &ids],
    )?
    .iter()
    .map(installation)
    .collect()
}

/// When the instances `keys` (product, ID) were last active, those stored, locked until the
/// transaction ends (retention deletes only rows nobody holds).
pub fn last_active(
    tx: &mut Transaction<'_>,
    keys: &[(&str, &str)],
) -> Result<HashMap<(String, String), i64>, postgres::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (products, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
    tx.query(
        "SELECT i.product, i.installation_id, i.last_active_at FROM instances AS i
         JOIN unnest($1::text[], $2::text[]) AS k (product, id) ON i.product = k.product AND i.installation_id = k.id
         ORDER BY 1, 2 FOR UPDATE OF i",
        &[&products, &ids],
    )?
    .iter()
    .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)))
    .collect()
}

/// Writes `rows` over their stored rows (or as new ones), in one statement.
pub fn save(tx: &mut Transaction<'_>, rows: &[Installation]) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&Installation) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let int = |f: fn(&Installation) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let time = |f: fn(&Installation) -> Option<i64>| rows.iter().map(f).collect::<Vec<Option<i64>>>();
    let ci: Vec<bool> = rows.iter().map(|i| i.ci).collect();
    tx.execute(
        &format!(
            "INSERT INTO installations ({INSTALLATION})
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::boolean[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[],
                 $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::text[])
             ON CONFLICT (product, installation_id) DO UPDATE SET
                 os = excluded.os, os_version = excluded.os_version, product_version = excluded.product_version,
                 arch = excluded.arch, container = excluded.container, ci = excluded.ci, agent = excluded.agent,
                 install_method = excluded.install_method, first_at = excluded.first_at,
                 started_at = excluded.started_at, success_at = excluded.success_at,
                 error_at = excluded.error_at, success_duration = excluded.success_duration,
                 attempt = excluded.attempt, earlier_succeeded = excluded.earlier_succeeded,
                 earlier_failed = excluded.earlier_failed, error_steps = excluded.error_steps"
        ),
        &[
            &text(|i| &i.product),
            &text(|i| &i.installation_id),
            &text(|i| &i.os),
            &text(|i| &i.os_version),
            &text(|i| &i.product_version),
            &text(|i| &i.arch),
            &text(|i| &i.container),
            &ci,
            &text(|i| &i.agent),
            &text(|i| &i.install_method),
            &int(|i| i.first_at),
            &time(|i| i.started_at),
            &time(|i| i.success_at),
            &time(|i| i.error_at),
            &time(|i| i.success_duration),
            &int(|i| i.attempt),
            &int(|i| i.earlier_succeeded),
            &int(|i| i.earlier_failed),
            &text(|i| &i.error_steps),
        ],
    )?;
    Ok(())
}

/// `tallies` keys as the columns of an `unnest`.
#[derive(Default)]
struct Keys<'a> {
    products: Vec<&'a str>,
    dims: Vec<i64>,
    tiers: Vec<i64>,
    periods: Vec<i64>,
    ci: Vec<bool>,
    agent: Vec<bool>,
    values: Vec<&'a str>,
    statuses: Vec<i64>,
}

impl<'a> Keys<'a> {
    fn push(&mut self, k: &'a TallyKey) {
        self.products.push(&k.product);
        self.dims.push(k.dim as i64);
        self.tiers.push(k.tier);
        self.periods.push(k.period);
        self.ci.push(k.ci);
        self.agent.push(k.agent);
        self.values.push(&k.value);
        self.statuses.push(k.status.as_i64());
    }

    /// As parameters $1 to $8 (see [`KEYS`]).
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.products,
            &self.dims,
            &self.tiers,
            &self.periods,
            &self.ci,
            &self.agent,
            &self.values,
            &self.statuses,
        ]
    }
}

/// The `unnest` of [`Keys::params`].
const KEYS: &str = "unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::boolean[],
    $7::text[], $8::bigint[]) AS k (product, dim, tier, period, ci, agent, value, status)";

/// `tallies` row `t` is that of [`KEYS`]' `k`.
const KEY_MATCHES: &str = "t.product = k.product AND t.dim = k.dim AND t.tier = k.tier AND t.period = k.period
    AND t.ci = k.ci AND t.agent = k.agent AND t.value = k.value AND t.status = k.status";

/// Adds the changes of `t` to the aggregates; rows that come down to nothing are deleted.
pub fn write(tx: &mut Transaction<'_>, t: &Tallies) -> Result<(), postgres::Error> {
    write_tallies(tx, t)?;
    write_errors(tx, t)?;
    write_days(tx, t)?;
    write_active(tx, t)
}

fn write_active(tx: &mut Transaction<'_>, t: &Tallies) -> Result<(), postgres::Error> {
    let rows = t.sorted_active();
    if rows.is_empty() {
        return Ok(());
    }
    let products: Vec<&str> = rows.iter().map(|((p, _), _)| p.as_str()).collect();
    let hours: Vec<i64> = rows.iter().map(|((_, hour), _)| *hour).collect();
    let ns: Vec<i64> = rows.iter().map(|(_, n)| *n).collect();
    let emptied = tx.execute(
        "WITH counted AS (
             INSERT INTO active_hours AS a (product, hour, instances)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
             ON CONFLICT (product, hour) DO UPDATE SET instances = a.instances + excluded.instances
             RETURNING instances)
         SELECT 1 FROM counted WHERE instances <= 0",
        &[&products, &hours, &ns],
    )?;
    if emptied > 0 {
        tx.execute(
            "DELETE FROM active_hours AS a USING unnest($1::text[], $2::bigint[]) AS k (product, hour)
             WHERE a.product = k.product AND a.hour = k.hour AND a.instances <= 0",
            &[&products, &hours],
        )?;
    }
    Ok(())
}

/// See `sqlite/aggregates.rs`.
pub fn active_instances(
    client: &mut Client,
    products: &[String],
    since_ms: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = client.query(
        "SELECT product, SUM(instances)::bigint FROM active_hours WHERE product = ANY($1) AND hour >= $2
         GROUP BY product HAVING SUM(instances) > 0 ORDER BY product",
        &[&products, &since_ms.div_euclid(HOUR_MS)],
    )?;
    rows.iter().map(|r| Ok((r.try_get(0)?, count(r, 1)?))).collect()
}

/// After retention dropped the instances inactive since `cutoff_ms`: counts the hour of the
/// cutoff again and drops the hours before.
pub fn retain_active(tx: &mut Transaction<'_>, cutoff_ms: i64) -> Result<(), postgres::Error> {
    let hour = cutoff_ms.div_euclid(HOUR_MS);
    tx.execute("DELETE FROM active_hours WHERE hour <= $1", &[&hour])?;
    tx.execute(
        "INSERT INTO active_hours (product, hour, instances)
         SELECT product, last_active_at / 3600000, COUNT(*) FROM instances
         WHERE last_active_at >= $1 AND last_active_at < $2 GROUP BY 1, 2",
        &[&(hour * HOUR_MS), &((hour + 1) * HOUR_MS)],
    )?;
    Ok(())
}

/// The counts are added in one upsert, which locks each row (in key order) and returns the
/// histogram stored in it; the merged histograms are then written over the locked rows.
fn write_tallies(tx: &mut Transaction<'_>, t: &Tallies) -> Result<(), postgres::Error> {
    let changes = t.rows();
    if changes.is_empty() {
        return Ok(());
    }
    let mut keys = Keys::default();
    for k in changes.keys() {
        keys.push(k);
    }
    let count = |f: fn(&Counts) -> i64| changes.values().map(f).collect::<Vec<i64>>();
    let counts = [
        count(|c| c.installations),
        count(|c| c.attempts),
        count(|c| c.earlier_succeeded),
        count(|c| c.earlier_failed),
        count(|c| c.had_failed),
    ];
    let mut params = keys.params();
    params.extend(counts.iter().map(|c| c as &(dyn ToSql + Sync)));
    let stored = tx.query(
        "INSERT INTO tallies AS t (product, dim, tier, period, ci, agent, value, status, installations, attempts,
                                   earlier_succeeded, earlier_failed, had_failed, durations)
         SELECT *, ''::bytea FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[],
             $6::boolean[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
             $13::bigint[])
         ON CONFLICT (product, dim, tier, period, ci, agent, value, status) DO UPDATE SET
            installations = t.installations + excluded.installations,
            attempts = t.attempts + excluded.attempts,
            earlier_succeeded = t.earlier_succeeded + excluded.earlier_succeeded,
            earlier_failed = t.earlier_failed + excluded.earlier_failed,
            had_failed = t.had_failed + excluded.had_failed
         RETURNING product, dim, tier, period, ci, agent, value, status, installations, durations",
        &params,
    )?;
    let (mut merged, mut histograms, mut empty) = (Keys::default(), Vec::new(), Keys::default());
    for r in &stored {
        let Some(key) = tally_key(r)? else { continue };
        let Some((k, c)) = changes.get_key_value(&key) else {
            continue;
        };
        if r.try_get::<_, i64>(8)? == 0 {
            empty.push(k);
        } else if !c.durations.0.is_empty() {
            let mut h = Histogram::from_bytes(r.try_get(9)?);
            h.merge(&c.durations);
            merged.push(k);
            histograms.push(h.to_bytes());
        }
    }
    if !histograms.is_empty() {
        let mut params = merged.params();
        params.push(&histograms);
        tx.execute(
            &format!(
                "UPDATE tallies AS t SET durations = k.durations
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::boolean[],
                     $7::text[], $8::bigint[], $9::bytea[])
                     AS k (product, dim, tier, period, ci, agent, value, status, durations)
                 WHERE {KEY_MATCHES}"
            ),
            &params,
        )?;
    }
    if !empty.products.is_empty() {
        tx.execute(
            &format!("DELETE FROM tallies AS t USING {KEYS} WHERE {KEY_MATCHES}"),
            &empty.params(),
        )?;
    }
    Ok(())
}

/// The key of a `tallies` row read in its column order (`None` for a dimension or status this
/// version does not know).
fn tally_key(r: &Row) -> Result<Option<TallyKey>, postgres::Error> {
    let (Some(dim), Some(status)) = (Dim::from_i64(r.try_get(1)?), Status::from_i64(r.try_get(7)?)) else {
        return Ok(None);
    };
    Ok(Some(TallyKey {
        product: r.try_get(0)?,
        dim,
        tier: r.try_get(2)?,
        period: r.try_get(3)?,
        ci: r.try_get(4)?,
        agent: r.try_get(5)?,
        value: r.try_get(6)?,
        status,
    }))
}

fn write_errors(tx: &mut Transaction<'_>, t: &Tallies) -> Result<(), postgres::Error> {
    let rows = t.sorted_errors();
    if rows.is_empty() {
        return Ok(());
    }
    let products: Vec<&str> = rows.iter().map(|(k, _)| k.product.as_str()).collect();
    let days: Vec<i64> = rows.iter().map(|(k, _)| k.day).collect();
    let steps: Vec<&str> = rows.iter().map(|(k, _)| k.step.as_str()).collect();
    let codes: Vec<i64> = rows.iter().map(|(k, _)| k.exit_code.unwrap_or(NO_EXIT_CODE)).collect();
    let messages: Vec<&str> = rows.iter().map(|(k, _)| k.message.as_str()).collect();
    let events: Vec<i64> = rows.iter().map(|(_, (e, _))| *e).collect();
    let installations: Vec<i64> = rows.iter().map(|(_, (_, i))| *i).collect();
    let keys: [&(dyn ToSql + Sync); 5] = [&products, &days, &steps, &codes, &messages];
    let emptied = tx.execute(
        "WITH counted AS (
             INSERT INTO error_counts AS e (product, day, step, exit_code, message, events, installations)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::bigint[],
                                  $7::bigint[])
             ON CONFLICT (product, day, step, exit_code, message) DO UPDATE SET
                events = e.events + excluded.events, installations = e.installations + excluded.installations
             RETURNING events)
         SELECT 1 FROM counted WHERE events <= 0",
        &[keys.as_slice(), &[&events, &installations]].concat(),
    )?;
    if emptied > 0 {
        tx.execute(
            "DELETE FROM error_counts AS e
             USING unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[])
                 AS k (product, day, step, exit_code, message)
             WHERE e.product = k.product AND e.day = k.day AND e.step = k.step AND e.exit_code = k.exit_code
               AND e.message = k.message AND e.events <= 0",
            &keys,
        )?;
    }
    Ok(())
}

fn write_days(tx: &mut Transaction<'_>, t: &Tallies) -> Result<(), postgres::Error> {
    let rows = t.sorted_days();
    if rows.is_empty() {
        return Ok(());
    }
    let kinds: Vec<i64> = rows.iter().map(|((kind, _, _), _)| *kind as i64).collect();
    let products: Vec<&str> = rows.iter().map(|((_, p, _), _)| p.as_str()).collect();
    let days: Vec<i64> = rows.iter().map(|((_, _, day), _)| *day).collect();
    let ns: Vec<i64> = rows.iter().map(|(_, n)| *n).collect();
    let emptied = tx.execute(
        "WITH counted AS (
             INSERT INTO day_counts AS d (kind, product, day, n)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])
             ON CONFLICT (kind, product, day) DO UPDATE SET n = d.n + excluded.n
             RETURNING n)
         SELECT 1 FROM counted WHERE n <= 0",
        &[&kinds, &products, &days, &ns],
    )?;
    if emptied > 0 {
        tx.execute(
            "DELETE FROM day_counts AS d USING unnest($1::bigint[], $2::text[], $3::bigint[]) AS k (kind, product, day)
             WHERE d.kind = k.kind AND d.product = k.product AND d.day = k.day AND d.n <= 0",
            &[&kinds, &products, &days],
        )?;
    }
    Ok(())
}

/// The `tallies` rows of `products` and `dims` in the `(tier, from, to)` period ranges.
pub fn tallies(
    client: &mut Client,
    products: &[String],
    dims: &[Dim],
    ranges: &[(i64, i64, i64)],
    durations: bool,
) -> Result<Vec<(TallyKey, Counts)>, StoreError> {
    // One range at a time: each is a seek per (product, dim) along the primary key.
    let stmt = client.prepare(
        "SELECT product, dim, tier, period, ci, agent, value, status, installations, attempts,
                earlier_succeeded, earlier_failed, had_failed, CASE WHEN $6 THEN durations END
         FROM tallies
         WHERE product = ANY($1) AND dim = ANY($2) AND tier = $3 AND period >= $4 AND period < $5",
    )?;
    let dims: Vec<i64> = dims.iter().map(|d| *d as i64).collect();
    let mut out = Vec::new();
    for (tier, from, to) in ranges.iter().filter(|(_, from, to)| from < to) {
        for r in client.query(&stmt, &[&products, &dims, tier, from, to, &durations])? {
            let Some(key) = tally_key(&r)? else { continue };
            let counts = Counts {
                installations: r.try_get(8)?,
                attempts: r.try_get(9)?,
                earlier_succeeded: r.try_get(10)?,
                earlier_failed: r.try_get(11)?,
                had_failed: r.try_get(12)?,
                durations: Histogram::from_bytes(r.try_get::<_, Option<&[u8]>>(13)?.unwrap_or_default()),
            };
            out.push((key, counts));
        }
    }
    Ok(out)
}

/// Errors of `products` on days `[from_day, until_day)`, summed per product, step, exit code
/// and message.
pub fn error_days(
    client: &mut Client,
    products: &[String],
    from_day: i64,
    until_day: i64,
) -> Result<Vec<(ErrorKey, u64, u64)>, StoreError> {
    let rows = client.query(
        "SELECT product, step, exit_code, message, SUM(events)::bigint, SUM(installations)::bigint
         FROM error_counts WHERE product = ANY($1) AND day >= $2 AND day < $3
         GROUP BY product, step, exit_code, message",
        &[&products, &from_day, &until_day],
    )?;
    rows.iter()
        .map(|r| {
            let code: i64 = r.try_get(2)?;
            Ok((
                ErrorKey {
                    product: r.try_get(0)?,
                    day: from_day,
                    step: r.try_get(1)?,
                    exit_code: (code != NO_EXIT_CODE).then_some(code),
                    message: r.try_get(3)?,
                },
                count(r, 4)?,
                count(r, 5)?,
            ))
        })
        .collect()
}

/// Support requests or unavailable beacons of `products` on days `[from_day, until_day)`.
pub fn day_counts(
    client: &mut Client,
    kind: DayCount,
    products: &[String],
    from_day: i64,
    until_day: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = client.query(
        "SELECT product, SUM(n)::bigint FROM day_counts
         WHERE kind = $1 AND product = ANY($2) AND day >= $3 AND day < $4
         GROUP BY product HAVING SUM(n) > 0 ORDER BY product",
        &[&(kind as i64), &products, &from_day, &until_day],
    )?;
    rows.iter().map(|r| Ok((r.try_get(0)?, count(r, 1)?))).collect()
}

/// Remembers that raw events before `cutoff_ms` are gone (the latest cutoff wins).
pub fn set_retained_before(tx: &mut Transaction<'_>, cutoff_ms: i64) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO meta AS m (key, value) VALUES ('retained_before', $1)
         ON CONFLICT (key) DO UPDATE SET value = GREATEST(m.value, excluded.value)",
        &[&cutoff_ms],
    )?;
    Ok(())
}

/// Installations counted per [`write`] while rebuilding, bounding the memory it takes.
const REBUILD_CHUNK: i32 = 20_000;

/// Computes `tallies` again from `installations`, and the daily counts from the raw events of the
/// days after the retention cutoff's (that day and earlier keep what was counted), in the
/// caller's transaction. The aggregates are locked against writers meanwhile: a transaction that
/// changed installations the scan did not see adds its changes after this one commits.
pub fn rebuild(tx: &mut Transaction<'_>) -> Result<Rebuilt, StoreError> {
    tx.batch_execute(
        "LOCK TABLE tallies, error_counts, day_counts, active_hours IN EXCLUSIVE MODE; DELETE FROM tallies;
         DELETE FROM active_hours;
         INSERT INTO active_hours (product, hour, instances)
             SELECT product, last_active_at / 3600000, COUNT(*) FROM instances GROUP BY 1, 2;",
    )?;
    let mut rebuilt = Rebuilt::default();
    let portal = tx.bind(&format!("SELECT {INSTALLATION} FROM installations"), &[])?;
    loop {
        let rows = tx.query_portal(&portal, REBUILD_CHUNK)?;
        if rows.is_empty() {
            break;
        }
        let mut t = Tallies::default();
        for r in &rows {
            t.installation(None, Some(&installation(r)?));
            rebuilt.installations += 1;
        }
        write(tx, &t)?;
    }
    let cutoff: Option<i64> = tx
        .query_opt("SELECT value FROM meta WHERE key = 'retained_before'", &[])?
        .map(|r| r.try_get(0))
        .transpose()?;
    let first_day = cutoff.map_or(i64::MIN, |c| c.div_euclid(DAY_MS) + 1);
    let since = first_day.saturating_mul(DAY_MS);
    tx.execute("DELETE FROM error_counts WHERE day >= $1", &[&first_day])?;
    tx.execute("DELETE FROM day_counts WHERE day >= $1", &[&first_day])?;
    tx.execute(
        &sql(
            "INSERT INTO error_counts (product, day, step, exit_code, message, events, installations)
         SELECT product, day, step, code, message, COUNT(*), COUNT(*) FILTER (WHERE first) FROM (
             SELECT COALESCE(product, '{NO_PRODUCT}') AS product, ts_ms / 86400000 AS day,
                    COALESCE(step, 'unknown') AS step, COALESCE(exit_code, {NO_EXIT_CODE}) AS code,
                    CASE WHEN jsonb_typeof(properties::jsonb -> '{MESSAGE}') = 'string' THEN message ELSE '' END
                        AS message,
                    ROW_NUMBER() OVER (PARTITION BY COALESCE(product, '{NO_PRODUCT}'), installation_id,
                        COALESCE(step, 'unknown'), exit_code ORDER BY ts_ms, id) = 1 AS first
             FROM events WHERE event = '{ERROR}' AND ts_ms >= $1) AS e
         GROUP BY 1, 2, 3, 4, 5",
        ),
        &[&since],
    )?;
    for (kind, name) in [
        (DayCount::Support, names::SUPPORT),
        (DayCount::Unavailable, names::BEACON_UNAVAILABLE),
    ] {
        tx.execute(
            &sql("INSERT INTO day_counts (kind, product, day, n)
                  SELECT $2, COALESCE(product, '{NO_PRODUCT}'), ts_ms / 86400000, COUNT(*)
                  FROM events WHERE event = $3 AND ts_ms >= $1 GROUP BY 2, 3"),
            &[&since, &(kind as i64), &name],
        )?;
    }
    let events: i64 = tx
        .query_one(
            &sql("SELECT COUNT(*) FROM events
                  WHERE event IN ('{ERROR}', '{SUPPORT}', '{BEACON_UNAVAILABLE}') AND ts_ms >= $1"),
            &[&since],
        )?
        .try_get(0)?;
    rebuilt.events = u64::try_from(events).unwrap_or(0);
    Ok(rebuilt)
}

/// Takes everything of installation `id` out of the aggregates (before `forget` deletes it),
/// holding its installations' locks against writers folding into them meanwhile.
pub fn uncount(tx: &mut Transaction<'_>, id: &str) -> Result<(), StoreError> {
    let products: Vec<String> = tx
        .query("SELECT product FROM installations WHERE installation_id = $1", &[&id])?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let keys: Vec<(&str, &str)> = products.iter().map(|p| (p.as_str(), id)).collect();
    lock(tx, &keys)?;
    let mut t = Tallies::default();
    for old in load(tx, &keys)? {
        t.installation(Some(&old), None);
    }
    for r in tx.query(
        "SELECT product, last_active_at FROM instances WHERE installation_id = $1 FOR UPDATE",
        &[&id],
    )? {
        let product: String = r.try_get(0)?;
        t.instance(&product, Some(r.try_get(1)?), None);
    }
    let rows = tx.query(
        &sql("SELECT event, product, ts_ms, step, exit_code,
                     CASE WHEN jsonb_typeof(properties::jsonb -> '{MESSAGE}') = 'string' THEN message END
              FROM events WHERE installation_id = $1 AND event IN ('{ERROR}', '{SUPPORT}', '{BEACON_UNAVAILABLE}')
              ORDER BY ts_ms, id"),
        &[&id],
    )?;
    let mut seen = HashSet::new();
    for r in &rows {
        let f = Fold {
            event: r.try_get(0)?,
            product: r.try_get(1)?,
            installation_id: id,
            ts: r.try_get(2)?,
            step: r.try_get(3)?,
            exit_code: r.try_get(4)?,
            message: r.try_get(5)?,
            ..Fold::empty()
        };
        let first = seen.insert((f.product(), f.step.unwrap_or("unknown"), f.exit_code));
        t.event(&f, first, -1);
    }
    write(tx, &t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::super::Postgres;
    use crate::event::{Checkpoint, Event, EventNames, names};
    use crate::store::Store;
    use crate::store::conformance::event;
    use crate::store::sqlite::Sqlite;
    use crate::store::tally::{Counts, DayCount, Dim, ErrorKey, TallyKey};

    /// 2026-12-01T00:00:00Z: every event of [`requests`] is at most 30 days older.
    const RECEIVED: i64 = 1_796_083_200_000;

    /// Requests of events of two products and a few dozen installations, in no order of time:
    /// attempts, outcomes, errors at steps with and without exit codes and (string or other)
    /// messages, support requests, unavailable beacons, active instances, a resent message.
    fn requests() -> Vec<Vec<Event>> {
        let mut state = 7_u64;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        let kinds = [
            names::STARTED,
            names::SUCCESS,
            names::ERROR,
            names::ERROR,
            names::SUPPORT,
            names::BEACON_UNAVAILABLE,
            names::INSTANCE_ACTIVE,
        ];
        let mut requests: Vec<Vec<Event>> = Vec::new();
        for r in 0..8 {
            let mut events = Vec::new();
            for n in 0..40 {
                let installation = next(30);
                let kind = kinds[usize::try_from(next(7)).unwrap()];
                let ts = format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + next(29), next(24), next(60));
                let pick = |options: [&'static str; 2], n: u64| options[usize::from(n == 0)];
                let (product, os) = (
                    pick(["acme", "zeta"], installation % 3),
                    pick(["ubuntu", "debian"], next(2)),
                );
                let (version, step) = (pick(["1.0", "1.1"], next(2)), pick(["db", "net"], next(2)));
                let mut props = json!({
                    "product": product,
                    "attempt": 1 + next(3),
                    "os": os,
                    "os_version": "12",
                    "product_version": version,
                    "ci": next(4) == 0,
                    "step": step,
                    "duration_ms": next(200_000),
                });
                match next(4) {
                    0 => props["exit_code"] = json!(next(3)),
                    1 => props["message"] = json!("disk full"),
                    2 => props["message"] = json!(42),
                    _ => {}
                }
                events.push(event(
                    &format!("m{r}-{n}"),
                    &format!("i{installation}"),
                    kind,
                    &ts,
                    props,
                ));
            }
            if let Some(earlier) = requests.last().and_then(|r| r.first()) {
                events.push(earlier.clone());
            }
            requests.push(events);
        }
        requests
    }

    type Aggregates = (
        Vec<(TallyKey, Counts)>,
        Vec<(ErrorKey, u64, u64)>,
        Vec<Vec<(String, u64)>>,
    );

    /// Every aggregate of the products of [`requests`], in key order.
    fn aggregates(store: &dyn Store) -> Aggregates {
        let products = ["acme".to_string(), "zeta".to_string()];
        let dims: Vec<Dim> = [Dim::Outcome].into_iter().chain(Dim::BREAKDOWNS).collect();
        let mut tallies = store
            .tallies(&products, &dims, &[(0, 0, 100_000), (1, 0, 10_000)], true)
            .unwrap();
        tallies.sort_by(|a, b| a.0.cmp(&b.0));
        let mut errors = store.error_days(&products, 0, 100_000).unwrap();
        errors.sort();
        let days = [DayCount::Support, DayCount::Unavailable]
            .map(|kind| store.day_counts(kind, &products, 0, 100_000).unwrap())
            .to_vec();
        (tallies, errors, days)
    }

    #[test]
    fn the_aggregates_are_those_sqlite_keeps() {
        let Some(server) = testkit::Postgres::start() else {
            return;
        };
        let postgres = Postgres::open(&server.database("aggregates"), Duration::from_secs(5)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Sqlite::create(&dir.path().join("a.sqlite"), Duration::from_secs(5)).unwrap();
        let stores: [&dyn Store; 2] = [&postgres, &sqlite];
        for request in requests() {
            let inserted = stores.map(|s| s.insert(&request, RECEIVED).unwrap());
            assert_eq!(inserted[0], inserted[1]);
        }
        // Events sent under branded names, stored before the names were configured.
        let branded: Vec<Event> = (0..6)
            .flat_map(|i| {
                let props = json!({"step": "db", "message": "boom", "duration_ms": 5});
                let ts = |minute: u32| format!("2026-11-{:02}T10:{minute:02}:00Z", 10 + i);
                [
                    event(&format!("b{i}s"), &format!("b{i}"), "Acme Began", &ts(0), props.clone()),
                    event(&format!("b{i}e"), &format!("b{i}"), "Acme Failed", &ts(1), props),
                ]
            })
            .collect();
        let names = EventNames::new(vec![
            (Checkpoint::Started, "Acme Began".into()),
            (Checkpoint::Error, "Acme Failed".into()),
        ])
        .unwrap();
        for store in stores {
            store.insert(&branded, RECEIVED).unwrap();
            assert_eq!(store.adopt_renamed(&names).unwrap(), 12);
        }
        let counted = aggregates(&postgres);
        assert!(counted.1.iter().any(|e| e.0.message == "boom" && e.1 == 6 && e.2 == 6));
        assert!(counted.0.len() > 100, "{:?}", counted.0.len());
        assert!(counted.1.iter().any(|(e, _, _)| e.exit_code.is_none()) && counted.1.iter().any(|e| e.2 > 0));
        assert!(counted.2.iter().all(|days| !days.is_empty()));
        assert_eq!(counted, aggregates(&sqlite), "counted at ingest");

        let rebuilt = stores.map(|s| s.rebuild().unwrap());
        assert_eq!(rebuilt[0], rebuilt[1]);
        assert_eq!(
            aggregates(&postgres).0,
            counted.0,
            "the installations' tallies, rebuilt"
        );
        let rebuilt = stores.map(aggregates);
        assert_eq!(rebuilt[0].1, rebuilt[1].1, "errors rebuilt");
        assert_eq!(rebuilt[0], rebuilt[1], "rebuilt");

        for store in stores {
            store.forget("i4").unwrap();
        }
        let forgotten = aggregates(&postgres);
        assert_ne!(forgotten, counted);
        assert_eq!(forgotten, aggregates(&sqlite), "after forget");
        postgres.rebuild().unwrap();
        assert_eq!(aggregates(&postgres), forgotten, "forget took out what it counted");

        // Retention deletes raw events, not what was counted of them, and rebuilds keep the
        // counts of the days it emptied.
        let cutoff = RECEIVED - 15 * 86_400_000 + 3_600_000;
        for store in stores {
            assert!(store.retain(cutoff).unwrap().events > 0);
        }
        assert_eq!(aggregates(&postgres), forgotten, "retained");
        let rebuilt = stores.map(|s| s.rebuild().unwrap());
        assert_eq!(rebuilt[0], rebuilt[1]);
        let rebuilt = stores.map(aggregates);
        assert_eq!(rebuilt[0], rebuilt[1], "retained and rebuilt");
        assert_eq!(rebuilt[0].0, forgotten.0);
        assert_eq!(rebuilt[0].2, forgotten.2);
        let events = |a: &Aggregates| a.1.iter().map(|e| (e.0.clone(), e.1)).collect::<Vec<_>>();
        assert_eq!(events(&rebuilt[0]), events(&forgotten));
    }

    #[test]
    fn replicas_folding_the_same_installations_at_once_count_each_once() {
        let Some(server) = testkit::Postgres::start() else {
            return;
        };
        let url = server.database("concurrent");
        let replicas: Vec<Postgres> = (0..2)
            .map(|_| Postgres::open(&url, Duration::from_secs(60)).unwrap())
            .collect();
        std::thread::scope(|s| {
            for writer in 0..4_usize {
                let replica = &replicas[writer % 2];
                s.spawn(move || {
                    for request in 0..15 {
                        // Each writer walks the installations in its own order.
                        let events: Vec<Event> = (0..12)
                            .map(|n| {
                                let i = (n * (writer + 1) + request) % 12;
                                let kind = [names::STARTED, names::ERROR, names::SUCCESS][(request + i) % 3];
                                let ts = format!("2026-11-{:02}T10:{:02}:00Z", 1 + i, request);
                                let props = json!({"attempt": 1 + request / 5, "step": "db", "duration_ms": 1000 * i});
                                event(&format!("w{writer}-{request}-{n}"), &format!("i{i}"), kind, &ts, props)
                            })
                            .collect();
                        replica.insert(&events, RECEIVED).unwrap();
                    }
                });
            }
        });
        let counted = aggregates(&replicas[0]);
        let total: i64 = counted
            .0
            .iter()
            .filter(|(k, _)| k.dim == Dim::Total && k.tier == 0)
            .map(|(_, c)| c.installations)
            .sum();
        assert_eq!(total, 12);
        assert_eq!(replicas[1].rebuild().unwrap().installations, 12);
        assert_eq!(
            aggregates(&replicas[0]).0,
            counted.0,
            "as rebuilt from the installations"
        );
        let errors: u64 = counted.1.iter().map(|e| e.1).sum();
        let installations: u64 = counted.1.iter().map(|e| e.2).sum();
        assert_eq!((errors, installations), (4 * 15 * 12 / 3, 12));
    }

    #[test]
    fn version_1_databases_keep_what_retention_kept() {
        let Some(server) = testkit::Postgres::start() else {
            return;
        };
        let url = server.database("version1");
        drop(Postgres::open(&url, Duration::from_secs(5)).unwrap());
        // Back to version 1, with the daily counts its retention kept.
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .batch_execute(
                "DROP TABLE tallies, error_counts, day_counts, active_hours, meta;
                 ALTER TABLE installations DROP COLUMN error_steps;
                 CREATE TABLE error_days (product TEXT NOT NULL, day BIGINT NOT NULL, step TEXT NOT NULL,
                     exit_code BIGINT, message TEXT NOT NULL, events BIGINT NOT NULL, installations BIGINT NOT NULL);
                 CREATE TABLE support_days (product TEXT NOT NULL, day BIGINT NOT NULL, requests BIGINT NOT NULL);
                 CREATE TABLE unavailable_days (product TEXT NOT NULL, day BIGINT NOT NULL, events BIGINT NOT NULL);
                 INSERT INTO error_days VALUES ('acme', 20400, 'db', NULL, 'disk full', 3, 2),
                     ('acme', 20400, 'db', NULL, 'disk full', 1, 1), ('acme', 20401, 'net', 7, '', 1, 1);
                 INSERT INTO support_days VALUES ('acme', 20401, 2);
                 INSERT INTO unavailable_days VALUES ('acme', 20399, 5);
                 UPDATE beacon_schema SET version = 1;",
            )
            .unwrap();
        let store = Postgres::open(&url, Duration::from_secs(5)).unwrap();
        let products = ["acme".to_string()];
        let errors = store.error_days(&products, 20_400, 20_401).unwrap();
        let key = ErrorKey {
            product: "acme".into(),
            day: 20_400,
            step: "db".into(),
            exit_code: None,
            message: "disk full".into(),
        };
        assert_eq!(errors, [(key, 4, 3)]);
        assert_eq!(
            store.error_days(&products, 20_401, 20_402).unwrap()[0].0.exit_code,
            Some(7)
        );
        let days = |kind| store.day_counts(kind, &products, 0, 30_000).unwrap();
        assert_eq!(days(DayCount::Support), [("acme".to_string(), 2)]);
        assert_eq!(days(DayCount::Unavailable), [("acme".to_string(), 5)]);
        let cutoff: i64 = client
            .query_one("SELECT value FROM meta WHERE key = 'retained_before'", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            cutoff,
            20_402 * 86_400_000,
            "the day after the last one retention emptied"
        );
        // Rebuilding keeps them: their raw events are gone.
        store.rebuild().unwrap();
        assert_eq!(days(DayCount::Unavailable), [("acme".to_string(), 5)]);
        assert_eq!(store.error_days(&products, 0, 30_000).unwrap().len(), 2);
    }
}
