//! The report's reads, as in `sqlite/report.rs` (same tables, same meaning): PostgreSQL picks
//! its own plans, so there are no index hints; sums are cast back to `bigint`.

use postgres::types::ToSql;
use postgres::{Client, Row};

use super::{count, status};
use crate::event::{NO_PRODUCT, names};
use crate::store::{Cell, Facts, MessageRow, Scope, Status, StepRow, StoreError, SupportRow, sql};

/// Installations first seen in the window ($1, $2) of the listed products ($3).
const IN_WINDOW: &str = "first_at >= $1 AND first_at < $2 AND product = ANY($3)";

/// Columns of the report cube.
const FACTS: &str = "product, ci, agent, os, os_version, product_version, arch, container, install_method";

/// Columns in [`FACTS`].
const FACT_COLUMNS: usize = 9;

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Runs `query` with the scope as $1, $2, $3 (and `extra`, if any, as $4); `read` reads each row.
fn scoped<T>(
    client: &mut Client,
    query: &str,
    scope: &Scope<'_>,
    extra: Option<i64>,
    read: impl FnMut(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let products = scope.products;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&scope.since_ms, &scope.until_ms, &products];
    if let Some(x) = &extra {
        params.push(x);
    }
    client.query(query, &params)?.iter().map(read).collect()
}

fn facts(r: &Row) -> Result<Facts, StoreError> {
    Ok(Facts {
        product: r.try_get(0)?,
        ci: r.try_get(1)?,
        agent: r.try_get(2)?,
        os: r.try_get(3)?,
        os_version: r.try_get(4)?,
        version: r.try_get(5)?,
        arch: r.try_get(6)?,
        container: r.try_get(7)?,
        install_method: r.try_get(8)?,
    })
}

pub fn outcome_cells(client: &mut Client, scope: &Scope<'_>) -> Result<Vec<Cell>, StoreError> {
    let query = format!(
        "SELECT {FACTS}, start_day, status, outcome_day, COUNT(*),
                SUM(attempt)::bigint, SUM(earlier_succeeded)::bigint, SUM(earlier_failed)::bigint,
                COUNT(*) FILTER (WHERE earlier_failed > 0)
         FROM installations WHERE {IN_WINDOW}
         GROUP BY {FACTS}, start_day, status, outcome_day
         ORDER BY {FACTS}, start_day, status, outcome_day NULLS FIRST"
    );
    scoped(client, &query, scope, None, |r| {
        let at = |i: usize| FACT_COLUMNS + i;
        Ok(Cell {
            facts: facts(r)?,
            start_day: r.try_get(at(0))?,
            status: status(r.try_get(at(1))?)?,
            outcome_day: r.try_get(at(2))?,
            installations: count(r, at(3))?,
            attempts: count(r, at(4))?,
            earlier_succeeded: count(r, at(5))?,
            earlier_failed: count(r, at(6))?,
            had_failed: count(r, at(7))?,
        })
    })
}

pub fn success_durations(client: &mut Client, scope: &Scope<'_>) -> Result<Vec<(Facts, Vec<i64>)>, StoreError> {
    let query = format!(
        "SELECT {FACTS}, duration FROM installations
         WHERE {IN_WINDOW} AND status = 'succeeded' AND duration IS NOT NULL
         ORDER BY {FACTS}, start_day, outcome_day, first_at, duration"
    );
    let rows = scoped(client, &query, scope, None, |r| {
        Ok((facts(r)?, r.try_get::<_, i64>(FACT_COLUMNS)?))
    })?;
    // Rows come ordered by their facts: one entry per run.
    let mut runs: Vec<(Facts, Vec<i64>)> = Vec::new();
    for (f, duration) in rows {
        match runs.last_mut() {
            Some((last, run)) if *last == f => run.push(duration),
            _ => runs.push((f, vec![duration])),
        }
    }
    Ok(runs)
}

