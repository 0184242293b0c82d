//! The installation report, computed with SQL aggregation over the event table.
//!
//! An installation is one installation ID (per product). It *started* if it sent any of
//! Started/Success/Error; it *failed* if its last Error is later than its last Success (or it has no
//! Success); it *succeeded* if it has a Success and did not fail; otherwise it is *running* while
//! it started within the running window, and *abandoned* after.

mod model;
pub mod public;

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, params};

use crate::clock;
use crate::event::{NO_PRODUCT, names};
use crate::store::{Status, StoreError, sql};
use crate::window::Window;

pub use model::{
    Day, FailingStep, Funnel, Message, OsRow, OtherProducts, ProductReport, Report, Row, Support, SupportRequest,
};

/// What to report on; resolved once from flags or query parameters.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Installations first seen, and events sent, in this window.
    pub window: Window,
    /// Only this product.
    pub product: Option<String>,
    /// Include support emails.
    pub show_emails: bool,
    /// Count CI installations in the funnel and success rates (they are always shown apart).
    pub include_ci: bool,
    /// An installation with no outcome that started less than this long ago is *running*, not
    /// abandoned (ms).
    pub running_ms: i64,
    /// The time "now" for the 24 h active and the running windows (ms since epoch).
    pub now_ms: i64,
}

impl Query {
    /// The start of the "active in the last 24 h" window.
    fn active_cutoff_ms(&self) -> i64 {
        self.now_ms.saturating_sub(clock::DAY_MS)
    }

    /// The window as `[since, until)` in ms, unbounded ends as `i64::MIN`/`i64::MAX`.
    fn bounds(&self) -> (i64, i64) {
        (
            self.window.since_ms.unwrap_or(i64::MIN),
            self.window.until_ms.unwrap_or(i64::MAX),
        )
    }
}

/// The default of `running_ms`: installers rarely take longer.
pub const RUNNING_WINDOW: std::time::Duration = std::time::Duration::from_secs(30 * 60);

const TOP_FAILING_STEPS: i64 = 10;
/// Products listed by name; the installations of the rest are summed in `other_products`.
pub const MAX_PRODUCTS: usize = 25;
/// Rows by OS, version, architecture and container per product; the rest are summed in one
/// [`OTHER`] row.
pub const MAX_ROWS: usize = 25;
/// Days in the per-day series: the most recent ones.
pub const MAX_DAYS: usize = 400;
/// The name of a row that sums the ones not listed.
pub const OTHER: &str = "(other)";
const TOP_MESSAGES: i64 = 3;
const LATEST_SUPPORT_REQUESTS: i64 = 50;

/// Outcome counts and durations of one group.
#[derive(Debug, Default)]
struct Group {
    started: u64,
    succeeded: u64,
    failed: u64,
    abandoned: u64,
    running: u64,
    durations: Vec<i64>,
}

impl Group {
    fn merge(&mut self, other: Group) {
        self.started += other.started;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.abandoned += other.abandoned;
        self.running += other.running;
        self.durations.extend(other.durations);
    }

    fn add(&mut self, outcome: Outcome, n: u64) {
        self.started += n;
        match outcome {
            Outcome::Succeeded => self.succeeded += n,
            Outcome::Failed => self.failed += n,
            Outcome::Abandoned => self.abandoned += n,
            Outcome::Running => self.running += n,
        }
    }

    fn funnel(mut self) -> Funnel {
        let (median, p90) = if self.durations.is_empty() {
            (None, None)
        } else {
            self.durations.sort_unstable();
            (
                Some(nearest_rank(&self.durations, 50)),
                Some(nearest_rank(&self.durations, 90)),
            )
        };
        Funnel {
            started: self.started,
            succeeded: self.succeeded,
            failed: self.failed,
            abandoned: self.abandoned,
            running: self.running,
            success_rate: rate(self.succeeded, self.started - self.running),
            median_duration_ms: median,
            p90_duration_ms: p90,
        }
    }
}

/// Where an installation stands in the report: its stored [`Status`], with the abandoned ones
/// that started within the running window set apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Abandoned,
    Running,
}

impl From<Status> for Outcome {
    fn from(s: Status) -> Outcome {
        match s {
            Status::Succeeded => Outcome::Succeeded,
            Status::Failed => Outcome::Failed,
            Status::Abandoned => Outcome::Abandoned,
        }
    }
}

/// The `pct`-th percentile of sorted, non-empty values by the nearest-rank method.
fn nearest_rank(sorted: &[i64], pct: usize) -> i64 {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// The facts an installation is grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    product: String,
    ci: bool,
    os: String,
    os_version: String,
    version: String,
    arch: String,
    container: String,
}

