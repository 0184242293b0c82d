//! The report's reads besides the aggregates (`aggregates.rs`): the installations of a part of a
//! day (a window's edge, the running window) along `installations_by_first`; the errors, support requests and unavailable beacons of a part of a day
//! from partial indexes on `events`; the latest support requests; products.

use std::collections::BTreeSet;

use rusqlite::{Connection, Row, params};

use super::codec::{self, IdText};
use crate::event::names;
use crate::store::{Cell, Facts, MessageRow, Scope, Status, StepRow, StoreError, SupportRow};

/// The installations of a scope: first seen in the window (?1, ?2), of the listed products (?3,
/// a JSON array).
const IN_WINDOW: &str = "i.first_at >= ?1 AND i.first_at < ?2 AND i.product IN (SELECT id FROM products
    WHERE product IN (SELECT value FROM json_each(?3)))";

/// Columns of the facts installations are grouped by, of [`INSTALLATIONS`].
const FACTS: &str =
    "pr.product, p.ci, p.agent, p.os, p.os_version, p.product_version, p.arch, p.container, p.install_method";

/// Installations with their facts, along their first time.
const INSTALLATIONS: &str = "installations i INDEXED BY installations_by_first JOIN profiles p ON p.id = i.profile
    JOIN products pr ON pr.id = i.product";

/// The scope's products as the JSON array `json_each` reads.
fn products_json(products: &[String]) -> String {
    serde_json::Value::from(products.to_vec()).to_string()
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Runs `query` with the scope as ?1, ?2, ?3 (and `extra`, if any, as ?4); `read` reads each row.
fn scoped<T>(
    conn: &Connection,
    query: &str,
    scope: &Scope<'_>,
    extra: Option<i64>,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(query)?;
    let products = products_json(scope.products);
    let rows = match extra {
        Some(x) => stmt.query_map(params![scope.since_ms, scope.until_ms, products, x], read)?,
        None => stmt.query_map(params![scope.since_ms, scope.until_ms, products], read)?,
    };
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Columns in [`FACTS`].
const FACT_COLUMNS: usize = 9;

/// Reads the columns of [`FACTS`].
fn facts(r: &Row<'_>) -> rusqlite::Result<Facts> {
    Ok(Facts {
        product: r.get(0)?,
        ci: r.get(1)?,
        agent: r.get(2)?,
        os: r.get(3)?,
        os_version: r.get(4)?,
        version: r.get(5)?,
        arch: r.get(6)?,
        container: r.get(7)?,
        install_method: r.get(8)?,
    })
}

/// Whether the [`FACTS`] columns of `r` are `f` (compared in place, without copying).
fn same_facts(f: &Facts, r: &Row<'_>) -> rusqlite::Result<bool> {
    let text = |i: usize, v: &str| -> rusqlite::Result<bool> {
        Ok(r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)? == v)
    };
    Ok(text(0, &f.product)?
        && r.get::<_, bool>(1)? == f.ci
        && text(2, &f.agent)?
        && text(3, &f.os)?
        && text(4, &f.os_version)?
        && text(5, &f.version)?
        && text(6, &f.arch)?
        && text(7, &f.container)?
        && text(8, &f.install_method)?)
}

pub fn outcome_cells(conn: &Connection, scope: &Scope<'_>) -> Result<Vec<Cell>, StoreError> {
    scoped(
        conn,
        &format!(
            "SELECT {FACTS}, start_day, status, outcome_day, COUNT(*),
                SUM(attempt), SUM(earlier_succeeded), SUM(earlier_failed),
                SUM(earlier_failed > 0)
         FROM {INSTALLATIONS}
         WHERE {IN_WINDOW}
         GROUP BY {FACTS}, start_day, status, outcome_day"
        ),
        scope,
        None,
        |r| {
            let at = |i: usize| FACT_COLUMNS + i;
            Ok(Cell {
                facts: facts(r)?,
                start_day: r.get(at(0))?,
                status: r.get(at(1))?,
                outcome_day: r.get(at(2))?,
                installations: r.get(at(3))?,
                attempts: r.get(at(4))?,
                earlier_succeeded: r.get(at(5))?,
                earlier_failed: r.get(at(6))?,
                had_failed: r.get(at(7))?,
            })
        },
    )
}

pub fn success_durations(conn: &Connection, scope: &Scope<'_>) -> Result<Vec<(Facts, Vec<i64>)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FACTS}, duration FROM {INSTALLATIONS}
         WHERE {IN_WINDOW} AND status = '{}' AND duration IS NOT NULL ORDER BY {FACTS}",
        Status::Succeeded.as_sql()
    ))?;
    // Rows come in order, so runs of rows share their facts: one entry per run.
    let mut runs: Vec<(Facts, Vec<i64>)> = Vec::new();
    let mut rows = stmt.query(params![scope.since_ms, scope.until_ms, products_json(scope.products)])?;
    while let Some(r) = rows.next()? {
        let duration: i64 = r.get(FACT_COLUMNS)?;
        match runs.last_mut() {
            Some((f, run)) if same_facts(f, r)? => run.push(duration),
            _ => runs.push((facts(r)?, vec![duration])),
        }
    }
    Ok(runs)
}