fn strings(client: &mut Client, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>, StoreError> {
    client.query(query, params)?.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

pub fn products(client: &mut Client, max: usize) -> Result<Vec<String>, StoreError> {
    distinct_products(client, "tallies", "TRUE", max)
}

pub fn reported_products(client: &mut Client, max: usize) -> Result<Vec<String>, StoreError> {
    // Usually there are few products: finding them takes one index seek each, in the aggregates.
    let mut all = std::collections::BTreeSet::new();
    for (from, filter) in crate::store::REPORTED_IN {
        all.extend(distinct_products(client, from, filter, max)?);
    }
    Ok(all.into_iter().take(max).collect())
}

/// Up to `max` distinct `product`s of `from` where `filter` holds, by seeking from one to the next
/// along an index that starts with `product` (or with the column `filter` fixes).
fn distinct_products(client: &mut Client, from: &str, filter: &str, max: usize) -> Result<Vec<String>, StoreError> {
    strings(
        client,
        &format!(
            "WITH RECURSIVE p(v) AS (
                SELECT (SELECT MIN(product) FROM {from} WHERE {filter})
                UNION ALL
                SELECT (SELECT MIN(product) FROM {from} WHERE {filter} AND product > p.v) FROM p WHERE p.v IS NOT NULL)
             SELECT v FROM p WHERE v IS NOT NULL LIMIT $1"
        ),
        &[&limit(max)],
    )
}

/// See `sqlite/report.rs`.
pub fn busiest_products(
    client: &mut Client,
    (since_day, until_day): (i64, i64),
    active_hour: i64,
    max: usize,
) -> Result<Vec<String>, StoreError> {
    strings(
        client,
        "SELECT product FROM (
            SELECT product, SUM(installations) AS n FROM tallies
            WHERE dim = 0 AND tier = 0 AND period >= $1 AND period < $2 GROUP BY product
            UNION ALL
            SELECT product, 0 FROM active_hours WHERE hour >= $3 GROUP BY product
            UNION ALL
            SELECT product, 0 FROM day_counts WHERE kind = 0 AND day >= $1 AND day < $2 GROUP BY product) AS p
         GROUP BY product ORDER BY SUM(n) DESC, product LIMIT $4",
        &[&since_day, &until_day, &active_hour, &limit(max)],
    )
}

pub fn unlisted_installations(
    client: &mut Client,
    since_ms: i64,
    until_ms: i64,
    product: Option<&str>,
    listed: &[String],
) -> Result<(u64, Vec<(Status, u64)>), StoreError> {
    let filter = "first_at >= $1 AND first_at < $2 AND ($3::text IS NULL OR product = $3::text)
                  AND NOT (product = ANY($4))";
    let params: [&(dyn ToSql + Sync); 4] = [&since_ms, &until_ms, &product, &listed];
    let products = count(
        &client.query_one(
            &format!("SELECT COUNT(DISTINCT product) FROM installations WHERE {filter}"),
            &params,
        )?,
        0,
    )?;
    if products == 0 {
        return Ok((0, Vec::new()));
    }
    let rows = client.query(
        &format!("SELECT status, COUNT(*) FROM installations WHERE {filter} GROUP BY status ORDER BY status"),
        &params,
    )?;
    let statuses = rows
        .iter()
        .map(|r| Ok((status(r.try_get(0)?)?, count(r, 1)?)))
        .collect::<Result<_, StoreError>>()?;
    Ok((products, statuses))
}

/// The event filter of a report: its name, the time window ($1, $2) and the listed products ($3).
fn event_filter(name: &str) -> String {
    format!("event = '{name}' AND ts_ms >= $1 AND ts_ms < $2 AND COALESCE(product, '{NO_PRODUCT}') = ANY($3)")
}

pub fn failing_steps(client: &mut Client, scope: &Scope<'_>, top: usize) -> Result<Vec<StepRow>, StoreError> {
    let filter = event_filter(names::ERROR);
    let query = format!(
        "SELECT product, step, exit_code, count, installations FROM (
            SELECT COALESCE(product, '{NO_PRODUCT}') AS product, COALESCE(step, 'unknown') AS step, exit_code,
                   COUNT(*) AS count, COUNT(DISTINCT installation_id) AS installations,
                   ROW_NUMBER() OVER (PARTITION BY COALESCE(product, '{NO_PRODUCT}')
                                      ORDER BY COUNT(*) DESC, COALESCE(step, 'unknown'), exit_code NULLS FIRST) AS rank
            FROM events WHERE {filter} GROUP BY 1, 2, 3) AS ranked
         WHERE rank <= $4 ORDER BY product, rank"
    );
    scoped(client, &query, scope, Some(limit(top)), |r| {
        Ok(StepRow {
            product: r.try_get(0)?,
            step: r.try_get(1)?,
            exit_code: r.try_get(2)?,
            events: count(r, 3)?,
            installations: count(r, 4)?,
        })
    })
}

