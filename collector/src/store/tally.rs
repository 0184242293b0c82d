//! The report's aggregates, kept in the transaction that stores the events: what an installation
//! contributes to them, the changes one request makes ([`Tallies`]), the duration histograms,
//! and which stored periods a report window reads ([`Periods`]).
//!
//! An installation counts once per breakdown ([`Dim`]): in the row of its product, first day,
//! CI and agent flags, status and the breakdown's value (its OS, its version, ...), once for the
//! day (tier 0) and once for the 16-day block (tier 1) of that day. A report over a year reads
//! about 23 blocks and at most 30 days per row instead of every installation; the per-day series
//! reads the days. Errors, support requests and unavailable beacons are counted per day, active
//! instances per hour of their last activity.

use std::collections::BTreeMap;

use super::Status;
use super::fold::{Fold, Installation};
use crate::clock::DAY_MS;
use crate::event::names;

/// An hour in ms: instances are counted by the hour of their last activity.
pub const HOUR_MS: i64 = 3_600_000;

/// Days in a tier-1 block.
pub const BLOCK_DAYS: i64 = 16;

/// A breakdown of the report, as stored in `tallies.dim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// All installations (value empty).
    Total = 0,
    /// By OS and OS version (`os\u{1f}version`).
    Os = 1,
    /// By product version.
    Version = 2,
    /// By CPU architecture.
    Arch = 3,
    /// By container runtime.
    Container = 4,
    /// By install method.
    Method = 5,
    /// Outcomes by the day they came (the value; by first day, tier 0 only): the per-day series.
    Outcome = 6,
}

impl Dim {
    /// The breakdowns every installation counts in.
    pub const BREAKDOWNS: [Dim; 6] = [
        Dim::Total,
        Dim::Os,
        Dim::Version,
        Dim::Arch,
        Dim::Container,
        Dim::Method,
    ];

    /// The dimension stored as `n`.
    pub fn from_i64(n: i64) -> Option<Dim> {
        [Dim::Outcome]
            .into_iter()
            .chain(Dim::BREAKDOWNS)
            .find(|d| *d as i64 == n)
    }
}

/// What decides the `tallies` rows an installation counts in: all of it but its counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    product: String,
    day: i64,
    ci: bool,
    agent: bool,
    status: Status,
    /// The day of its outcome, when it succeeded or failed.
    outcome_day: Option<i64>,
    os: String,
    os_version: String,
    product_version: String,
    arch: String,
    container: String,
    install_method: String,
}

impl Shape {
    /// Its value in breakdown `dim` (not [`Dim::Outcome`], which is counted apart).
    fn value(&self, dim: Dim) -> String {
        match dim {
            Dim::Total | Dim::Outcome => String::new(),
            Dim::Os => format!("{}\u{1f}{}", self.os, self.os_version),
            Dim::Version => self.product_version.clone(),
            Dim::Arch => self.arch.clone(),
            Dim::Container => self.container.clone(),
            Dim::Method => self.install_method.clone(),
        }
    }
}

/// Splits an OS row's value into OS and version.
pub fn os_and_version(value: &str) -> (String, String) {
    let (os, version) = value.split_once('\u{1f}').unwrap_or((value, ""));
    (os.to_string(), version.to_string())
}

impl Status {
    /// The value of `tallies.status`.
    pub fn as_i64(self) -> i64 {
        match self {
            Status::Abandoned => 0,
            Status::Succeeded => 1,
            Status::Failed => 2,
        }
    }

    /// The status stored as `n`.
    pub fn from_i64(n: i64) -> Option<Status> {
        [Status::Abandoned, Status::Succeeded, Status::Failed]
            .into_iter()
            .find(|s| s.as_i64() == n)
    }
}

/// One row of `tallies`: its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TallyKey {
    pub product: String,
    pub dim: Dim,
    /// 0: `period` is a day; 1: a block of [`BLOCK_DAYS`] days (day / 16).
    pub tier: i64,
    pub period: i64,
    pub ci: bool,
    pub agent: bool,
    pub value: String,
    pub status: Status,
}