pub fn reported_products(conn: &Connection, max: usize) -> Result<Vec<String>, StoreError> {
    // Usually there are few products: finding them takes one index seek each, in the aggregates.
    let mut all = BTreeSet::new();
    for (from, filter) in crate::store::REPORTED_IN {
        all.extend(distinct_products(conn, from, filter, max)?);
    }
    Ok(all.into_iter().take(max).collect())
}

/// The products with the most installations first seen on days `[since_day, until_day)`, with
/// those that have instances active since `active_hour` or support requests on those days.
pub fn busiest_products(
    conn: &Connection,
    (since_day, until_day): (i64, i64),
    active_hour: i64,
    max: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT product FROM (
            SELECT product, SUM(installations) AS n FROM tallies
            WHERE dim = 0 AND tier = 0 AND period >= ?1 AND period < ?2 GROUP BY product
            UNION ALL
            SELECT product, 0 FROM active_hours WHERE hour >= ?3 GROUP BY product
            UNION ALL
            SELECT product, 0 FROM day_counts WHERE kind = 0 AND day >= ?1 AND day < ?2 GROUP BY product)
         GROUP BY product ORDER BY SUM(n) DESC, product LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![since_day, until_day, active_hour, limit(max)], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to `max` distinct non-null `product`s of `from` where `filter` holds, by seeking from one
/// to the next along an index that starts with `product`.
pub fn distinct_products(conn: &Connection, from: &str, filter: &str, max: usize) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "WITH RECURSIVE p(v) AS (
            SELECT (SELECT MIN(product) FROM {from} WHERE {filter})
            UNION ALL
            SELECT (SELECT MIN(product) FROM {from} WHERE {filter} AND product > p.v) FROM p WHERE p.v IS NOT NULL)
         SELECT v FROM p WHERE v IS NOT NULL LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit(max)], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn unlisted_installations(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
    product: Option<&str>,
    listed: &[String],
) -> Result<(u64, Vec<(Status, u64)>), StoreError> {
    let filter = "first_at >= ?1 AND first_at < ?2
                  AND (?3 IS NULL OR product = (SELECT id FROM products p WHERE p.product = ?3))
                  AND product NOT IN (SELECT id FROM products p WHERE p.product IN (SELECT value FROM json_each(?4)))";
    let listed = products_json(listed);
    let args = params![since_ms, until_ms, product, listed];
    let products: u64 = conn.query_row(
        &format!("SELECT COUNT(DISTINCT product) FROM installations WHERE {filter}"),
        args,
        |r| r.get(0),
    )?;
    if products == 0 {
        return Ok((0, Vec::new()));
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT status, COUNT(*) FROM installations WHERE {filter} GROUP BY status"
    ))?;
    let rows = stmt.query_map(args, |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((products, rows.collect::<Result<_, _>>()?))
}

/// The event filter of a report: its name, the time window (?1, ?2) and the listed products (?3).
fn event_filter(name: &str) -> String {
    format!(
        "name = {} AND ts_ms >= ?1 AND ts_ms < ?2
         AND e.product IN (SELECT id FROM products p WHERE p.product IN (SELECT value FROM json_each(?3)))",
        codec::code(name)
    )
}