impl Facts {
    /// Reads columns 0..7: product, ci, os, os_version, product_version, arch, container.
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Facts> {
        Ok(Facts {
            product: r.get(0)?,
            ci: r.get(1)?,
            os: r.get(2)?,
            os_version: r.get(3)?,
            version: r.get(4)?,
            arch: r.get(5)?,
            container: r.get(6)?,
        })
    }

    /// Whether columns 0..7 of `r` are these facts (compared in place, without copying).
    fn matches(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<bool> {
        let text = |i: usize, v: &str| -> rusqlite::Result<bool> {
            Ok(r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)? == v)
        };
        Ok(text(0, &self.product)?
            && r.get::<_, bool>(1)? == self.ci
            && text(2, &self.os)?
            && text(3, &self.os_version)?
            && text(4, &self.version)?
            && text(5, &self.arch)?
            && text(6, &self.container)?)
    }
}

/// Everything gathered for one product before it becomes a [`ProductReport`].
#[derive(Debug, Default)]
struct Acc {
    total: Group,
    ci: Group,
    by_os: BTreeMap<(String, String), Group>,
    by_version: BTreeMap<String, Group>,
    by_arch: BTreeMap<String, Group>,
    by_container: BTreeMap<String, Group>,
    daily: BTreeMap<i64, Day>,
}

impl Acc {
    /// The counts of `day`, unless the series already holds [`MAX_DAYS`] later days.
    fn day(&mut self, day: i64) -> Option<&mut Day> {
        if self.daily.len() >= MAX_DAYS && !self.daily.contains_key(&day) {
            if self.daily.first_key_value().is_some_and(|(&first, _)| day < first) {
                return None;
            }
            self.daily.pop_first();
        }
        Some(self.daily.entry(day).or_default())
    }

    /// The groups an installation with these facts counts in.
    fn groups(&mut self, f: &Facts, include_ci: bool) -> Vec<&mut Group> {
        let mut out = Vec::with_capacity(6);
        if f.ci {
            out.push(&mut self.ci);
            if !include_ci {
                return out;
            }
        }
        out.push(&mut self.total);
        out.push(self.by_os.entry((f.os.clone(), f.os_version.clone())).or_default());
        out.push(self.by_version.entry(f.version.clone()).or_default());
        out.push(self.by_arch.entry(f.arch.clone()).or_default());
        out.push(self.by_container.entry(f.container.clone()).or_default());
        out
    }
}

/// Rows of one breakdown, most installations first: at most [`MAX_ROWS`] by key, then (`None`)
/// one row summing the rest.
fn bounded<K: Ord>(groups: BTreeMap<K, Group>) -> Vec<(Option<K>, Funnel)> {
    let mut rows: Vec<(K, Group)> = groups.into_iter().collect();
    rows.sort_by_key(|(_, g)| std::cmp::Reverse(g.started));
    let rest = rows.split_off(rows.len().min(MAX_ROWS));
    let mut out: Vec<(Option<K>, Funnel)> = rows.into_iter().map(|(k, g)| (Some(k), g.funnel())).collect();
    if !rest.is_empty() {
        let mut total = Group::default();
        for (_, g) in rest {
            total.merge(g);
        }
        out.push((None, total.funnel()));
    }
    out
}

/// The installations of a report: first seen in the window (?1, ?2), of the listed products (?3,
/// a JSON array).
const IN_WINDOW: &str = "first_at >= ?1 AND first_at < ?2 AND product IN (SELECT value FROM json_each(?3))";

/// Columns of the report cube, in the order of the `installations_cube` index.
const FACTS: &str = "product, ci, os, os_version, product_version, arch, container";

