//! The installation report: counting over the typed rows the [`Store`] hands out.
//!
//! An installation is one installation ID (per product). It *started* if it sent any of
//! Started/Success/Error; it *failed* if its last Error is later than its last Success (or it has no
//! Success); it *succeeded* if it has a Success and did not fail; otherwise it is *running* while
//! it started within the running window, and *abandoned* after.

mod model;
pub mod public;

use std::collections::BTreeMap;

use crate::clock;
use crate::store::{Cell, Facts, Scope, Status, Store, StoreError};
use crate::window::Window;

pub use model::{
    Attempts, Day, FailingStep, Funnel, Message, OsRow, OtherProducts, ProductReport, Report, Row, Support,
    SupportRequest,
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
    /// Count agent installations in the funnel and success rates (they are always shown apart).
    pub include_agents: bool,
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

    /// Whether installations with these facts count in the funnel (not CI or agent runs left out).
    fn counts(&self, f: &Facts) -> bool {
        (self.include_ci || !f.ci) && (self.include_agents || f.agent.is_empty())
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

const TOP_FAILING_STEPS: usize = 10;
/// Products listed by name; the installations of the rest are summed in `other_products`.
pub const MAX_PRODUCTS: usize = 25;
/// Rows by OS, version, architecture and container per product; the rest are summed in one
/// [`OTHER`] row.
pub const MAX_ROWS: usize = 25;
/// Days in the per-day series: the most recent ones.
pub const MAX_DAYS: usize = 400;
/// The name of a row that sums the ones not listed.
pub const OTHER: &str = "(other)";
const TOP_MESSAGES: usize = 3;
const LATEST_SUPPORT_REQUESTS: usize = 50;

/// Outcome counts and durations of one group.
#[derive(Debug, Default)]
struct Group {
    started: u64,
    succeeded: u64,
    failed: u64,
    abandoned: u64,
    running: u64,
    recovered: u64,
    attempts: Attempts,
    durations: Vec<i64>,
}

impl Group {
    fn merge(&mut self, other: Group) {
        self.started += other.started;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.abandoned += other.abandoned;
        self.running += other.running;
        self.recovered += other.recovered;
        self.attempts.started += other.attempts.started;
        self.attempts.succeeded += other.attempts.succeeded;
        self.attempts.failed += other.attempts.failed;
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

    /// Adds a cell of the store's cube: its installations by outcome, their attempts (those
    /// before the latest, and the latest by the cell's status) and the recovered ones.
    fn add_cell(&mut self, cell: &Cell, parts: &[(Outcome, u64)]) {
        for (outcome, n) in parts {
            self.add(*outcome, *n);
        }
        self.attempts.started += cell.attempts;
        self.attempts.succeeded += cell.earlier_succeeded;
        self.attempts.failed += cell.earlier_failed;
        match cell.status {
            Status::Succeeded => {
                self.attempts.succeeded += cell.installations;
                self.recovered += cell.had_failed;
            }
            Status::Failed => self.attempts.failed += cell.installations,
            Status::Abandoned => {}
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
            recovered: self.recovered,
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

/// Everything gathered for one product before it becomes a [`ProductReport`].
#[derive(Debug, Default)]
struct Acc {
    total: Group,
    ci: Group,
    agents: Group,
    by_os: BTreeMap<(String, String), Group>,
    by_version: BTreeMap<String, Group>,
    by_arch: BTreeMap<String, Group>,
    by_container: BTreeMap<String, Group>,
    by_install_method: BTreeMap<String, Group>,
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
    fn groups(&mut self, f: &Facts, q: &Query) -> Vec<&mut Group> {
        let mut out = Vec::with_capacity(8);
        if f.ci {
            out.push(&mut self.ci);
        }
        if !f.agent.is_empty() {
            out.push(&mut self.agents);
        }
        if !q.counts(f) {
            return out;
        }
        out.push(&mut self.total);
        out.push(self.by_os.entry((f.os.clone(), f.os_version.clone())).or_default());
        out.push(self.by_version.entry(f.version.clone()).or_default());
        out.push(self.by_arch.entry(f.arch.clone()).or_default());
        out.push(self.by_container.entry(f.container.clone()).or_default());
        out.push(self.by_install_method.entry(f.install_method.clone()).or_default());
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

/// Runs the report.
///
/// The store hands out installations already counted into a small cube of (product, CI, OS,
/// version, architecture, container, day, status) cells, and the durations of succeeded
/// installations grouped by their facts; this adds them up into funnels, breakdowns and the
/// per-day series. Failing steps, their messages, support requests and active instances are
/// attached per product.
///
/// Whatever is stored, the report stays small: [`MAX_PRODUCTS`] products (chosen first, so the
/// others are never loaded), [`MAX_ROWS`] rows per breakdown and [`MAX_DAYS`] days.
pub fn run(store: &dyn Store, q: &Query) -> Result<Report, StoreError> {
    let (since_ms, until_ms) = q.bounds();
    let listed = listed_products(store, q)?;
    let scope = Scope {
        since_ms,
        until_ms,
        products: &listed,
    };
    let mut accs: BTreeMap<String, Acc> = BTreeMap::new();
    // Events may be dated up to a day ahead (clock skew): the series shows them today, never a
    // day to come.
    let today = q.now_ms.div_euclid(clock::DAY_MS);

    for cell in store.outcome_cells(&scope, q.now_ms.saturating_sub(q.running_ms))? {
        let (n, recent) = (cell.installations, cell.recent);
        let acc = accs.entry(cell.facts.product.clone()).or_default();
        // Of an abandoned cell, those that started within the running window are still running.
        let parts = match cell.status {
            Status::Abandoned => vec![
                (Outcome::Abandoned, n.saturating_sub(recent)),
                (Outcome::Running, recent.min(n)),
            ],
            other => vec![(Outcome::from(other), n)],
        };
        for group in acc.groups(&cell.facts, q) {
            group.add_cell(&cell, &parts);
        }
        if !q.counts(&cell.facts) {
            continue;
        }
        if let Some(day) = acc.day(cell.start_day.min(today)) {
            day.started += n;
        }
        if let Some(day) = cell.outcome_day.and_then(|d| acc.day(d.min(today))) {
            match cell.status {
                Status::Succeeded => day.succeeded += n,
                Status::Failed => day.failed += n,
                Status::Abandoned => {}
            }
        }
    }
    for (facts, run) in store.success_durations(&scope)? {
        let acc = accs.entry(facts.product.clone()).or_default();
        for group in acc.groups(&facts, q) {
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
        let attempts = acc.total.attempts.clone();
        products.insert(
            product.clone(),
            ProductReport {
                product,
                installations: acc.total.funnel(),
                attempts,
                ci: acc.ci.funnel(),
                agents: acc.agents.funnel(),
                by_os,
                by_version: rows_of(acc.by_version),
                by_arch: rows_of(acc.by_arch),
                by_container: rows_of(acc.by_container),
                by_install_method: rows_of(acc.by_install_method),
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
    for (product, step) in failing_steps(store, &scope)? {
        entry(&mut products, product).failing_steps.push(step);
    }
    for (product, support) in support(store, q, &scope)? {
        entry(&mut products, product).support = support;
    }
    for (product, n) in store.beacon_unavailable(&scope)? {
        entry(&mut products, product).beacon_unavailable = n;
    }
    for (product, active) in store.active_instances(&listed, q.active_cutoff_ms())? {
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
        agents_included: q.include_agents,
        products,
        other_products: if listed.len() < MAX_PRODUCTS {
            None
        } else {
            other_products(store, q, &listed)?
        },
        // Masked again for URLs a database stored before they were masked.
        forwarding: store
            .forwarding()?
            .into_iter()
            .map(|f| crate::store::Forwarding {
                url: crate::relay::masked(&f.url),
                ..f
            })
            .collect(),
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
fn listed_products(store: &dyn Store, q: &Query) -> Result<Vec<String>, StoreError> {
    if let Some(product) = &q.product {
        return Ok(vec![product.clone()]);
    }
    let all = store.reported_products(MAX_PRODUCTS + 1)?;
    if all.len() <= MAX_PRODUCTS {
        return Ok(all);
    }
    let (since, until) = q.bounds();
    store.busiest_products(since, until, q.active_cutoff_ms(), MAX_PRODUCTS)
}

/// The installations of the products past [`MAX_PRODUCTS`], summed; `None` if there are none.
fn other_products(store: &dyn Store, q: &Query, listed: &[String]) -> Result<Option<OtherProducts>, StoreError> {
    let (since, until) = q.bounds();
    let (products, statuses) = store.unlisted_installations(since, until, q.product.as_deref(), listed)?;
    if products == 0 {
        return Ok(None);
    }
    let mut group = Group::default();
    for (status, n) in statuses {
        group.add(Outcome::from(status), n);
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

fn failing_steps(store: &dyn Store, scope: &Scope<'_>) -> Result<Vec<(String, FailingStep)>, StoreError> {
    let mut steps: Vec<(String, FailingStep)> = store
        .failing_steps(scope, TOP_FAILING_STEPS)?
        .into_iter()
        .map(|r| {
            let step = FailingStep {
                step: r.step,
                exit_code: r.exit_code,
                count: r.events,
                installations: r.installations,
                messages: Vec::new(),
            };
            (r.product, step)
        })
        .collect();
    for m in store.error_messages(scope, TOP_MESSAGES)? {
        if let Some((_, s)) = steps
            .iter_mut()
            .find(|(p, s)| *p == m.product && s.step == m.step && s.exit_code == m.exit_code)
        {
            s.messages.push(Message {
                message: m.message,
                count: m.count,
            });
        }
    }
    for (_, s) in &mut steps {
        s.messages
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.message.cmp(&b.message)));
    }
    Ok(steps)
}

fn support(store: &dyn Store, q: &Query, scope: &Scope<'_>) -> Result<Vec<(String, Support)>, StoreError> {
    let mut out: Vec<(String, Support)> = store
        .support_counts(scope)?
        .into_iter()
        .map(|(product, count)| {
            let support = Support {
                count,
                emails: q.show_emails.then(Vec::new),
                requests: Vec::new(),
            };
            (product, support)
        })
        .collect();
    for r in store.support_requests(scope, LATEST_SUPPORT_REQUESTS)? {
        let request = SupportRequest {
            time: clock::iso_seconds(r.ts_ms),
            product_version: r.product_version,
            step: r.step,
            installation_id: r.installation_id,
            email: r.email.filter(|_| q.show_emails),
        };
        if let Some((_, s)) = out.iter_mut().find(|(p, _)| *p == r.product) {
            s.requests.push(request);
        }
    }
    if q.show_emails {
        for (product, email) in store.support_emails(scope)? {
            if let Some((_, s)) = out.iter_mut().find(|(p, _)| *p == product) {
                s.emails.get_or_insert_with(Vec::new).push(email);
            }
        }
    }
    Ok(out)
}

/// Products offered by the page's picker, at most.
pub const MAX_PICKER: usize = 100;

/// The first [`MAX_PICKER`] products with installations, by name (for the page's picker).
pub fn product_names(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    store.products(MAX_PICKER)
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
