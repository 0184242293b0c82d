//! The report's aggregates in SQLite (see `store/tally.rs`): an installation loaded and saved
//! around its fold, a transaction's [`Tallies`] written, the aggregates read for a report, and
//! `rebuild`.

use std::sync::LazyLock;

use rusqlite::{CachedStatement, Connection, OptionalExtension, Row, params, params_from_iter};

use super::codec::{self, Codes, Dictionary, Id, IdText};
use super::sql;
use crate::clock::DAY_MS;
use crate::event::names;
use crate::store::fold::{Fold, Installation};
use crate::store::tally::{Counts, DayCount, Dim, ErrorKey, HOUR_MS, Histogram, Tallies, TallyKey};
use crate::store::{NO_EXIT_CODE, Rebuilt, Status, StoreError};

/// The columns [`installation`] reads, of `installations i JOIN profiles p`.
const INSTALLATION: &str = "pr.product, i.installation_id, p.os, p.os_version, p.product_version, p.arch, p.container,
    p.ci, p.agent, p.install_method, i.first_at, i.started_at, i.success_at, i.error_at, i.success_duration,
    i.attempt, i.earlier_succeeded, i.earlier_failed, i.error_steps";

/// The tables [`INSTALLATION`] comes from.
const INSTALLATIONS: &str = "installations i JOIN profiles p ON p.id = i.profile JOIN products pr ON pr.id = i.product";

fn installation(r: &Row<'_>) -> rusqlite::Result<Installation> {
    Ok(Installation {
        product: r.get(0)?,
        installation_id: r.get::<_, IdText>(1)?.0,
        os: r.get(2)?,
        os_version: r.get(3)?,
        product_version: r.get(4)?,
        arch: r.get(5)?,
        container: r.get(6)?,
        ci: r.get(7)?,
        agent: r.get(8)?,
        install_method: r.get(9)?,
        first_at: r.get(10)?,
        started_at: r.get(11)?,
        success_at: r.get(12)?,
        error_at: r.get(13)?,
        success_duration: r.get(14)?,
        attempt: r.get(15)?,
        earlier_succeeded: r.get(16)?,
        earlier_failed: r.get(17)?,
        error_steps: r.get(18)?,
    })
}

/// When instance `id` of the product coded `product` was last active, if it was.
pub fn last_active(conn: &Connection, product: i64, id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT last_active_at FROM instances WHERE product = ?1 AND installation_id = ?2")?
        .query_row(params![product, Id::new(id)], |r| r.get(0))
        .optional()
}

/// Every installation of `id` (one per product).
pub fn load_all(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Installation>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {INSTALLATION} FROM {INSTALLATIONS} WHERE i.installation_id = ?1"
    ))?;
    let rows = stmt.query_map([Id::new(id)], installation)?;
    rows.collect()
}

/// Installations read and written around the folds of a transaction's events, with the
/// statements prepared once for the transaction.
pub struct Installations<'c> {
    conn: &'c Connection,
    load: CachedStatement<'c>,
    save: CachedStatement<'c>,
}