pub fn error_messages(client: &mut Client, scope: &Scope<'_>, top: usize) -> Result<Vec<MessageRow>, StoreError> {
    let filter = event_filter(names::ERROR);
    let query = sql(&format!(
        "SELECT product, step, exit_code, message, count FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY product, step, exit_code ORDER BY count DESC, message) AS rank
            FROM (
                SELECT COALESCE(product, '{NO_PRODUCT}') AS product, COALESCE(step, 'unknown') AS step, exit_code,
                       CASE WHEN jsonb_typeof(properties::jsonb -> '{{MESSAGE}}') = 'string' THEN message ELSE '' END
                           AS message,
                       COUNT(*) AS count
                FROM events WHERE {filter} GROUP BY 1, 2, 3, 4) AS grouped) AS ranked
         WHERE rank <= $4 ORDER BY product, step, exit_code NULLS FIRST, rank"
    ));
    scoped(client, &query, scope, Some(limit(top)), |r| {
        Ok(MessageRow {
            product: r.try_get(0)?,
            step: r.try_get(1)?,
            exit_code: r.try_get(2)?,
            message: r.try_get(3)?,
            count: count(r, 4)?,
        })
    })
}

/// The condition that `product` (as $2) is the event's product, in a form the indexes on
/// (product, time) serve: events of [`NO_PRODUCT`] have none.
fn product_is(product: &str) -> &'static str {
    if product == NO_PRODUCT {
        "product IS NULL AND $2::text IS NOT NULL"
    } else {
        "product = $2"
    }
}

/// Events named `name` of the scope per product, seeking along the partial index on
/// (product, time) for each product.
fn per_product(client: &mut Client, scope: &Scope<'_>, name: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let mut out = Vec::new();
    for product in scope.products {
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT COUNT(*) FROM events WHERE event = $1 AND {} AND ts_ms >= $3 AND ts_ms < $4",
                    product_is(product)
                ),
                &[&name, product, &scope.since_ms, &scope.until_ms],
            )?
            .try_get(0)?;
        if n > 0 {
            out.push((product.clone(), u64::try_from(n).unwrap_or(0)));
        }
    }
    Ok(out)
}

pub fn support_counts(client: &mut Client, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
    per_product(client, scope, names::SUPPORT)
}

pub fn beacon_unavailable(client: &mut Client, scope: &Scope<'_>) -> Result<Vec<(String, u64)>, StoreError> {
    per_product(client, scope, names::BEACON_UNAVAILABLE)
}

pub fn support_requests(client: &mut Client, scope: &Scope<'_>, latest: usize) -> Result<Vec<SupportRow>, StoreError> {
    // Per product, the newest first along the index: as many rows as shown, however many there are.
    let mut out = Vec::new();
    for product in scope.products {
        let query = format!(
            "SELECT ts_ms, product_version, step, installation_id, email FROM events
             WHERE event = $1 AND {} AND ts_ms >= $3 AND ts_ms < $4 ORDER BY ts_ms DESC LIMIT $5",
            product_is(product)
        );
        let args: [&(dyn ToSql + Sync); 5] = [
            &names::SUPPORT,
            product,
            &scope.since_ms,
            &scope.until_ms,
            &limit(latest),
        ];
        for r in client.query(&query, &args)? {
            out.push(SupportRow {
                product: product.clone(),
                ts_ms: r.try_get(0)?,
                product_version: r.try_get(1)?,
                step: r.try_get(2)?,
                installation_id: r.try_get(3)?,
                email: r.try_get(4)?,
            });
        }
    }
    Ok(out)
}

pub fn support_emails(client: &mut Client, scope: &Scope<'_>) -> Result<Vec<(String, String)>, StoreError> {
    let filter = event_filter(names::SUPPORT);
    let query = format!(
        "SELECT DISTINCT COALESCE(product, '{NO_PRODUCT}'), email
         FROM events WHERE {filter} AND email IS NOT NULL ORDER BY 1, 2"
    );
    scoped(client, &query, scope, None, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}
