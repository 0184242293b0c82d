//! The installation report, computed with SQL aggregation over the event table.
//!
//! An installation is one installation ID (per product). It *started* if it sent any of
//! Started/Success/Error; it *failed* if its last Error is later than its last Success (or it has no
//! Success); it *succeeded* if it has a Success and did not fail; otherwise it is *abandoned*.

mod model;

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, params};

use crate::clock;
use crate::event::{NO_PRODUCT, names};
use crate::store::{Status, StoreError, sql};

pub use model::{Day, FailingStep, Funnel, OsRow, OtherProducts, ProductReport, Report, Support, VersionRow};

/// What to report on; resolved once from flags or query parameters.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only events within this window before `now_ms`.
    pub since: Option<Since>,
    /// Only this product.
    pub product: Option<String>,
    /// Include support emails.
    pub show_emails: bool,
    /// The time "now" for the 24 h active window (ms since epoch).
    pub now_ms: i64,
}

impl Query {
    /// The start of the "active in the last 24 h" window.
    fn active_cutoff_ms(&self) -> i64 {
        self.now_ms.saturating_sub(clock::DAY_MS)
    }

    /// The earliest event time counted (ms since epoch); `i64::MIN` for all time.
    fn since_ms(&self) -> i64 {
        self.since
            .as_ref()
            .map_or(i64::MIN, |s| self.now_ms.saturating_sub(s.ms))
    }
}

/// A report window such as `30d`: its length in milliseconds, and how the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    label: String,
    ms: i64,
}

impl Since {
    /// Parses a humantime duration (`30d`, `12h`), refusing lengths that do not fit in
    /// milliseconds since the epoch (which would wrap around and empty the report).
    pub fn parse(text: &str) -> Result<Since, String> {
        let d = humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
        let ms = i64::try_from(d.as_millis())
            .map_err(|_| format!("{text} is too long a window; leave it out to report all time"))?;
        Ok(Since {
            label: humantime::format_duration(d).to_string(),
            ms,
        })
    }
}

const TOP_FAILING_STEPS: i64 = 10;
/// Products listed by name; the installations of the rest are summed in `other_products`.
pub const MAX_PRODUCTS: usize = 25;
/// Rows by OS and by product version per product; the rest are summed in one [`OTHER`] row.
pub const MAX_ROWS: usize = 25;
/// Days in the per-day series: the most recent ones.
pub const MAX_DAYS: usize = 400;
/// The name of a row that sums the ones not listed.
pub const OTHER: &str = "(other)";

/// Outcome counts of one group, before durations are added.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    started: u64,
    succeeded: u64,
    failed: u64,
    abandoned: u64,
}

impl Counts {
    fn merge(&mut self, other: Counts) {
        self.started += other.started;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.abandoned += other.abandoned;
    }

    fn add(&mut self, status: Status, n: u64) {
        self.started += n;
        match status {
            Status::Succeeded => self.succeeded += n,
            Status::Failed => self.failed += n,
            Status::Abandoned => self.abandoned += n,
        }
    }

    fn funnel(self, durations: Option<&mut Vec<i64>>) -> Funnel {
        let (median, p90) = match durations {
            Some(d) if !d.is_empty() => {
                d.sort_unstable();
                (Some(nearest_rank(d, 50)), Some(nearest_rank(d, 90)))
            }
            _ => (None, None),
        };
        Funnel {
            started: self.started,
            succeeded: self.succeeded,
            failed: self.failed,
            abandoned: self.abandoned,
            success_rate: rate(self.succeeded, self.started),
            median_duration_ms: median,
            p90_duration_ms: p90,
        }
    }
}

