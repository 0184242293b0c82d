//! The installation report, computed with SQL aggregation over the event table.
//!
//! An installation is one installation ID (per product). It *started* if it sent any of
//! Started/Success/Error; it *failed* if its last Error is later than its last Success (or it has no
//! Success); it *succeeded* if it has a Success and did not fail; otherwise it is *abandoned*.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::event::names;
use crate::store::StoreError;

/// What to report on; resolved once from flags or query parameters.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only events at or after this time (ms since epoch).
    pub since_ms: Option<i64>,
    /// Human form of the window, echoed in the report (e.g. `30days`).
    pub since_label: Option<String>,
    /// Only this product.
    pub product: Option<String>,
    /// Include support emails.
    pub show_emails: bool,
    /// The time "now" for the 24 h active window (ms since epoch).
    pub now_ms: i64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the report was made (UTC, ISO 8601).
    pub generated_at: String,
    /// The window, if one was asked for.
    pub since: Option<String>,
    /// One section per product, by name.
    pub products: Vec<ProductReport>,
}

/// Installation outcomes and durations of one group of installations.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Funnel {
    /// Installations that reported anything (started = succeeded + failed + abandoned).
    pub started: u64,
    /// Installations whose last outcome is a Success.
    pub succeeded: u64,
    /// Installations with an Error and no later Success.
    pub failed: u64,
    /// Installations that started and reported neither outcome.
    pub abandoned: u64,
    /// succeeded / started, 0 to 1, rounded to 4 decimals.
    pub success_rate: f64,
    /// Median install duration of succeeded installations (nearest rank).
    pub median_duration_ms: Option<i64>,
    /// 90th percentile install duration of succeeded installations (nearest rank).
    pub p90_duration_ms: Option<i64>,
}

/// Outcomes on one OS version.
#[derive(Debug, Clone, Serialize)]
pub struct OsRow {
    /// Operating system, e.g. `ubuntu`.
    pub os: String,
    /// Its version, e.g. `22.04`.
    pub os_version: String,
    /// Outcomes.
    #[serde(flatten)]
    pub funnel: Funnel,
}

/// Outcomes of one product version.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    /// Product version being installed.
    pub product_version: String,
    /// Outcomes.
    #[serde(flatten)]
    pub funnel: Funnel,
}

/// Errors at one step with one exit code.
#[derive(Debug, Clone, Serialize)]
pub struct FailingStep {
    /// Installer step that failed.
    pub step: String,
    /// Its exit code, if reported.
    pub exit_code: Option<i64>,
    /// Error events.
    pub count: u64,
    /// Distinct installations that hit it.
    pub installations: u64,
}

/// Support requests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Support {
    /// Number of `Installation Support` events.
    pub count: u64,
    /// Distinct emails, only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
}

/// Outcomes per UTC day.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Installations first seen that day.
    pub started: u64,
    /// Installations whose success came that day.
    pub succeeded: u64,
    /// Installations whose (last) error came that day.
    pub failed: u64,
}

/// Everything about one product.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductReport {
    /// Product name (`(none)` when events carried none).
    pub product: String,
    /// Outcomes over all its installations.
    pub installations: Funnel,
    /// Outcomes by OS and OS version, most installations first.
    pub by_os: Vec<OsRow>,
    /// Outcomes by product version, most installations first.
    pub by_version: Vec<VersionRow>,
    /// Most frequent failing steps.
    pub failing_steps: Vec<FailingStep>,
    /// Support requests.
    pub support: Support,
    /// Distinct installations with an `Instance Active` event in the last 24 h.
    pub active_24h: u64,
    /// Per-day series.
    pub daily: Vec<Day>,
}

/// Label for events without a product.
pub const NO_PRODUCT: &str = "(none)";
const TOP_FAILING_STEPS: i64 = 10;