/// The counts of a `tallies` row (or the change to them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub installations: i64,
    /// Their attempts (the latest attempt numbers, summed).
    pub attempts: i64,
    pub earlier_succeeded: i64,
    pub earlier_failed: i64,
    /// How many had a failed attempt before their latest.
    pub had_failed: i64,
    /// Durations of the succeeded ones: histogram bucket → count.
    pub durations: Histogram,
}

impl Counts {
    fn add(&mut self, other: &Counts, sign: i64) {
        self.installations += sign * other.installations;
        self.attempts += sign * other.attempts;
        self.earlier_succeeded += sign * other.earlier_succeeded;
        self.earlier_failed += sign * other.earlier_failed;
        self.had_failed += sign * other.had_failed;
        self.durations.add(&other.durations, sign);
    }

    fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// Durations kept to two significant digits: bucket → count, sorted by bucket. Bucket `b` holds
/// the durations that round down to [`Histogram::value`]`(b)`, so 42,000 ms and 5,000 ms are
/// kept exactly and 1,234 ms as 1,200.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram(pub Vec<(i64, i64)>);

impl Histogram {
    /// The bucket of a duration (ms; negative ones count as 0).
    pub fn bucket(ms: i64) -> i64 {
        let (mut mantissa, mut exponent) = (ms.max(0), 0);
        while mantissa >= 100 {
            mantissa /= 10;
            exponent += 1;
        }
        exponent * 100 + mantissa
    }

    /// The smallest duration of a bucket.
    pub fn value(bucket: i64) -> i64 {
        let exponent = u32::try_from(bucket.div_euclid(100)).unwrap_or(0).min(16);
        bucket.rem_euclid(100) * 10_i64.pow(exponent)
    }

    /// Counts `n` more durations in `bucket`.
    pub fn count(&mut self, bucket: i64, n: i64) {
        match self.0.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => {
                self.0[i].1 += n;
                if self.0[i].1 == 0 {
                    self.0.remove(i);
                }
            }
            Err(i) if n != 0 => self.0.insert(i, (bucket, n)),
            Err(_) => {}
        }
    }

    /// Adds `other`.
    pub fn merge(&mut self, other: &Histogram) {
        self.add(other, 1);
    }

    fn add(&mut self, other: &Histogram, sign: i64) {
        if other.0.is_empty() {
            return;
        }
        // Both are sorted by bucket: one pass over the two.
        let (mine, theirs) = (std::mem::take(&mut self.0), &other.0);
        let mut merged = Vec::with_capacity(mine.len() + theirs.len());
        let (mut i, mut j) = (0, 0);
        while i < mine.len() || j < theirs.len() {
            let next = match (mine.get(i), theirs.get(j)) {
                (Some(&(bucket, n)), Some(&(b, m))) if bucket == b => {
                    (i, j) = (i + 1, j + 1);
                    (bucket, n + sign * m)
                }
                (Some(&a), Some(&(b, _))) if a.0 < b => {
                    i += 1;
                    a
                }
                (_, Some(&(bucket, n))) => {
                    j += 1;
                    (bucket, sign * n)
                }
                (Some(&a), None) => {
                    i += 1;
                    a
                }
                (None, None) => break,
            };
            if next.1 != 0 {
                merged.push(next);
            }
        }
        self.0 = merged;
    }

    /// The `pct`-th percentile by the nearest-rank method, as its bucket's value.
    pub fn percentile(&self, pct: u64) -> Option<i64> {
        let total: i64 = self.0.iter().map(|(_, n)| (*n).max(0)).sum();
        let total = u64::try_from(total).ok().filter(|t| *t > 0)?;
        let rank = (total * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (bucket, n) in &self.0 {
            seen += u64::try_from(*n).unwrap_or(0);
            if seen >= rank {
                return Some(Histogram::value(*bucket));
            }
        }
        None
    }

    /// As stored: per bucket, its distance from the previous one and its count, as LEB128
    /// varints (2–4 bytes a bucket); empty for none.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 3);
        let mut previous = 0;
        for (bucket, n) in &self.0 {
            varint(&mut out, u64::try_from(bucket - previous).unwrap_or(0));
            varint(&mut out, u64::try_from(*n).unwrap_or(0));
            previous = *bucket;
        }
        out
    }