/// The `pct`-th percentile of sorted, non-empty values by the nearest-rank method.
fn nearest_rank(sorted: &[i64], pct: usize) -> i64 {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Installations started, succeeded and failed on one day.
#[derive(Debug, Default, Clone, Copy)]
struct DayCounts {
    started: u64,
    succeeded: u64,
    failed: u64,
}

/// Everything gathered for one product before it becomes a [`ProductReport`].
#[derive(Debug, Default)]
struct Acc {
    total: Counts,
    by_os: BTreeMap<(String, String), Counts>,
    by_version: BTreeMap<String, Counts>,
    daily: BTreeMap<i64, DayCounts>,
    durations: Vec<i64>,
    os_durations: BTreeMap<(String, String), Vec<i64>>,
    version_durations: BTreeMap<String, Vec<i64>>,
}

impl Acc {
    /// The counts of `day`, unless the series already holds [`MAX_DAYS`] later days.
    fn day(&mut self, day: i64) -> Option<&mut DayCounts> {
        if self.daily.len() >= MAX_DAYS && !self.daily.contains_key(&day) {
            if self.daily.first_key_value().is_some_and(|(&first, _)| day < first) {
                return None;
            }
            self.daily.pop_first();
        }
        Some(self.daily.entry(day).or_default())
    }
}

/// Rows of one breakdown, most installations first: at most [`MAX_ROWS`] by key, then (`None`)
/// one row summing the rest.
fn bounded<K: Ord>(groups: BTreeMap<K, Counts>, durations: &mut BTreeMap<K, Vec<i64>>) -> Vec<(Option<K>, Funnel)> {
    let mut rows: Vec<(K, Counts)> = groups.into_iter().collect();
    rows.sort_by_key(|(_, c)| std::cmp::Reverse(c.started));
    let rest = rows.split_off(rows.len().min(MAX_ROWS));
    let mut out: Vec<(Option<K>, Funnel)> = rows
        .into_iter()
        .map(|(k, c)| {
            let funnel = c.funnel(durations.get_mut(&k));
            (Some(k), funnel)
        })
        .collect();
    if !rest.is_empty() {
        let (mut total, mut all) = (Counts::default(), Vec::new());
        for (k, c) in rest {
            total.merge(c);
            all.extend(durations.remove(&k).unwrap_or_default());
        }
        out.push((None, total.funnel(Some(&mut all))));
    }
    out
}

/// Runs the report.
///
/// Installations are read from the `installations` table (one row per installation ID, kept up to
/// date at ingest): SQL groups them into a small cube of (product, OS, version, day, status)
/// counts along a covering index, and streams the durations of succeeded installations from the
/// same index for the percentiles. Failing steps, support requests and active instances come from
/// partial indexes.
///
/// Whatever is stored, the report stays small: [`MAX_PRODUCTS`] products (chosen first, in SQL,
/// so the others are never loaded), [`MAX_ROWS`] rows per breakdown and [`MAX_DAYS`] days.
pub fn run(conn: &Connection, q: &Query) -> Result<Report, StoreError> {
    let since = q.since_ms();
    let listed = listed_products(conn, q)?;
    let scope = serde_json::Value::from(listed.clone()).to_string();
    let mut accs: BTreeMap<String, Acc> = BTreeMap::new();

    let mut cube = conn.prepare(
        "SELECT product, os, os_version, product_version, start_day, status, outcome_day, COUNT(*)
         FROM installations
         WHERE first_at >= ?1 AND product IN (SELECT value FROM json_each(?2))
         GROUP BY product, os, os_version, product_version, start_day, status, outcome_day",
    )?;
    let mut rows = cube.query(params![since, scope])?;
    while let Some(r) = rows.next()? {
        let product: String = r.get(0)?;
        let (os, os_version, version): (String, String, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
        let (start_day, status, outcome_day): (i64, Status, Option<i64>) = (r.get(4)?, r.get(5)?, r.get(6)?);
        let n: u64 = r.get(7)?;
        let acc = accs.entry(product).or_default();
        acc.total.add(status, n);
        acc.by_os.entry((os, os_version)).or_default().add(status, n);
        acc.by_version.entry(version).or_default().add(status, n);
        if let Some(counts) = acc.day(start_day) {
            counts.started += n;
        }
        if let Some(counts) = outcome_day.and_then(|day| acc.day(day)) {
            match status {
                Status::Succeeded => counts.succeeded += n,
                Status::Failed => counts.failed += n,
                Status::Abandoned => {}
            }
        }
    }

    let mut durations = conn.prepare(&format!(
        "SELECT product, os, os_version, product_version, duration
         FROM installations INDEXED BY installations_cube
         WHERE status = '{}' AND duration IS NOT NULL AND first_at >= ?1
           AND product IN (SELECT value FROM json_each(?2))",
        Status::Succeeded.as_sql()
    ))?;
    let mut rows = durations.query(params![since, scope])?;
    while let Some(r) = rows.next()? {
        let product: String = r.get(0)?;
        let duration: i64 = r.get(4)?;
        let acc = accs.entry(product).or_default();
        acc.durations.push(duration);
        acc.os_durations
            .entry((r.get(1)?, r.get(2)?))
            .or_default()
            .push(duration);
        acc.version_durations.entry(r.get(3)?).or_default().push(duration);
    }

    let mut products: BTreeMap<String, ProductReport> = BTreeMap::new();
    for (product, mut acc) in accs {
        let by_os = bounded(acc.by_os, &mut acc.os_durations)
            .into_iter()
            .map(|(key, funnel)| {
                let (os, os_version) = key.unwrap_or_else(|| (OTHER.into(), String::new()));
                OsRow { os, os_version, funnel }
            })
            .collect();
        let by_version = bounded(acc.by_version, &mut acc.version_durations)
            .into_iter()
            .map(|(key, funnel)| VersionRow {
                product_version: key.unwrap_or_else(|| OTHER.into()),
                funnel,
            })
            .collect();
        let daily = acc
            .daily
            .into_iter()
            .map(|(day, c)| Day {
                date: clock::date(day),
                started: c.started,
                succeeded: c.succeeded,
                failed: c.failed,
            })
            .collect();
        let installations = acc.total.funnel(Some(&mut acc.durations));
        products.insert(
            product.clone(),
            ProductReport {
                product,
                installations,
                by_os,
                by_version,
                daily,
                ..Default::default()
            },
        );
    }
    fn entry(products: &mut BTreeMap<String, ProductReport>, p: String) -> &mut ProductReport {
        products.entry(p.clone()).or_insert_with(|| ProductReport {
            product: p,
            ..Default::default()
        })
    }
    for (product, step) in failing_steps(conn, q, &scope)? {
        entry(&mut products, product).failing_steps.push(step);
    }
    for (product, support) in support(conn, q, &scope)? {
        entry(&mut products, product).support = support;
    }
    for (product, active) in active(conn, q, &scope)? {
        entry(&mut products, product).active_24h = active;
    }
    let mut products: Vec<ProductReport> = products.into_values().collect();
    products.sort_by(|a, b| {
        (b.installations.started.cmp(&a.installations.started)).then_with(|| a.product.cmp(&b.product))
    });
    Ok(Report {
        generated_at: clock::iso_seconds(q.now_ms),
        since: q.since.as_ref().map(|s| s.label.clone()),
        products,
        other_products: if listed.len() < MAX_PRODUCTS {
            None
        } else {
            other_products(conn, q, &scope)?
        },
        forwarding: crate::relay::queue::status(conn)?,
    })
}

/// The products the report lists: those with installations, active instances or support
/// requests. When there are more than [`MAX_PRODUCTS`], the ones with the most installations in
/// the window.
fn listed_products(conn: &Connection, q: &Query) -> Result<Vec<String>, StoreError> {
    if let Some(product) = &q.product {
        return Ok(vec![product.clone()]);
    }
    // Usually there are few products: finding them takes one index seek each.
    let support = sql("event = '{SUPPORT}'");
    let mut all = BTreeSet::new();
    for (from, filter) in [
        ("installations", "1"),
        ("instances", "1"),
        ("events INDEXED BY support_requests", support.as_str()),
    ] {
        all.extend(distinct_products(conn, from, filter)?);
    }
    let unnamed_support: bool = conn.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM events INDEXED BY support_requests WHERE {support} AND product IS NULL)"
        ),
        [],
        |r| r.get(0),
    )?;
    if unnamed_support {
        all.insert(NO_PRODUCT.to_string());
    }
    if all.len() <= MAX_PRODUCTS {
        return Ok(all.into_iter().collect());
    }
    let mut stmt = conn.prepare(&sql("SELECT product FROM (
            SELECT product, COUNT(*) AS n FROM installations WHERE first_at >= ?1 GROUP BY product
            UNION ALL
            SELECT product, 0 FROM instances WHERE last_active_at >= ?2 GROUP BY product
            UNION ALL
            SELECT COALESCE(product, '{NO_PRODUCT}'), 0 FROM events INDEXED BY support_requests
            WHERE event = '{SUPPORT}' AND ts_ms >= ?1 GROUP BY 1)
         GROUP BY product ORDER BY SUM(n) DESC, product LIMIT ?3"))?;
    let limit = i64::try_from(MAX_PRODUCTS).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![q.since_ms(), q.active_cutoff_ms(), limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to [`MAX_PRODUCTS`] + 1 distinct non-null `product`s of `from` where `filter` holds, by
/// seeking from one to the next along an index that starts with `product`.
fn distinct_products(conn: &Connection, from: &str, filter: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "WITH RECURSIVE p(v) AS (
            SELECT (SELECT MIN(product) FROM {from} WHERE {filter})
            UNION ALL
            SELECT (SELECT MIN(product) FROM {from} WHERE {filter} AND product > p.v) FROM p WHERE p.v IS NOT NULL)
         SELECT v FROM p WHERE v IS NOT NULL LIMIT ?1"
    ))?;
    let limit = i64::try_from(MAX_PRODUCTS + 1).unwrap_or(i64::MAX);
    let rows = stmt.query_map([limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The installations of the products past [`MAX_PRODUCTS`], summed; `None` if there are none.
fn other_products(conn: &Connection, q: &Query, scope: &str) -> Result<Option<OtherProducts>, StoreError> {
    let filter = "first_at >= ?1 AND (?2 IS NULL OR product = ?2)
                  AND product NOT IN (SELECT value FROM json_each(?3))";
    let args = params![q.since_ms(), q.product, scope];
    let products: u64 = conn.query_row(
        &format!("SELECT COUNT(DISTINCT product) FROM installations WHERE {filter}"),
        args,
        |r| r.get(0),
    )?;
    if products == 0 {
        return Ok(None);
    }
    let mut counts = Counts::default();
    let mut stmt = conn.prepare(&format!(
        "SELECT status, COUNT(*) FROM installations WHERE {filter} GROUP BY status"
    ))?;
    let mut rows = stmt.query(args)?;
    while let Some(r) = rows.next()? {
        counts.add(r.get(0)?, r.get(1)?);
    }
    Ok(Some(OtherProducts {
        products,
        installations: counts.funnel(None),
    }))
}

/// `part / whole` rounded to 4 decimals; 0 when `whole` is 0.
pub fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}

fn failing_steps(conn: &Connection, q: &Query, scope: &str) -> Result<Vec<(String, FailingStep)>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT product, step, exit_code, count, installations FROM (
            SELECT COALESCE(product, '{NO_PRODUCT}') AS product, COALESCE(step, 'unknown') AS step,
                   exit_code, COUNT(*) AS count, COUNT(DISTINCT installation_id) AS installations,
                   ROW_NUMBER() OVER (PARTITION BY COALESCE(product, '{NO_PRODUCT}')
                                      ORDER BY COUNT(*) DESC, COALESCE(step, 'unknown'), exit_code) AS rank
            FROM events INDEXED BY errors_by_step
            WHERE event = '{}' AND ts_ms >= ?1
              AND COALESCE(product, '{NO_PRODUCT}') IN (SELECT value FROM json_each(?2))
            GROUP BY 1, 2, 3)
         WHERE rank <= ?3 ORDER BY product, rank",
        names::ERROR
    ))?;
    let since = q.since_ms();
    let rows = stmt.query_map(params![since, scope, TOP_FAILING_STEPS], |r| {
        Ok((
            r.get(0)?,
            FailingStep {
                step: r.get(1)?,
                exit_code: r.get(2)?,
                count: r.get(3)?,
                installations: r.get(4)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn support(conn: &Connection, q: &Query, scope: &str) -> Result<Vec<(String, Support)>, StoreError> {
    let filter = format!(
        "event = '{}' AND ts_ms >= ?1 AND COALESCE(product, '{NO_PRODUCT}') IN (SELECT value FROM json_each(?2))",
        names::SUPPORT
    );
    let since = q.since_ms();
    let mut stmt = conn.prepare(&format!(
        "SELECT COALESCE(product, '{NO_PRODUCT}'), COUNT(*) FROM events INDEXED BY support_requests
         WHERE {filter}
         GROUP BY 1 ORDER BY 1"
    ))?;
    let mut out: Vec<(String, Support)> = stmt
        .query_map(params![since, scope], |r| {
            Ok((
                r.get(0)?,
                Support {
                    count: r.get(1)?,
                    emails: q.show_emails.then(Vec::new),
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    if q.show_emails {
        let mut stmt = conn.prepare(&format!(
            "SELECT DISTINCT COALESCE(product, '{NO_PRODUCT}'), email
             FROM events INDEXED BY support_requests WHERE {filter} AND email IS NOT NULL ORDER BY 1, 2"
        ))?;
        let rows = stmt.query_map(params![since, scope], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        for row in rows {
            let (product, email) = row?;
            if let Some((_, s)) = out.iter_mut().find(|(p, _)| *p == product) {
                s.emails.get_or_insert_with(Vec::new).push(email);
            }
        }
    }
    Ok(out)
}

fn active(conn: &Connection, q: &Query, scope: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT product, COUNT(*) FROM instances
         WHERE last_active_at >= ?1 AND product IN (SELECT value FROM json_each(?2))
         GROUP BY product ORDER BY product",
    )?;
    let rows = stmt.query_map(params![q.active_cutoff_ms(), scope], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(nearest_rank(&[7], 50), 7);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), 2);
        assert_eq!(nearest_rank(&[1, 2, 3, 4, 5], 50), 3);
        assert_eq!(nearest_rank(&[1, 2, 3, 4, 5], 90), 5);
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&ten, 90), 9);
    }

    #[test]
    fn rates_round_to_four_decimals() {
        assert_eq!(rate(2, 3), 0.6667);
        assert_eq!(rate(0, 0), 0.0);
    }
}
