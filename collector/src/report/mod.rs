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
use crate::store::tally::{Histogram, os_and_version};
use crate::store::{Counts, DayCount, Dim, Facts, Periods, Scope, Status, Store, StoreError, TallyKey};
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

    /// Whether installations with these flags count in the funnel (not CI or agent runs left out).
    fn counts(&self, ci: bool, agent: bool) -> bool {
        (self.include_ci || !ci) && (self.include_agents || !agent)
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
    durations: Histogram,
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
        self.durations.merge(&other.durations);
    }

    fn add(&mut self, status: Status, n: u64) {
        self.started += n;
        match status {
            Status::Succeeded => self.succeeded += n,
            Status::Failed => self.failed += n,
            Status::Abandoned => self.abandoned += n,
        }
    }

    /// Adds installations of one status: their outcomes, their attempts (those before the
    /// latest, and the latest by their status), the recovered ones and their durations.
    fn add_counts(&mut self, status: Status, c: &Counts) {
        let n = count(c.installations);
        self.add(status, n);
        self.attempts.started += count(c.attempts);
        self.attempts.succeeded += count(c.earlier_succeeded);
        self.attempts.failed += count(c.earlier_failed);
        match status {
            Status::Succeeded => {
                self.attempts.succeeded += n;
                self.recovered += count(c.had_failed);
            }
            Status::Failed => self.attempts.failed += n,
            Status::Abandoned => {}
        }
        self.durations.merge(&c.durations);
    }

    /// Counts `n` abandoned installations as running: they started within the running window.
    fn still_running(&mut self, n: u64) {
        let n = n.min(self.abandoned);
        self.abandoned -= n;
        self.running += n;
    }

    fn funnel(self) -> Funnel {
        Funnel {
            started: self.started,
            succeeded: self.succeeded,
            failed: self.failed,
            abandoned: self.abandoned,
            running: self.running,
            recovered: self.recovered,
            success_rate: rate(self.succeeded, self.started - self.running),
            median_duration_ms: self.durations.percentile(50),
            p90_duration_ms: self.durations.percentile(90),
        }
    }
}

/// A stored count as a `u64` (a negative one, which the aggregates never hold, as 0).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Everything gathered for one product before it becomes a [`ProductReport`].
#[derive(Debug, Default)]
struct Acc {
    total: Group,
    ci: Group,
    agents: Group,
    by_os: BTreeMap<String, Group>,
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

    /// The groups installations of breakdown `dim` with `value` count in, CI and agent runs
    /// apart: of [`Dim::Total`], the CI, agent and (if counted) total groups; of the others,
    /// their breakdown's row (if counted).
    fn groups(&mut self, dim: Dim, value: &str, ci: bool, agent: bool, q: &Query) -> Vec<&mut Group> {
        let counted = q.counts(ci, agent);
        let by = match dim {
            Dim::Total | Dim::Outcome => {
                let mut out = Vec::with_capacity(3);
                if ci {
                    out.push(&mut self.ci);
                }
                if agent {
                    out.push(&mut self.agents);
                }
                if counted && dim == Dim::Total {
                    out.push(&mut self.total);
                }
                return out;
            }
            Dim::Os => &mut self.by_os,
            Dim::Version => &mut self.by_version,
            Dim::Arch => &mut self.by_arch,
            Dim::Container => &mut self.by_container,
            Dim::Method => &mut self.by_install_method,
        };
        if !counted {
            return Vec::new();
        }
        // Looked up before inserting: most rows are already there.
        if !by.contains_key(value) {
            by.insert(value.to_string(), Group::default());
        }
        by.get_mut(value).into_iter().collect()
    }

    /// Adds one aggregate row (or what a window's partial day contributes to one).
    fn add(&mut self, key: &TallyKey, c: &Counts, q: &Query, today: i64) {
        if key.dim == Dim::Outcome {
            if let Ok(day) = key.value.parse() {
                self.add_outcome_day(day, key.status, key.ci, key.agent, c, q, today);
            }
            return;
        }
        for group in self.groups(key.dim, &key.value, key.ci, key.agent, q) {
            group.add_counts(key.status, c);
        }
    }