    /// Reads [`Histogram::to_bytes`]; a torn tail is ignored.
    pub fn from_bytes(mut bytes: &[u8]) -> Histogram {
        let mut buckets = Vec::new();
        let mut bucket = 0_i64;
        while let (Some(gap), Some(n)) = (read_varint(&mut bytes), read_varint(&mut bytes)) {
            let (Ok(gap), Ok(n)) = (i64::try_from(gap), i64::try_from(n)) else {
                break;
            };
            bucket = bucket.saturating_add(gap);
            buckets.push((bucket, n));
        }
        Histogram(buckets)
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut n = 0_u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(n);
        }
    }
    None
}

/// One row of `error_days`: errors of one product, day, step, exit code and message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorKey {
    pub product: String,
    pub day: i64,
    pub step: String,
    pub exit_code: Option<i64>,
    pub message: String,
}

/// What `day_counts` counts per product and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DayCount {
    /// Support requests.
    Support = 0,
    /// Beacon Unavailable events.
    Unavailable = 1,
}

/// The changes one transaction makes to the aggregates. Ordered maps: they are written in key
/// order (so that concurrent writers lock rows in the same order), and a few comparisons of short
/// keys cost less than hashing them.
#[derive(Debug, Default)]
pub struct Tallies {
    /// Installations by what decides their rows: they count in the same rows, once per shape
    /// instead of once per installation.
    shapes: BTreeMap<Shape, Counts>,
    /// Error events and the installations first failing there.
    pub errors: BTreeMap<ErrorKey, (i64, i64)>,
    pub days: BTreeMap<(DayCount, String, i64), i64>,
    /// Instances by product and the hour of their last activity.
    pub active: BTreeMap<(String, i64), i64>,
}