pub fn failing_steps(conn: &Connection, scope: &Scope<'_>, top: usize) -> Result<Vec<StepRow>, StoreError> {
    let filter = event_filter(names::ERROR);
    scoped(
        conn,
        &format!(
            "SELECT product, step, exit_code, count, installations FROM (
            SELECT pr.product AS product, COALESCE(step, 'unknown') AS step,
                   exit_code, COUNT(*) AS count, COUNT(DISTINCT installation_id) AS installations,
                   ROW_NUMBER() OVER (PARTITION BY pr.product
                                      ORDER BY COUNT(*) DESC, COALESCE(step, 'unknown'), exit_code) AS rank
            FROM events e INDEXED BY errors_by_time JOIN products pr ON pr.id = e.product WHERE {filter} GROUP BY 1, 2, 3)
         WHERE rank <= ?4 ORDER BY product, rank"
        ),
        scope,
        Some(limit(top)),
        |r| {
            Ok(StepRow {
                product: r.get(0)?,
                step: r.get(1)?,
                exit_code: r.get(2)?,
                events: r.get(3)?,
                installations: r.get(4)?,
            })
        },
    )
}

pub fn error_messages(conn: &Connection, scope: &Scope<'_>, top: usize) -> Result<Vec<MessageRow>, StoreError> {
    let filter = event_filter(names::ERROR);
    scoped(
        conn,
        &format!(
            "SELECT product, step, exit_code, message, count FROM (
            SELECT pr.product AS product, COALESCE(step, 'unknown') AS step,
                   exit_code, CASE WHEN typeof(message) = 'text' THEN message ELSE '' END AS message,
                   COUNT(*) AS count,
                   ROW_NUMBER() OVER (PARTITION BY pr.product, COALESCE(step, 'unknown'),
                                      exit_code ORDER BY COUNT(*) DESC, message) AS rank
            FROM events e INDEXED BY errors_by_time JOIN products pr ON pr.id = e.product WHERE {filter} GROUP BY 1, 2, 3, 4)
         WHERE rank <= ?4"
        ),
        scope,
        Some(limit(top)),
        |r| {
            Ok(MessageRow {
                product: r.get(0)?,
                step: r.get(1)?,
                exit_code: r.get(2)?,
                message: r.get(3)?,
                count: r.get(4)?,
            })
        },
    )
}

pub fn support_counts(conn: &Connection, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
    event_counts(conn, scope, names::SUPPORT, "support_requests")
}

pub fn beacon_unavailable(conn: &Connection, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
    event_counts(conn, scope, names::BEACON_UNAVAILABLE, "beacon_unavailable")
}

/// Events named `name` of the scope per product, seeking along `index` (product, time).
fn event_counts(
    conn: &Connection,
    scope: &Scope<'_>,
    name: &str,
    index: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT COUNT(*) FROM events INDEXED BY {index} WHERE name = {}
         AND product = (SELECT id FROM products p WHERE p.product = ?1) AND ts_ms >= ?2 AND ts_ms < ?3",
        codec::code(name)
    ))?;
    let mut out = Vec::new();
    for product in scope.products {
        let n: u64 = stmt.query_row(params![product, scope.since_ms, scope.until_ms], |r| r.get(0))?;
        if n > 0 {
            out.push((product.clone(), n));
        }
    }
    Ok(out)
}

pub fn support_requests(conn: &Connection, scope: &Scope<'_>, latest: usize) -> Result<Vec<SupportRow>, StoreError> {
    // Per product, the newest first along the index: as many rows as shown, however many there are.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT e.ts_ms, f.product_version, e.step, e.installation_id, e.email
         FROM events e INDEXED BY support_requests JOIN facts f ON f.id = e.facts
         WHERE e.name = {} AND e.product = (SELECT id FROM products p WHERE p.product = ?1)
           AND e.ts_ms >= ?2 AND e.ts_ms < ?3
         ORDER BY e.ts_ms DESC LIMIT ?4",
        codec::code(names::SUPPORT)
    ))?;
    let mut out = Vec::new();
    for product in scope.products {
        let rows = stmt.query_map(params![product, scope.since_ms, scope.until_ms, limit(latest)], |r| {
            Ok(SupportRow {
                product: product.clone(),
                ts_ms: r.get(0)?,
                product_version: r.get(1)?,
                step: r.get(2)?,
                installation_id: r.get::<_, IdText>(3)?.0,
                email: r.get(4)?,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

pub fn support_emails(conn: &Connection, scope: &Scope<'_>) -> Result<Vec<(String, String)>, StoreError> {
    let filter = event_filter(names::SUPPORT);
    scoped(
        conn,
        &format!(
            "SELECT DISTINCT pr.product, email
         FROM events e INDEXED BY support_requests JOIN products pr ON pr.id = e.product WHERE {filter} AND email IS NOT NULL ORDER BY 1, 2"
        ),
        scope,
        None,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}