/// Runs the report.
///
/// Installations are read from the `installations` table (one row per installation ID, kept up to
/// date at ingest): SQL groups them into a small cube of (product, CI, OS, version, architecture,
/// container, day, status) counts in the order of a covering index, so without sorting, and
/// streams the durations of succeeded installations from the same index for the percentiles.
/// Failing steps, their messages, support requests and active instances come from partial
/// indexes.
///
/// Whatever is stored, the report stays small: [`MAX_PRODUCTS`] products (chosen first, in SQL,
/// so the others are never loaded), [`MAX_ROWS`] rows per breakdown and [`MAX_DAYS`] days.
pub fn run(conn: &Connection, q: &Query) -> Result<Report, StoreError> {
    let (since, until) = q.bounds();
    let listed = listed_products(conn, q)?;
    let scope = serde_json::Value::from(listed.clone()).to_string();
    let running_since = q.now_ms.saturating_sub(q.running_ms);
    let mut accs: BTreeMap<String, Acc> = BTreeMap::new();

    // The last column counts the installations of a cell that started within the running window:
    // of an abandoned cell, those are still running.
    let mut cube = conn.prepare(&format!(
        "SELECT {FACTS}, start_day, status, outcome_day, COUNT(*), SUM(first_at >= ?4)
         FROM installations INDEXED BY installations_cube
         WHERE {IN_WINDOW}
         GROUP BY {FACTS}, start_day, status, outcome_day"
    ))?;
    let mut rows = cube.query(params![since, until, scope, running_since])?;
    while let Some(r) = rows.next()? {
        let facts = Facts::read(r)?;
        let (start_day, status, outcome_day): (i64, Status, Option<i64>) = (r.get(7)?, r.get(8)?, r.get(9)?);
        let (n, recent): (u64, u64) = (r.get(10)?, r.get(11)?);
        let acc = accs.entry(facts.product.clone()).or_default();
        let parts = match status {
            Status::Abandoned => vec![
                (Outcome::Abandoned, n.saturating_sub(recent)),
                (Outcome::Running, recent.min(n)),
            ],
            other => vec![(Outcome::from(other), n)],
        };
        for group in acc.groups(&facts, q.include_ci) {
            for (outcome, n) in &parts {
                group.add(*outcome, *n);
            }
        }
        if facts.ci && !q.include_ci {
            continue;
        }
        if let Some(day) = acc.day(start_day) {
            day.started += n;
        }
        if let Some(day) = outcome_day.and_then(|d| acc.day(d)) {
            match status {
                Status::Succeeded => day.succeeded += n,
                Status::Failed => day.failed += n,
                Status::Abandoned => {}
            }
        }
    }

    let mut durations = conn.prepare(&format!(
        "SELECT {FACTS}, duration FROM installations INDEXED BY installations_cube
         WHERE {IN_WINDOW} AND status = '{}' AND duration IS NOT NULL",
        Status::Succeeded.as_sql()
    ))?;
    // Rows come in index order, so runs of rows share their facts: collect each run's durations
    // and hand them to their groups once per run, not once per row.
    let mut runs: Vec<(Facts, Vec<i64>)> = Vec::new();
    let mut rows = durations.query(params![since, until, scope])?;
    while let Some(r) = rows.next()? {
        let duration: i64 = r.get(7)?;
        match runs.last_mut() {
            Some((facts, run)) if facts.matches(r)? => run.push(duration),
            _ => runs.push((Facts::read(r)?, vec![duration])),
        }
    }
    for (facts, run) in runs {
        let acc = accs.entry(facts.product.clone()).or_default();
        for group in acc.groups(&facts, q.include_ci) {
            group.durations.extend_from_slice(&run);
        }
    }

    let mut products: BTreeMap<String, ProductReport> = BTreeMap::new();
    for (product, acc) in accs {
        let by_os = bounded(acc.by_os)
            .into_iter()
            .map(|(key, funnel)| {
                let (os, os_version) = key.unwrap_or_else(|| (OTHER.into(), String::new()));
                OsRow { os, os_version, funnel }
            })
            .collect();
        let daily = acc
            .daily
            .into_iter()
            .map(|(day, d)| Day {
                date: clock::date(day),
                ..d
            })
            .collect();
        products.insert(
            product.clone(),
            ProductReport {
                product,
                installations: acc.total.funnel(),
                ci: acc.ci.funnel(),
                by_os,
                by_version: rows_of(acc.by_version),
                by_arch: rows_of(acc.by_arch),
                by_container: rows_of(acc.by_container),
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
        since: q.window.label.clone(),
        ci_included: q.include_ci,
        products,
        other_products: if listed.len() < MAX_PRODUCTS {
            None
        } else {
            other_products(conn, q, &scope)?
        },
        forwarding: crate::relay::queue::status(conn)?,
    })
}

fn rows_of(groups: BTreeMap<String, Group>) -> Vec<Row> {
    bounded(groups)
        .into_iter()
        .map(|(key, funnel)| Row {
            value: key.unwrap_or_else(|| OTHER.into()),
            funnel,
        })
        .collect()
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
        all.extend(distinct_products(conn, from, filter, MAX_PRODUCTS + 1)?);
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
            SELECT product, COUNT(*) AS n FROM installations WHERE first_at >= ?1 AND first_at < ?2 GROUP BY product
            UNION ALL
            SELECT product, 0 FROM instances WHERE last_active_at >= ?3 GROUP BY product
            UNION ALL
            SELECT COALESCE(product, '{NO_PRODUCT}'), 0 FROM events INDEXED BY support_requests
            WHERE event = '{SUPPORT}' AND ts_ms >= ?1 AND ts_ms < ?2 GROUP BY 1)
         GROUP BY product ORDER BY SUM(n) DESC, product LIMIT ?4"))?;
    let limit = i64::try_from(MAX_PRODUCTS).unwrap_or(i64::MAX);
    let (since, until) = q.bounds();
    let rows = stmt.query_map(params![since, until, q.active_cutoff_ms(), limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to `limit` distinct non-null `product`s of `from` where `filter` holds, by seeking from one
/// to the next along an index that starts with `product`.
fn distinct_products(conn: &Connection, from: &str, filter: &str, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "WITH RECURSIVE p(v) AS (
            SELECT (SELECT MIN(product) FROM {from} WHERE {filter})
            UNION ALL
            SELECT (SELECT MIN(product) FROM {from} WHERE {filter} AND product > p.v) FROM p WHERE p.v IS NOT NULL)
         SELECT v FROM p WHERE v IS NOT NULL LIMIT ?1"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map([limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The installations of the products past [`MAX_PRODUCTS`], summed; `None` if there are none.
fn other_products(conn: &Connection, q: &Query, scope: &str) -> Result<Option<OtherProducts>, StoreError> {
    let (since, until) = q.bounds();
    let filter = "first_at >= ?1 AND first_at < ?2 AND (?3 IS NULL OR product = ?3)
                  AND product NOT IN (SELECT value FROM json_each(?4))";
    let args = params![since, until, q.product, scope];
    let products: u64 = conn.query_row(
        &format!("SELECT COUNT(DISTINCT product) FROM installations WHERE {filter}"),
        args,
        |r| r.get(0),
    )?;
    if products == 0 {
        return Ok(None);
    }
    let mut group = Group::default();
    let mut stmt = conn.prepare(&format!(
        "SELECT status, COUNT(*) FROM installations WHERE {filter} GROUP BY status"
    ))?;
    let mut rows = stmt.query(args)?;
    while let Some(r) = rows.next()? {
        group.add(Outcome::from(r.get::<_, Status>(0)?), r.get(1)?);
    }
    Ok(Some(OtherProducts {
        products,
        installations: group.funnel(),
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

/// The daily counts retention kept (`error_days`, `support_days`) of the window (?1, ?2) and the
/// listed products (?3).
const RETAINED: &str = "day * 86400000 >= ?1 AND day * 86400000 < ?2 AND product IN (SELECT value FROM json_each(?3))";

/// The event filter of a report: its name, the time window (?1, ?2) and the listed products (?3).
fn event_filter(name: &str) -> String {
    format!(
        "event = '{name}' AND ts_ms >= ?1 AND ts_ms < ?2
         AND COALESCE(product, '{NO_PRODUCT}') IN (SELECT value FROM json_each(?3))"
    )
}

fn failing_steps(conn: &Connection, q: &Query, scope: &str) -> Result<Vec<(String, FailingStep)>, StoreError> {
    let filter = event_filter(names::ERROR);
    let mut stmt = conn.prepare(&format!(
        "SELECT product, step, exit_code, count, installations FROM (
            SELECT product, step, exit_code, SUM(n) AS count, SUM(i) AS installations,
                   ROW_NUMBER() OVER (PARTITION BY product ORDER BY SUM(n) DESC, step, exit_code) AS rank
            FROM (
                SELECT COALESCE(product, '{NO_PRODUCT}') AS product, COALESCE(step, 'unknown') AS step,
                       exit_code, COUNT(*) AS n, COUNT(DISTINCT installation_id) AS i
                FROM events INDEXED BY errors_by_step WHERE {filter} GROUP BY 1, 2, 3
                UNION ALL
                SELECT product, step, exit_code, SUM(events), SUM(installations)
                FROM error_days WHERE {RETAINED} GROUP BY 1, 2, 3)
            GROUP BY product, step, exit_code)
         WHERE rank <= ?4 ORDER BY product, rank"
    ))?;
    let (since, until) = q.bounds();
    let rows = stmt.query_map(params![since, until, scope, TOP_FAILING_STEPS], |r| {
        Ok((
            r.get(0)?,
            FailingStep {
                step: r.get(1)?,
                exit_code: r.get(2)?,
                count: r.get(3)?,
                installations: r.get(4)?,
                messages: Vec::new(),
            },
        ))
    })?;
    let mut steps: Vec<(String, FailingStep)> = rows.collect::<Result<_, _>>()?;

    let mut stmt = conn.prepare(&format!(
        "SELECT product, step, exit_code, message, count FROM (
            SELECT product, step, exit_code, message, SUM(n) AS count,
                   ROW_NUMBER() OVER (PARTITION BY product, step, exit_code ORDER BY SUM(n) DESC, message) AS rank
            FROM (
                SELECT COALESCE(product, '{NO_PRODUCT}') AS product, COALESCE(step, 'unknown') AS step,
                       exit_code, COALESCE(message, '') AS message, COUNT(*) AS n
                FROM events INDEXED BY errors_by_message WHERE {filter} GROUP BY 1, 2, 3, 4
                UNION ALL
                SELECT product, step, exit_code, message, SUM(events)
                FROM error_days WHERE {RETAINED} GROUP BY 1, 2, 3, 4)
            GROUP BY product, step, exit_code, message)
         WHERE rank <= ?4"
    ))?;
    let mut rows = stmt.query(params![since, until, scope, TOP_MESSAGES])?;
    while let Some(r) = rows.next()? {
        let (product, step, exit_code): (String, String, Option<i64>) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if let Some((_, s)) = steps
            .iter_mut()
            .find(|(p, s)| *p == product && s.step == step && s.exit_code == exit_code)
        {
            s.messages.push(Message {
                message: r.get(3)?,
                count: r.get(4)?,
            });
        }
    }
    for (_, s) in &mut steps {
        s.messages
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.message.cmp(&b.message)));
    }
    Ok(steps)
}

fn support(conn: &Connection, q: &Query, scope: &str) -> Result<Vec<(String, Support)>, StoreError> {
    let filter = event_filter(names::SUPPORT);
    let (since, until) = q.bounds();
    let mut stmt = conn.prepare(&format!(
        "SELECT product, SUM(n) FROM (
            SELECT COALESCE(product, '{NO_PRODUCT}') AS product, COUNT(*) AS n
            FROM events INDEXED BY support_requests WHERE {filter} GROUP BY 1
            UNION ALL
            SELECT product, SUM(requests) FROM support_days WHERE {RETAINED} GROUP BY 1)
         GROUP BY product ORDER BY product"
    ))?;
    let mut out: Vec<(String, Support)> = stmt
        .query_map(params![since, until, scope], |r| {
            Ok((
                r.get(0)?,
                Support {
                    count: r.get(1)?,
                    emails: q.show_emails.then(Vec::new),
                    requests: Vec::new(),
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT product, ts_ms, product_version, step, installation_id, email FROM (
            SELECT COALESCE(product, '{NO_PRODUCT}') AS product, ts_ms, product_version, step, installation_id, email,
                   ROW_NUMBER() OVER (PARTITION BY COALESCE(product, '{NO_PRODUCT}') ORDER BY ts_ms DESC, id DESC) AS rank
            FROM events INDEXED BY support_requests WHERE {filter})
         WHERE rank <= ?4 ORDER BY product, rank"
    ))?;
    let mut rows = stmt.query(params![since, until, scope, LATEST_SUPPORT_REQUESTS])?;
    while let Some(r) = rows.next()? {
        let product: String = r.get(0)?;
        let email: Option<String> = r.get(5)?;
        let request = SupportRequest {
            time: clock::iso_seconds(r.get(1)?),
            product_version: r.get(2)?,
            step: r.get(3)?,
            installation_id: r.get(4)?,
            email: email.filter(|_| q.show_emails),
        };
        if let Some((_, s)) = out.iter_mut().find(|(p, _)| *p == product) {
            s.requests.push(request);
        }
    }
    if q.show_emails {
        let mut stmt = conn.prepare(&format!(
            "SELECT DISTINCT COALESCE(product, '{NO_PRODUCT}'), email
             FROM events INDEXED BY support_requests WHERE {filter} AND email IS NOT NULL ORDER BY 1, 2"
        ))?;
        let rows = stmt.query_map(params![since, until, scope], |r| {
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

fn active(conn: &Connection, q: &Query, scope: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT product, COUNT(*) FROM instances
         WHERE last_active_at >= ?1 AND product IN (SELECT value FROM json_each(?2))
         GROUP BY product ORDER BY product",
    )?;
    let rows = stmt.query_map(params![q.active_cutoff_ms(), scope], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Products offered by the page's picker, at most.
pub const MAX_PICKER: usize = 100;

/// The first [`MAX_PICKER`] products with installations, by name (for the page's picker).
pub fn product_names(conn: &Connection) -> Result<Vec<String>, StoreError> {
    distinct_products(conn, "installations", "1", MAX_PICKER)
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