impl<'c> Installations<'c> {
    /// Prepares the statements on `conn`.
    pub fn new(conn: &'c Connection) -> rusqlite::Result<Installations<'c>> {
        static LOAD: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {INSTALLATION} FROM {INSTALLATIONS} WHERE i.product = ?1 AND i.installation_id = ?2")
        });
        Ok(Installations {
            conn,
            load: conn.prepare_cached(&LOAD)?,
            save: conn.prepare_cached(
                "INSERT OR REPLACE INTO installations (product, installation_id, profile, first_at, started_at,
                     success_at, error_at, success_duration, attempt, earlier_succeeded, earlier_failed, error_steps)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?,
        })
    }

    /// The installation `id` of the product coded `product`, if stored.
    pub fn load(&mut self, product: i64, id: &str) -> rusqlite::Result<Option<Installation>> {
        self.load
            .query_row(params![product, Id::new(id)], installation)
            .optional()
    }

    /// Writes `i` over its stored row (its facts as a `profiles` row, added if new).
    pub fn save(&mut self, codes: &mut Codes, i: &Installation) -> rusqlite::Result<()> {
        let conn = self.conn;
        let facts = params![
            i.os,
            i.os_version,
            i.product_version,
            i.arch,
            i.container,
            i.install_method,
            i.agent,
            i.ci
        ];
        let mut key = String::with_capacity(64);
        for part in [
            &i.os,
            &i.os_version,
            &i.product_version,
            &i.arch,
            &i.container,
            &i.install_method,
            &i.agent,
        ] {
            key.push_str(part);
            key.push('\n');
        }
        key.push(if i.ci { '1' } else { '0' });
        let profile = codes.get(
            Dictionary::Profiles,
            &key,
            || {
                conn.prepare_cached(
                    "SELECT id FROM profiles WHERE os = ?1 AND os_version = ?2 AND product_version = ?3 AND arch = ?4
                     AND container = ?5 AND install_method = ?6 AND agent = ?7 AND ci = ?8",
                )?
                .query_row(facts, |r| r.get(0))
                .optional()
            },
            || {
                conn.prepare_cached(
                    "INSERT INTO profiles (os, os_version, product_version, arch, container, install_method, agent, ci)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                )?
                .query_row(facts, |r| r.get(0))
            },
        )?;
        self.save.execute(params![
            codec::product_code(conn, codes, &i.product)?,
            Id::new(&i.installation_id),
            profile,
            i.first_at,
            i.started_at,
            i.success_at,
            i.error_at,
            i.success_duration,
            i.attempt,
            i.earlier_succeeded,
            i.earlier_failed,
            i.error_steps,
        ])?;
        Ok(())
    }
}

const KEY: &str = "product = ?1 AND dim = ?2 AND tier = ?3 AND period = ?4 AND ci = ?5 AND agent = ?6
    AND value = ?7 AND status = ?8";

/// Adds the changes of `t` to the aggregates; rows that come down to nothing are deleted.
pub fn write(conn: &Connection, t: &Tallies) -> rusqlite::Result<()> {
    let mut durations = conn.prepare_cached(&format!("SELECT durations FROM tallies WHERE {KEY}"))?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO tallies (product, dim, tier, period, ci, agent, value, status, installations, attempts,
                              earlier_succeeded, earlier_failed, had_failed, durations)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (product, dim, tier, period, ci, agent, value, status) DO UPDATE SET
            installations = installations + excluded.installations,
            attempts = attempts + excluded.attempts,
            earlier_succeeded = earlier_succeeded + excluded.earlier_succeeded,
            earlier_failed = earlier_failed + excluded.earlier_failed,
            had_failed = had_failed + excluded.had_failed,
            durations = CASE WHEN ?15 THEN excluded.durations ELSE durations END
         RETURNING installations",
    )?;
    let mut delete = conn.prepare_cached(&format!("DELETE FROM tallies WHERE {KEY}"))?;
    for (k, c) in &t.rows() {
        let key = params![
            k.product,
            k.dim as i64,
            k.tier,
            k.period,
            k.ci,
            k.agent,
            k.value,
            k.status.as_i64()
        ];
        let histogram = if c.durations.0.is_empty() {
            None
        } else {
            let stored: Option<Vec<u8>> = durations.query_row(key, |r| r.get(0)).optional()?;
            let mut h = Histogram::from_bytes(stored.as_deref().unwrap_or_default());
            h.merge(&c.durations);
            Some(h)
        };
        let (blob, merged) = (
            histogram.as_ref().map(Histogram::to_bytes).unwrap_or_default(),
            histogram.is_some(),
        );
        let counts = params![
            c.installations,
            c.attempts,
            c.earlier_succeeded,
            c.earlier_failed,
            c.had_failed,
            blob,
            merged
        ];
        let left: i64 = upsert.query_row(params_from_iter(key.iter().chain(counts)), |r| r.get(0))?;
        if left == 0 {
            delete.execute(key)?;
        }
    }
    let mut errors = conn.prepare_cached(
        "INSERT INTO error_counts (product, day, step, exit_code, message, events, installations)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (product, day, step, exit_code, message) DO UPDATE SET
            events = events + excluded.events, installations = installations + excluded.installations
         RETURNING events",
    )?;
    let mut no_errors = conn.prepare_cached(
        "DELETE FROM error_counts WHERE product = ?1 AND day = ?2 AND step = ?3 AND exit_code = ?4 AND message = ?5",
    )?;
    for (k, (events, installations)) in t.sorted_errors() {
        let code = k.exit_code.unwrap_or(NO_EXIT_CODE);
        let left: i64 = errors.query_row(
            params![k.product, k.day, k.step, code, k.message, events, installations],
            |r| r.get(0),
        )?;
        if left <= 0 {
            no_errors.execute(params![k.product, k.day, k.step, code, k.message])?;
        }
    }
    let mut days = conn.prepare_cached(
        "INSERT INTO day_counts (kind, product, day, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, product, day) DO UPDATE SET n = n + excluded.n RETURNING n",
    )?;
    let mut no_days = conn.prepare_cached("DELETE FROM day_counts WHERE kind = ?1 AND product = ?2 AND day = ?3")?;
    for ((kind, product, day), n) in t.sorted_days() {
        let left: i64 = days.query_row(params![*kind as i64, product, day, n], |r| r.get(0))?;
        if left <= 0 {
            no_days.execute(params![*kind as i64, product, day])?;
        }
    }
    let mut active = conn.prepare_cached(
        "INSERT INTO active_hours (product, hour, instances) VALUES (?1, ?2, ?3)
         ON CONFLICT (product, hour) DO UPDATE SET instances = instances + excluded.instances RETURNING instances",
    )?;
    let mut inactive = conn.prepare_cached("DELETE FROM active_hours WHERE product = ?1 AND hour = ?2")?;
    for ((product, hour), n) in t.sorted_active() {
        let left: i64 = active.query_row(params![product, hour, n], |r| r.get(0))?;
        if left <= 0 {
            inactive.execute(params![product, hour])?;
        }
    }
    Ok(())
}