impl Tallies {
    /// Counts the change of an installation from `old` to `new` (`None`: not there).
    pub fn installation(&mut self, old: Option<&Installation>, new: Option<&Installation>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.contribute(old, -1);
        }
        if let Some(new) = new {
            self.contribute(new, 1);
        }
    }

    fn contribute(&mut self, i: &Installation, sign: i64) {
        let status = i.status();
        let mut counts = Counts {
            installations: 1,
            attempts: i.attempt,
            earlier_succeeded: i.earlier_succeeded,
            earlier_failed: i.earlier_failed,
            had_failed: i64::from(i.earlier_failed > 0),
            durations: Histogram::default(),
        };
        if let Some(d) = i.duration() {
            counts.durations.count(Histogram::bucket(d), 1);
        }
        let shape = Shape {
            product: i.product.clone(),
            day: i.start_day(),
            ci: i.ci,
            agent: !i.agent.is_empty(),
            status,
            outcome_day: i
                .outcome_day()
                .filter(|_| matches!(status, Status::Succeeded | Status::Failed)),
            os: i.os.clone(),
            os_version: i.os_version.clone(),
            product_version: i.product_version.clone(),
            arch: i.arch.clone(),
            container: i.container.clone(),
            install_method: i.install_method.clone(),
        };
        self.shapes.entry(shape).or_default().add(&counts, sign);
    }

    /// The non-zero changes to `tallies`, in key order (so that concurrent writers lock rows in
    /// the same order): every shape's counts in each of its rows. An installation counts in each
    /// breakdown for its day (tier 0) and its block (tier 1), and once in the per-day series by
    /// the day of its outcome, if it has one.
    pub fn rows(&self) -> BTreeMap<TallyKey, Counts> {
        let mut rows: BTreeMap<TallyKey, Counts> = BTreeMap::new();
        for (shape, counts) in &self.shapes {
            let key = |dim, tier, period, value| TallyKey {
                product: shape.product.clone(),
                dim,
                tier,
                period,
                ci: shape.ci,
                agent: shape.agent,
                value,
                status: shape.status,
            };
            for dim in Dim::BREAKDOWNS {
                for (tier, period) in [(0, shape.day), (1, shape.day.div_euclid(BLOCK_DAYS))] {
                    rows.entry(key(dim, tier, period, shape.value(dim)))
                        .or_default()
                        .add(counts, 1);
                }
            }
            if let Some(outcome_day) = shape.outcome_day {
                let one = Counts {
                    installations: counts.installations,
                    ..Counts::default()
                };
                rows.entry(key(Dim::Outcome, 0, shape.day, outcome_day.to_string()))
                    .or_default()
                    .add(&one, 1);
            }
        }
        rows.retain(|_, c| !c.is_zero());
        rows
    }

    /// Counts (`sign` 1) or uncounts (-1) an Error, Support or Beacon Unavailable event; an
    /// error counts its installation when `first_here` (the installation's first error there).
    pub fn event(&mut self, f: &Fold<'_>, first_here: bool, sign: i64) {
        let day = f.ts.div_euclid(DAY_MS);
        let product = || f.product().to_string();
        match f.event {
            names::ERROR => {
                let key = ErrorKey {
                    product: product(),
                    day,
                    step: f.step.unwrap_or("unknown").to_string(),
                    exit_code: f.exit_code,
                    message: f.message.unwrap_or("").to_string(),
                };
                let e = self.errors.entry(key).or_default();
                e.0 += sign;
                e.1 += sign * i64::from(first_here);
            }
            names::SUPPORT => *self.days.entry((DayCount::Support, product(), day)).or_default() += sign,
            names::BEACON_UNAVAILABLE => {
                *self.days.entry((DayCount::Unavailable, product(), day)).or_default() += sign;
            }
            _ => {}
        }
    }

    /// Counts an instance whose last activity moved from `old` (`None`: new) to `new` (`None`:
    /// forgotten), both in ms.
    pub fn instance(&mut self, product: &str, old: Option<i64>, new: Option<i64>) {
        for (at, sign) in [(old, -1), (new, 1)] {
            if let Some(at) = at {
                *self
                    .active
                    .entry((product.to_string(), at.div_euclid(HOUR_MS)))
                    .or_default() += sign;
            }
        }
    }

    /// The non-zero changes to `active_hours`, in key order.
    pub fn sorted_active(&self) -> Vec<(&(String, i64), i64)> {
        sorted_changes(&self.active)
    }

    /// The non-zero changes to `error_counts`, in key order.
    pub fn sorted_errors(&self) -> Vec<(&ErrorKey, (i64, i64))> {
        sorted_changes(&self.errors)
    }

    /// The non-zero changes to `day_counts`, in key order.
    pub fn sorted_days(&self) -> Vec<(&(DayCount, String, i64), i64)> {
        sorted_changes(&self.days)
    }
}

/// The entries of `changes` that change something, in key order.
fn sorted_changes<K: Ord, V: Copy + Default + PartialEq>(changes: &BTreeMap<K, V>) -> Vec<(&K, V)> {
    changes
        .iter()
        .filter(|(_, n)| **n != V::default())
        .map(|(k, n)| (k, *n))
        .collect()
}

/// The days `[from, until)` that hold `[since_ms, until_ms)` (unbounded ends stay far off).
pub fn days_around(since_ms: i64, until_ms: i64) -> (i64, i64) {
    let from = since_ms.div_euclid(DAY_MS);
    let until = until_ms.div_euclid(DAY_MS) + i64::from(until_ms.rem_euclid(DAY_MS) != 0);
    (from, until)
}

/// The stored periods that make up whole days `[from_day, until_day)`: the 16-day blocks wholly
/// inside, and the days around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Days before the first whole block: `[from, to)`.
    pub head: (i64, i64),
    /// Whole blocks: `[from, to)`.
    pub blocks: (i64, i64),
    /// Days after the last whole block.
    pub tail: (i64, i64),
}