    /// Adds installations first seen on `day` to the per-day series.
    fn add_start_day(&mut self, day: i64, ci: bool, agent: bool, n: u64, q: &Query, today: i64) {
        if let Some(d) = q.counts(ci, agent).then(|| self.day(day.min(today))).flatten() {
            d.started += n;
        }
    }

    /// Adds installations whose outcome came on `day` to the per-day series.
    #[allow(clippy::too_many_arguments)]
    fn add_outcome_day(&mut self, day: i64, status: Status, ci: bool, agent: bool, c: &Counts, q: &Query, today: i64) {
        let Some(d) = q.counts(ci, agent).then(|| self.day(day.min(today))).flatten() else {
            return;
        };
        match status {
            Status::Succeeded => d.succeeded += count(c.installations),
            Status::Failed => d.failed += count(c.installations),
            Status::Abandoned => {}
        }
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
/// Whole UTC days of the window come from the aggregates the store keeps at ingest (see
/// `store/tally.rs`): a few hundred rows per product whatever the number of events. The part of a
/// day the window starts or ends in comes from the installations (and events) of that part;
/// installations still running come from those first seen within the running window. This adds
/// them up into funnels, breakdowns and the per-day series, and attaches failing steps, support
/// requests and active instances per product.
///
/// Whatever is stored, the report stays small: [`MAX_PRODUCTS`] products (chosen first, so the
/// others are never loaded), [`MAX_ROWS`] rows per breakdown and [`MAX_DAYS`] days.
pub fn run(store: &dyn Store, q: &Query) -> Result<Report, StoreError> {
    let (since_ms, until_ms) = q.bounds();
    gather(store, q, &Split::of(since_ms, until_ms))
}

/// [`run`] with the window split as given.
fn gather(store: &dyn Store, q: &Query, split: &Split) -> Result<Report, StoreError> {
    let (since_ms, until_ms) = q.bounds();
    let listed = listed_products(store, q)?;
    let mut accs: BTreeMap<String, Acc> = BTreeMap::new();
    // Events may be dated up to a day ahead (clock skew): the series shows them today, never a
    // day to come.
    let today = q.now_ms.div_euclid(clock::DAY_MS);

    let periods = Periods::of(split.days.0, split.days.1);
    let ranges = [
        (0, periods.head.0, periods.head.1),
        (1, periods.blocks.0, periods.blocks.1),
        (0, periods.tail.0, periods.tail.1),
    ];
    for (key, counts) in store.tallies(&listed, &Dim::BREAKDOWNS, &ranges, true)? {
        let acc = accs.entry(key.product.clone()).or_default();
        acc.add(&key, &counts, q, today);
    }
    // The per-day series: the latest days only (no event is dated more than a day ahead).
    let last_day = split.days.1.min(today + 2);
    let first_day = last_day.saturating_sub(MAX_DAYS as i64 + 1).max(split.days.0);
    let days = [(0, first_day, last_day)];
    for (key, counts) in store.tallies(&listed, &[Dim::Total, Dim::Outcome], &days, false)? {
        let acc = accs.entry(key.product.clone()).or_default();
        match key.dim {
            Dim::Outcome => acc.add(&key, &counts, q, today),
            _ => acc.add_start_day(key.period, key.ci, key.agent, count(counts.installations), q, today),
        }
    }
    for &(since_ms, until_ms) in &split.partial {
        let scope = Scope {
            since_ms,
            until_ms,
            products: &listed,
        };
        add_installations(store, &scope, &mut accs, q, today)?;
    }
    // Of the abandoned ones, those first seen within the running window are still running.
    let running = Scope {
        since_ms: since_ms.max(q.now_ms.saturating_sub(q.running_ms)),
        until_ms,
        products: &listed,
    };
    if running.since_ms < running.until_ms {
        for cell in store.outcome_cells(&running)? {
            if cell.status != Status::Abandoned {
                continue;
            }
            let acc = accs.entry(cell.facts.product.clone()).or_default();
            for (dim, value) in breakdowns(&cell.facts) {
                for group in acc.groups(dim, &value, cell.facts.ci, !cell.facts.agent.is_empty(), q) {
                    group.still_running(cell.installations);
                }
            }
        }
    }

    let mut products: BTreeMap<String, ProductReport> = BTreeMap::new();
    for (product, acc) in accs {
        let by_os = bounded(acc.by_os)
            .into_iter()
            .map(|(key, funnel)| {
                let (os, os_version) = key.map_or_else(|| (OTHER.into(), String::new()), |k| os_and_version(&k));
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
    for (product, step) in failing_steps(store, split, &listed)? {
        entry(&mut products, product).failing_steps.push(step);
    }
    for (product, support) in support(store, q, split, &listed)? {
        entry(&mut products, product).support = support;
    }
    for (product, n) in day_counts(store, DayCount::Unavailable, split, &listed)? {
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

/// A window as the store keeps it: whole UTC days `[days.0, days.1)` (aggregates) and the parts
/// of days around them, in ms (installations and events).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Split {
    days: (i64, i64),
    partial: Vec<(i64, i64)>,
}

impl Split {
    fn of(since_ms: i64, until_ms: i64) -> Split {
        // Far enough to cover any stored time, near enough that day numbers stay small.
        const FAR: i64 = 1 << 40;
        let day = |ms: i64| ms.div_euclid(clock::DAY_MS);
        let whole = |ms: i64| ms.rem_euclid(clock::DAY_MS) == 0;
        let (from_day, head) = match since_ms {
            i64::MIN => (-FAR, None),
            ms if whole(ms) => (day(ms), None),
            ms => (day(ms) + 1, Some((ms, (day(ms) + 1) * clock::DAY_MS))),
        };
        let (until_day, tail) = match until_ms {
            i64::MAX => (FAR, None),
            ms if whole(ms) => (day(ms), None),
            ms => (day(ms), Some((day(ms) * clock::DAY_MS, ms))),
        };
        if from_day >= until_day && (head.is_some() || tail.is_some()) {
            // Within one day: all of it from the installations.
            return Split {
                days: (0, 0),
                partial: vec![(since_ms, until_ms)],
            };
        }
        Split {
            days: (from_day, until_day.max(from_day)),
            partial: head.into_iter().chain(tail).collect(),
        }
    }
}

/// The breakdowns installations with these facts count in, with their values.
fn breakdowns(f: &Facts) -> [(Dim, String); 6] {
    [
        (Dim::Total, String::new()),
        (Dim::Os, format!("{}\u{1f}{}", f.os, f.os_version)),
        (Dim::Version, f.version.clone()),
        (Dim::Arch, f.arch.clone()),
        (Dim::Container, f.container.clone()),
        (Dim::Method, f.install_method.clone()),
    ]
}

/// Adds the installations first seen in `scope` (part of a day), read one by one.
fn add_installations(
    store: &dyn Store,
    scope: &Scope<'_>,
    accs: &mut BTreeMap<String, Acc>,
    q: &Query,
    today: i64,
) -> Result<(), StoreError> {
    for cell in store.outcome_cells(scope)? {
        let acc = accs.entry(cell.facts.product.clone()).or_default();
        let (ci, agent) = (cell.facts.ci, !cell.facts.agent.is_empty());
        let counts = Counts {
            installations: cell.installations as i64,
            attempts: cell.attempts as i64,
            earlier_succeeded: cell.earlier_succeeded as i64,
            earlier_failed: cell.earlier_failed as i64,
            had_failed: cell.had_failed as i64,
            durations: Histogram::default(),
        };
        for (dim, value) in breakdowns(&cell.facts) {
            for group in acc.groups(dim, &value, ci, agent, q) {
                group.add_counts(cell.status, &counts);
            }
        }
        acc.add_start_day(cell.start_day, ci, agent, cell.installations, q, today);
        if let Some(day) = cell.outcome_day {
            acc.add_outcome_day(day, cell.status, ci, agent, &counts, q, today);
        }
    }
    for (facts, run) in store.success_durations(scope)? {
        let acc = accs.entry(facts.product.clone()).or_default();
        let mut durations = Histogram::default();
        for ms in run {
            durations.count(Histogram::bucket(ms), 1);
        }
        for (dim, value) in breakdowns(&facts) {
            for group in acc.groups(dim, &value, facts.ci, !facts.agent.is_empty(), q) {
                group.durations.merge(&durations);
            }
        }
    }
    Ok(())
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
        group.add(status, n);
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

/// Errors of the parts of days a window starts or ends in, read from the events.
const ALL_OF_A_PART: usize = 10_000;

fn failing_steps(
    store: &dyn Store,
    split: &Split,
    listed: &[String],
) -> Result<Vec<(String, FailingStep)>, StoreError> {
    type StepKey = (String, String, Option<i64>);
    let mut steps: BTreeMap<StepKey, (u64, u64)> = BTreeMap::new();
    let mut messages: BTreeMap<StepKey, BTreeMap<String, u64>> = BTreeMap::new();
    for (k, events, installations) in store.error_days(listed, split.days.0, split.days.1)? {
        let key = (k.product, k.step, k.exit_code);
        let s = steps.entry(key.clone()).or_default();
        s.0 += events;
        s.1 += installations;
        *messages.entry(key).or_default().entry(k.message).or_default() += events;
    }
    for &(since_ms, until_ms) in &split.partial {
        let scope = Scope {
            since_ms,
            until_ms,
            products: listed,
        };
        for r in store.failing_steps(&scope, ALL_OF_A_PART)? {
            let s = steps.entry((r.product, r.step, r.exit_code)).or_default();
            s.0 += r.events;
            s.1 += r.installations;
        }
        for m in store.error_messages(&scope, ALL_OF_A_PART)? {
            let key = (m.product, m.step, m.exit_code);
            *messages.entry(key).or_default().entry(m.message).or_default() += m.count;
        }
    }
    // Per product, the most frequent first (then by step and exit code).
    let mut ranked: Vec<(StepKey, (u64, u64))> = steps.into_iter().filter(|(_, (n, _))| *n > 0).collect();
    ranked.sort_by(|(a, x), (b, y)| {
        a.0.cmp(&b.0)
            .then(y.0.cmp(&x.0))
            .then_with(|| (&a.1, a.2).cmp(&(&b.1, b.2)))
    });
    let mut out: Vec<(String, FailingStep)> = Vec::new();
    for (key, (count, installations)) in ranked {
        if out.iter().filter(|(p, _)| *p == key.0).count() >= TOP_FAILING_STEPS {
            continue;
        }
        let mut top: Vec<Message> = messages
            .remove(&key)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(message, count)| Message { message, count })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.message.cmp(&b.message)));
        top.truncate(TOP_MESSAGES);
        let (product, step, exit_code) = key;
        let step = FailingStep {
            step,
            exit_code,
            count,
            installations,
            messages: top,
        };
        out.push((product, step));
    }
    Ok(out)
}

/// Support requests or unavailable beacons per product: whole days from the daily counts, the
/// parts of days from the events.
fn day_counts(
    store: &dyn Store,
    kind: DayCount,
    split: &Split,
    listed: &[String],
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for (product, n) in store.day_counts(kind, listed, split.days.0, split.days.1)? {
        *out.entry(product).or_default() += n;
    }
    for &(since_ms, until_ms) in &split.partial {
        let scope = Scope {
            since_ms,
            until_ms,
            products: listed,
        };
        let part = match kind {
            DayCount::Support => store.support_counts(&scope)?,
            DayCount::Unavailable => store.beacon_unavailable(&scope)?,
        };
        for (product, n) in part {
            *out.entry(product).or_default() += n;
        }
    }
    out.retain(|_, n| *n > 0);
    Ok(out)
}

fn support(
    store: &dyn Store,
    q: &Query,
    split: &Split,
    listed: &[String],
) -> Result<Vec<(String, Support)>, StoreError> {
    let mut out: Vec<(String, Support)> = day_counts(store, DayCount::Support, split, listed)?
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
    let (since_ms, until_ms) = q.bounds();
    let scope = Scope {
        since_ms,
        until_ms,
        products: listed,
    };
    for r in store.support_requests(&scope, LATEST_SUPPORT_REQUESTS)? {
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
        for (product, email) in store.support_emails(&scope)? {
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
pub(crate) mod tests {
    use super::*;
    use crate::event::names;
    use crate::window::Window;

    /// The report from the aggregates is the report from every installation and event (a store
    /// conformance check).
    pub(crate) fn aggregates_count_what_a_scan_counts(store: &dyn Store) {
        crate::store::seed::seed(store, 20_000, 90, 7).unwrap();
        let now_ms = clock::now_ms();
        let day = |n: i64| (now_ms.div_euclid(clock::DAY_MS) - n) * clock::DAY_MS;
        // Installations whose outcome comes the day after they started, on a window's edge.
        let mut overnight = Vec::new();
        for (id, at) in [("overnight-1", day(5)), ("overnight-2", day(5) - 1_800_000)] {
            for (n, name, ts) in [(0, names::STARTED, at - 30_000), (1, names::ERROR, at + 30_000)] {
                let props = serde_json::json!({"product": "acme-server", "step": "db"});
                overnight.push(crate::store::conformance::event(
                    &format!("{id}-{n}"),
                    id,
                    name,
                    &clock::iso(ts),
                    props,
                ));
            }
        }
        store.insert(&overnight, now_ms).unwrap();
        let windows = [
            (None, None),
            (Some(now_ms - 10 * clock::DAY_MS - 3_600_000), None),
            (Some(day(40)), Some(day(3))),
            (Some(day(70) + 1), Some(day(20) - 1)),
            (Some(now_ms - 3_600_000), None),
            (Some(day(5)), None),
            (Some(day(5) - 3_600_000), None),
            (Some(day(5) - 60_000), Some(day(4) + 60_000)),
        ];
        for (since_ms, until_ms) in windows {
            for (include_ci, show_emails) in [(false, false), (true, true)] {
                let q = Query {
                    window: Window {
                        since_ms,
                        until_ms,
                        label: None,
                    },
                    include_ci,
                    show_emails,
                    running_ms: RUNNING_WINDOW.as_millis() as i64,
                    now_ms,
                    ..Query::default()
                };
                let scan = Split {
                    days: (0, 0),
                    partial: vec![q.bounds()],
                };
                let json = |r: Report| serde_json::to_value(r).unwrap();
                let (aggregated, scanned) = (json(run(store, &q).unwrap()), json(gather(store, &q, &scan).unwrap()));
                assert!(aggregated["products"][0]["installations"]["started"].as_u64() > Some(0) || since_ms.is_some());
                assert_eq!(aggregated, scanned, "window {since_ms:?}..{until_ms:?}");
            }
        }
    }

    #[test]
    fn windows_split_into_whole_days_and_parts() {
        let d = clock::DAY_MS;
        assert_eq!(Split::of(i64::MIN, i64::MAX).partial, []);
        assert_eq!(
            Split::of(3 * d, 5 * d),
            Split {
                days: (3, 5),
                partial: vec![]
            }
        );
        assert_eq!(
            Split::of(3 * d + 7, 5 * d + 9),
            Split {
                days: (4, 5),
                partial: vec![(3 * d + 7, 4 * d), (5 * d, 5 * d + 9)]
            }
        );
        assert_eq!(Split::of(3 * d + 7, 3 * d + 9).partial, [(3 * d + 7, 3 * d + 9)]);
    }

    #[test]
    fn rates_round_to_four_decimals() {
        assert_eq!(rate(2, 3), 0.6667);
        assert_eq!(rate(0, 0), 0.0);
    }
}