/// The scope's products and the dimensions, as the JSON arrays `json_each` reads.
fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub fn tallies(
    conn: &Connection,
    products: &[String],
    dims: &[Dim],
    ranges: &[(i64, i64, i64)],
    durations: bool,
) -> Result<Vec<(TallyKey, Counts)>, StoreError> {
    // One range at a time: each is a seek per (product, dim) along the primary key.
    let mut stmt = conn.prepare_cached(
        "SELECT product, dim, tier, period, ci, agent, value, status, installations, attempts,
                earlier_succeeded, earlier_failed, had_failed, CASE WHEN ?6 THEN durations END
         FROM tallies
         WHERE product IN (SELECT value FROM json_each(?1)) AND dim IN (SELECT value FROM json_each(?2))
           AND tier = ?3 AND period >= ?4 AND period < ?5",
    )?;
    let (products, dims) = (
        json_list(products),
        json_list(&dims.iter().map(|d| *d as i64).collect::<Vec<_>>()),
    );
    let mut out = Vec::new();
    for (tier, from, to) in ranges.iter().filter(|(_, from, to)| from < to) {
        let mut rows = stmt.query(params![products, dims, tier, from, to, durations])?;
        while let Some(r) = rows.next()? {
            let (Some(dim), Some(status)) = (Dim::from_i64(r.get(1)?), Status::from_i64(r.get(7)?)) else {
                continue;
            };
            let key = TallyKey {
                product: r.get(0)?,
                dim,
                tier: r.get(2)?,
                period: r.get(3)?,
                ci: r.get(4)?,
                agent: r.get(5)?,
                value: r.get(6)?,
                status,
            };
            let counts = Counts {
                installations: r.get(8)?,
                attempts: r.get(9)?,
                earlier_succeeded: r.get(10)?,
                earlier_failed: r.get(11)?,
                had_failed: r.get(12)?,
                durations: Histogram::from_bytes(r.get_ref(13)?.as_blob().unwrap_or_default()),
            };
            out.push((key, counts));
        }
    }
    Ok(out)
}