impl Periods {
    /// Splits `[from_day, until_day)`.
    pub fn of(from_day: i64, until_day: i64) -> Periods {
        let until_day = until_day.max(from_day);
        let first_block = from_day.div_euclid(BLOCK_DAYS) + i64::from(from_day.rem_euclid(BLOCK_DAYS) != 0);
        let end_block = until_day.div_euclid(BLOCK_DAYS);
        if first_block >= end_block {
            return Periods {
                head: (from_day, until_day),
                blocks: (0, 0),
                tail: (until_day, until_day),
            };
        }
        Periods {
            head: (from_day, first_block * BLOCK_DAYS),
            blocks: (first_block, end_block),
            tail: (end_block * BLOCK_DAYS, until_day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation(id: &'static str, events: &[(&'static str, i64)]) -> Installation {
        let fold = |event, ts| Fold {
            event,
            product: Some("acme"),
            installation_id: id,
            os: Some("debian"),
            os_version: Some("12"),
            ts,
            ..Fold::empty()
        };
        let mut i = Installation::new(&fold(events[0].0, events[0].1));
        for (event, ts) in &events[1..] {
            i.apply(&fold(event, *ts));
        }
        i
    }

    #[test]
    fn installations_of_one_shape_count_in_the_same_rows_and_uncount_to_nothing() {
        let day = 20_000 * DAY_MS;
        let (a, b) = (
            installation("a", &[(names::STARTED, day)]),
            installation("b", &[(names::STARTED, day + 1)]),
        );
        let succeeded = installation("c", &[(names::STARTED, day), (names::SUCCESS, day + 90_000)]);
        let mut t = Tallies::default();
        for i in [&a, &b, &succeeded] {
            t.installation(None, Some(i));
        }
        let rows = t.rows();
        let abandoned: Vec<_> = rows.iter().filter(|(k, _)| k.status == Status::Abandoned).collect();
        assert_eq!(abandoned.len(), 12, "6 breakdowns, a day and a block each");
        assert!(abandoned.iter().all(|(_, c)| c.installations == 2 && c.attempts == 2));
        let os = TallyKey {
            product: "acme".into(),
            dim: Dim::Os,
            tier: 1,
            period: 20_000 / BLOCK_DAYS,
            ci: false,
            agent: false,
            value: "debian\u{1f}12".into(),
            status: Status::Succeeded,
        };
        assert_eq!(rows[&os].durations.percentile(50), Some(90_000));
        let outcome: Vec<_> = rows.keys().filter(|k| k.dim == Dim::Outcome).collect();
        assert_eq!(outcome.len(), 1);
        assert_eq!((outcome[0].period, outcome[0].value.as_str()), (20_000, "20000"));

        for i in [&a, &b, &succeeded] {
            t.installation(Some(i), None);
        }
        assert!(t.rows().is_empty(), "{:?}", t.rows());
    }

    #[test]
    fn two_significant_digits() {
        for (ms, kept) in [
            (0, 0),
            (7, 7),
            (99, 99),
            (100, 100),
            (1_234, 1_200),
            (42_000, 42_000),
            (300_000, 300_000),
        ] {
            assert_eq!(Histogram::value(Histogram::bucket(ms)), kept, "{ms}");
        }
        assert!(Histogram::bucket(99) < Histogram::bucket(100));
        assert!(Histogram::bucket(990) < Histogram::bucket(1_000));
    }

    #[test]
    fn histograms_round_trip_and_rank() {
        let mut h = Histogram::default();
        for ms in [1_000, 2_000, 3_000, 4_000, 300_000] {
            h.count(Histogram::bucket(ms), 1);
        }
        assert_eq!(Histogram::from_bytes(&h.to_bytes()), h);
        let wide = Histogram(vec![(0, 1), (1_699, u32::MAX as i64 * 3)]);
        assert_eq!(Histogram::from_bytes(&wide.to_bytes()), wide);
        assert_eq!(
            Histogram::from_bytes(&[0x80]),
            Histogram::default(),
            "a torn tail is ignored"
        );
        assert_eq!((h.percentile(50), h.percentile(90)), (Some(3_000), Some(300_000)));
        h.count(Histogram::bucket(300_000), -1);
        assert_eq!(h.percentile(90), Some(4_000));
        assert_eq!(Histogram::default().percentile(50), None);
    }

    #[test]
    fn windows_split_into_blocks_and_days() {
        assert_eq!(
            Periods::of(10, 70),
            Periods {
                head: (10, 16),
                blocks: (1, 4),
                tail: (64, 70)
            }
        );
        assert_eq!(Periods::of(16, 32).blocks, (1, 2));
        assert_eq!(Periods::of(3, 9).head, (3, 9));
        assert_eq!(Periods::of(3, 9).blocks, (0, 0));
    }
}