/// Runs the report.
pub fn run(conn: &Connection, q: &Query) -> Result<Report, StoreError> {
    build_installations(conn, q)?;
    let mut products: BTreeMap<String, ProductReport> = BTreeMap::new();
    fn entry(products: &mut BTreeMap<String, ProductReport>, p: String) -> &mut ProductReport {
        products.entry(p.clone()).or_insert_with(|| ProductReport {
            product: p,
            ..Default::default()
        })
    }
    for (product, _, _, funnel) in funnels(conn, "''", "''")? {
        entry(&mut products, product).installations = funnel;
    }
    for (product, os, os_version, funnel) in funnels(conn, "os", "os_version")? {
        entry(&mut products, product).by_os.push(OsRow {
            os,
            os_version,
            funnel,
        });
    }
    for (product, product_version, _, funnel) in funnels(conn, "product_version", "''")? {
        entry(&mut products, product).by_version.push(VersionRow {
            product_version,
            funnel,
        });
    }
    for (product, step) in failing_steps(conn, q)? {
        entry(&mut products, product).failing_steps.push(step);
    }
    for (product, support) in support(conn, q)? {
        entry(&mut products, product).support = support;
    }
    for (product, active) in active(conn, q)? {
        entry(&mut products, product).active_24h = active;
    }
    for (product, day) in daily(conn)? {
        entry(&mut products, product).daily.push(day);
    }
    let generated_at: String = conn.query_row(
        "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', ?1 / 1000, 'unixepoch')",
        [q.now_ms],
        |r| r.get(0),
    )?;
    let mut products: Vec<ProductReport> = products.into_values().collect();
    products.sort_by(|a, b| {
        (b.installations.started.cmp(&a.installations.started))
            .then_with(|| a.product.cmp(&b.product))
    });
    Ok(Report {
        generated_at,
        since: q.since_label.clone(),
        products,
    })
}

/// One row per (product, installation ID) with its outcome, in `temp.installations`.
fn build_installations(conn: &Connection, q: &Query) -> Result<(), StoreError> {
    conn.execute_batch("DROP TABLE IF EXISTS temp.installations")?;
    conn.execute(
        &format!(
            "CREATE TEMP TABLE installations AS
             SELECT product, os, os_version, product_version, first_at, success_at, error_at,
                    CASE WHEN error_at IS NOT NULL AND (success_at IS NULL OR success_at < error_at) THEN 'failed'
                         WHEN success_at IS NOT NULL THEN 'succeeded'
                         ELSE 'abandoned' END AS status,
                    CASE WHEN error_at IS NOT NULL AND (success_at IS NULL OR success_at < error_at) THEN NULL
                         WHEN success_at IS NOT NULL THEN COALESCE(success_duration, success_at - started_at)
                    END AS duration
             FROM (
                SELECT COALESCE(product, '{none}') AS product,
                       COALESCE(MAX(os), 'unknown') AS os,
                       COALESCE(MAX(os_version), '') AS os_version,
                       COALESCE(MAX(product_version), 'unknown') AS product_version,
                       MIN(ts_ms) AS first_at,
                       MIN(CASE WHEN event = '{started}' THEN ts_ms END) AS started_at,
                       MAX(CASE WHEN event = '{success}' THEN ts_ms END) AS success_at,
                       MAX(CASE WHEN event = '{error}' THEN ts_ms END) AS error_at,
                       MAX(CASE WHEN event = '{success}' THEN duration_ms END) AS success_duration
                FROM events
                WHERE event IN ('{started}', '{success}', '{error}')
                  AND ts_ms >= ?1 AND (?2 IS NULL OR COALESCE(product, '{none}') = ?2)
                GROUP BY product, installation_id
             )",
            none = NO_PRODUCT,
            started = names::STARTED,
            success = names::SUCCESS,
            error = names::ERROR,
        ),
        params![q.since_ms.unwrap_or(i64::MIN), q.product],
    )?;
    Ok(())
}