pub fn error_days(
    conn: &Connection,
    products: &[String],
    from_day: i64,
    until_day: i64,
) -> Result<Vec<(ErrorKey, u64, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT product, step, exit_code, message, SUM(events), SUM(installations) FROM error_counts
         WHERE product IN (SELECT value FROM json_each(?1)) AND day >= ?2 AND day < ?3
         GROUP BY product, step, exit_code, message",
    )?;
    let rows = stmt.query_map(params![json_list(products), from_day, until_day], |r| {
        let code: i64 = r.get(2)?;
        Ok((
            ErrorKey {
                product: r.get(0)?,
                day: from_day,
                step: r.get(1)?,
                exit_code: (code != NO_EXIT_CODE).then_some(code),
                message: r.get(3)?,
            },
            r.get(4)?,
            r.get(5)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn day_counts(
    conn: &Connection,
    kind: DayCount,
    products: &[String],
    from_day: i64,
    until_day: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT product, SUM(n) FROM day_counts
         WHERE kind = ?1 AND product IN (SELECT value FROM json_each(?2)) AND day >= ?3 AND day < ?4
         GROUP BY product HAVING SUM(n) > 0 ORDER BY product",
    )?;
    let rows = stmt.query_map(params![kind as i64, json_list(products), from_day, until_day], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Before this time (ms) retention deleted the raw events; `i64::MIN` when it never ran.
fn retained_before(conn: &Connection) -> rusqlite::Result<i64> {
    let kept: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'retained_before'", [], |r| r.get(0))
        .optional()?;
    Ok(kept.unwrap_or(i64::MIN))
}

/// Remembers that raw events before `cutoff_ms` are gone.
pub fn set_retained_before(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('retained_before', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        [cutoff_ms],
    )?;
    Ok(())
}

/// Installations counted per [`write`] while rebuilding, bounding the memory it takes.
const REBUILD_CHUNK: usize = 20_000;

/// Computes `tallies` again from `installations`, and the daily counts from the raw events of
/// the days after the retention cutoff's (that day and earlier keep what was counted). Runs in
/// the caller's transaction.
pub fn rebuild(conn: &Connection) -> Result<Rebuilt, StoreError> {
    conn.execute("DELETE FROM tallies", [])?;
    let mut rebuilt = Rebuilt::default();
    let mut t = Tallies::default();
    {
        let mut stmt = conn.prepare(&format!("SELECT {INSTALLATION} FROM {INSTALLATIONS}"))?;
        let mut rows = stmt.query([])?;
        let mut pending = 0;
        while let Some(r) = rows.next()? {
            t.installation(None, Some(&installation(r)?));
            rebuilt.installations += 1;
            pending += 1;
            if pending == REBUILD_CHUNK {
                write(conn, &std::mem::take(&mut t))?;
                pending = 0;
            }
        }
    }
    write(conn, &t)?;
    let cutoff = retained_before(conn)?;
    let first_day = if cutoff == i64::MIN {
        i64::MIN
    } else {
        cutoff.div_euclid(DAY_MS) + 1
    };
    let since = first_day.saturating_mul(DAY_MS);
    conn.execute("DELETE FROM error_counts WHERE day >= ?1", [first_day])?;
    conn.execute("DELETE FROM day_counts WHERE day >= ?1", [first_day])?;
    conn.execute(
        &codec::sql(
            "INSERT INTO error_counts (product, day, step, exit_code, message, events, installations)
         SELECT product, day, step, code, message, COUNT(*), SUM(first) FROM (
             SELECT pr.product AS product, ts_ms / 86400000 AS day,
                    COALESCE(step, 'unknown') AS step, COALESCE(exit_code, {NO_EXIT_CODE}) AS code,
                    CASE WHEN json_type(properties, '$.{MESSAGE}') = 'text' THEN message ELSE '' END AS message,
                    ROW_NUMBER() OVER (PARTITION BY pr.product, installation_id,
                        COALESCE(step, 'unknown'), exit_code ORDER BY ts_ms, e.id) = 1 AS first
             FROM events e JOIN products pr ON pr.id = e.product WHERE name = {#ERROR} AND ts_ms >= ?1)
         GROUP BY 1, 2, 3, 4, 5",
        ),
        [since],
    )?;
    for (kind, name) in [
        (DayCount::Support, names::SUPPORT),
        (DayCount::Unavailable, names::BEACON_UNAVAILABLE),
    ] {
        conn.execute(
            &sql("INSERT INTO day_counts (kind, product, day, n)
                  SELECT ?2, pr.product, ts_ms / 86400000, COUNT(*)
                  FROM events e JOIN products pr ON pr.id = e.product WHERE name = ?3 AND ts_ms >= ?1 GROUP BY 2, 3"),
            params![since, kind as i64, codec::code(name)],
        )?;
    }
    conn.execute("DELETE FROM active_hours", [])?;
    conn.execute(
        &format!(
            "INSERT INTO active_hours (product, hour, instances)
             SELECT pr.product, last_active_at / {HOUR_MS}, COUNT(*)
             FROM instances i JOIN products pr ON pr.id = i.product GROUP BY 1, 2"
        ),
        [],
    )?;
    rebuilt.events = conn.query_row(
        &codec::sql(
            "SELECT COUNT(*) FROM events
              WHERE name IN ({#ERROR}, {#SUPPORT}, {#BEACON_UNAVAILABLE}) AND ts_ms >= ?1",
        ),
        [since],
        |r| r.get(0),
    )?;
    Ok(rebuilt)
}

/// Takes everything of installation `id` out of the aggregates (before `forget` deletes it).
pub fn uncount(conn: &Connection, id: &str) -> Result<(), StoreError> {
    let mut t = Tallies::default();
    for old in load_all(conn, id)? {
        t.installation(Some(&old), None);
    }
    let mut instances = conn.prepare(
        "SELECT pr.product, last_active_at FROM instances i JOIN products pr ON pr.id = i.product
         WHERE installation_id = ?1",
    )?;
    let rows = instances.query_map([Id::new(id)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (product, at) = row?;
        t.instance(&product, Some(at), None);
    }
    let mut stmt = conn.prepare(&codec::sql(
        "SELECT name, pr.product, ts_ms, step, exit_code,
                CASE WHEN json_type(properties, '$.{MESSAGE}') = 'text' THEN message END
         FROM events e JOIN products pr ON pr.id = e.product WHERE installation_id = ?1 AND name IN ({#ERROR}, {#SUPPORT}, {#BEACON_UNAVAILABLE})
         ORDER BY ts_ms, e.id",
    ))?;
    let mut rows = stmt.query([Id::new(id)])?;
    let mut seen = std::collections::HashSet::new();
    while let Some(r) = rows.next()? {
        let (code, product): (i64, Option<String>) = (r.get(0)?, r.get(1)?);
        let event = codec::NAMES.iter().find(|(c, _)| *c == code).map_or("", |(_, n)| n);
        let (step, exit_code, message): (Option<String>, Option<i64>, Option<String>) =
            (r.get(3)?, r.get(4)?, r.get(5)?);
        let f = Fold {
            event,
            product: product.as_deref(),
            installation_id: id,
            ts: r.get(2)?,
            step: step.as_deref(),
            exit_code,
            message: message.as_deref(),
            ..Fold::empty()
        };
        let first = seen.insert((
            f.product().to_string(),
            f.step.unwrap_or("unknown").to_string(),
            exit_code,
        ));
        t.event(&f, first, -1);
    }
    write(conn, &t)?;
    Ok(())
}

/// Instances of `products` active since the start of the hour `since_ms` falls in, per product
/// (from `active_hours` alone: a few dozen rows however many instances there are).
pub fn active_instances(
    conn: &Connection,
    products: &[String],
    since_ms: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT product, SUM(instances) FROM active_hours
         WHERE product IN (SELECT value FROM json_each(?1)) AND hour >= ?2
         GROUP BY product HAVING SUM(instances) > 0 ORDER BY product",
    )?;
    let rows = stmt.query_map(params![json_list(products), since_ms.div_euclid(HOUR_MS)], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// After retention dropped the instances inactive since `cutoff_ms`: counts the hour of the
/// cutoff again and drops the hours before.
pub fn retain_active(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<()> {
    let hour = cutoff_ms.div_euclid(HOUR_MS);
    conn.execute("DELETE FROM active_hours WHERE hour <= ?1", [hour])?;
    conn.execute(
        &format!(
            "INSERT INTO active_hours (product, hour, instances)
             SELECT pr.product, last_active_at / {HOUR_MS}, COUNT(*) FROM instances i JOIN products pr ON pr.id = i.product
             WHERE last_active_at >= ?1 AND last_active_at < ?2 GROUP BY 1, 2"
        ),
        [hour * HOUR_MS, (hour + 1) * HOUR_MS],
    )?;
    Ok(())
}