/// Outcome counts and duration percentiles grouped by product and two key expressions.
fn funnels(
    conn: &Connection,
    k1: &str,
    k2: &str,
) -> Result<Vec<(String, String, String, Funnel)>, StoreError> {
    let sql = format!(
        "WITH g AS (SELECT product, {k1} AS k1, {k2} AS k2, status, duration FROM temp.installations),
         ranked AS (
            SELECT product, k1, k2, duration,
                   ROW_NUMBER() OVER (PARTITION BY product, k1, k2 ORDER BY duration) AS rn,
                   COUNT(*) OVER (PARTITION BY product, k1, k2) AS n
            FROM g WHERE duration IS NOT NULL),
         pct AS (
            SELECT product, k1, k2,
                   MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN duration END) AS median,
                   MAX(CASE WHEN rn = (n * 90 + 99) / 100 THEN duration END) AS p90
            FROM ranked GROUP BY product, k1, k2),
         counts AS (
            SELECT product, k1, k2, COUNT(*) AS started,
                   SUM(status = 'succeeded') AS succeeded,
                   SUM(status = 'failed') AS failed,
                   SUM(status = 'abandoned') AS abandoned
            FROM g GROUP BY product, k1, k2)
         SELECT c.product, c.k1, c.k2, c.started, c.succeeded, c.failed, c.abandoned, p.median, p.p90
         FROM counts c LEFT JOIN pct p ON p.product = c.product AND p.k1 = c.k1 AND p.k2 = c.k2
         ORDER BY c.product, c.started DESC, c.k1, c.k2"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        let started: u64 = r.get(3)?;
        let succeeded: u64 = r.get(4)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            Funnel {
                started,
                succeeded,
                failed: r.get(5)?,
                abandoned: r.get(6)?,
                success_rate: rate(succeeded, started),
                median_duration_ms: r.get(7)?,
                p90_duration_ms: r.get(8)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `part / whole` rounded to 4 decimals; 0 when `whole` is 0.
pub fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}

fn failing_steps(conn: &Connection, q: &Query) -> Result<Vec<(String, FailingStep)>, StoreError> {
    let sql = format!(
        "SELECT product, step, exit_code, count, installations FROM (
            SELECT COALESCE(product, '{NO_PRODUCT}') AS product, COALESCE(step, 'unknown') AS step, exit_code,
                   COUNT(*) AS count, COUNT(DISTINCT installation_id) AS installations,
                   ROW_NUMBER() OVER (PARTITION BY COALESCE(product, '{NO_PRODUCT}')
                                      ORDER BY COUNT(*) DESC, COALESCE(step, 'unknown'), exit_code) AS rank
            FROM events
            WHERE event = '{}' AND ts_ms >= ?1 AND (?2 IS NULL OR COALESCE(product, '{NO_PRODUCT}') = ?2)
            GROUP BY 1, 2, 3)
         WHERE rank <= ?3 ORDER BY product, rank",
        names::ERROR
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(
        params![q.since_ms.unwrap_or(i64::MIN), q.product, TOP_FAILING_STEPS],
        |r| {
            Ok((
                r.get(0)?,
                FailingStep {
                    step: r.get(1)?,
                    exit_code: r.get(2)?,
                    count: r.get(3)?,
                    installations: r.get(4)?,
                },
            ))
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn support(conn: &Connection, q: &Query) -> Result<Vec<(String, Support)>, StoreError> {
    let filter = format!(
        "event = '{}' AND ts_ms >= ?1 AND (?2 IS NULL OR COALESCE(product, '{NO_PRODUCT}') = ?2)",
        names::SUPPORT
    );
    let since = q.since_ms.unwrap_or(i64::MIN);
    let mut stmt = conn.prepare(&format!(
        "SELECT COALESCE(product, '{NO_PRODUCT}'), COUNT(*) FROM events WHERE {filter} GROUP BY 1 ORDER BY 1"
    ))?;
    let mut out: Vec<(String, Support)> = stmt
        .query_map(params![since, q.product], |r| {
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
            "SELECT DISTINCT COALESCE(product, '{NO_PRODUCT}'), email FROM events
             WHERE {filter} AND email IS NOT NULL ORDER BY 1, 2"
        ))?;
        let rows = stmt.query_map(params![since, q.product], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?))
        })?;
        for row in rows {
            let (product, email) = row?;
            if let Some((_, s)) = out.iter_mut().find(|(p, _)| *p == product) {
                s.emails.get_or_insert_with(Vec::new).push(email);
            }
        }
    }
    Ok(out)
}

fn active(conn: &Connection, q: &Query) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT COALESCE(product, '{NO_PRODUCT}'), COUNT(DISTINCT installation_id) FROM events
         WHERE event = '{}' AND ts_ms >= ?1 AND (?2 IS NULL OR COALESCE(product, '{NO_PRODUCT}') = ?2)
         GROUP BY 1 ORDER BY 1",
        names::ACTIVE
    ))?;
    let cutoff = q.now_ms - 24 * 3600 * 1000;
    let rows = stmt.query_map(params![cutoff, q.product], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn daily(conn: &Connection) -> Result<Vec<(String, Day)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT product, day, SUM(kind = 's'), SUM(kind = 'ok'), SUM(kind = 'err') FROM (
            SELECT product, date(first_at / 1000, 'unixepoch') AS day, 's' AS kind FROM temp.installations
            UNION ALL
            SELECT product, date(success_at / 1000, 'unixepoch'), 'ok' FROM temp.installations
             WHERE status = 'succeeded'
            UNION ALL
            SELECT product, date(error_at / 1000, 'unixepoch'), 'err' FROM temp.installations
             WHERE status = 'failed')
         GROUP BY product, day ORDER BY product, day",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            Day {
                date: r.get(1)?,
                started: r.get(2)?,
                succeeded: r.get(3)?,
                failed: r.get(4)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
