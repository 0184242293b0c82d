//! The public transparency report: aggregates only, every bucket of fewer than k installations
//! merged into "other" (or, for a week, shown as "fewer than k"), and nothing that names or
//! reaches a person: no installation IDs, no emails, no error messages, no support requests.
//!
//! A small cell is never suppressed alone: what is hidden of a product (its `other` bucket, its
//! weeks shown as fewer than k) is together 0 or at least k, taking the smallest shown cells in
//! with it when needed, so subtracting what is shown from a total recovers no group under k.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{OTHER, ProductReport, Report, rate};
use crate::clock::DAY_MS;

/// The public report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PublicReport {
    /// When it was made (UTC).
    pub generated_at: String,
    /// The smallest bucket shown on its own.
    pub k: u64,
    /// Products with at least k installations, most first.
    pub products: Vec<PublicProduct>,
    /// Installations of the products with fewer than k each, summed (only if at least k).
    pub other_products: Option<u64>,
}

/// One product's public numbers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PublicProduct {
    /// Product name.
    pub product: String,
    /// Installations in the period (CI runs left out).
    pub installations: u64,
    /// Succeeded / finished installations, 0 to 1.
    pub success_rate: f64,
    /// Installations per week (Monday to Sunday, UTC), oldest first.
    pub weeks: Vec<Week>,
    /// Share of installations per operating system.
    pub os: Vec<Share>,
    /// Share of installations per product version.
    pub versions: Vec<Share>,
    /// Failed installations per step.
    pub failure_steps: Vec<Share>,
}

/// Installations started in one week.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Week {
    /// Its Monday, `YYYY-MM-DD`.
    pub week_of: String,
    /// Installations, or `None` when fewer than k.
    pub installations: Option<u64>,
}

/// One bucket and its part of the whole.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Share {
    /// The bucket, or `other`.
    pub name: String,
    /// Installations in it.
    pub installations: u64,
    /// installations / the product's installations, 0 to 1.
    pub share: f64,
}

/// The public view of `report` with buckets of at least `k` installations.
pub fn from_report(report: &Report, k: u64) -> PublicReport {
    let mut products = Vec::new();
    let mut other = 0;
    for p in &report.products {
        if p.installations.started >= k {
            products.push(product(p, k));
        } else {
            other += p.installations.started;
        }
    }
    other += report.other_products.as_ref().map_or(0, |o| o.installations.started);
    PublicReport {
        generated_at: report.generated_at.clone(),
        k,
        products,
        other_products: (other >= k).then_some(other),
    }
}

fn product(p: &ProductReport, k: u64) -> PublicProduct {
    let f = &p.installations;
    let total = f.started;
    let mut os: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &p.by_os {
        *os.entry(r.os.as_str()).or_default() += r.funnel.started;
    }
    let mut steps: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &p.failing_steps {
        *steps.entry(s.step.as_str()).or_default() += s.installations;
    }
    let failures = steps.values().sum();
    PublicProduct {
        product: p.product.clone(),
        installations: total,
        success_rate: rate(f.succeeded, f.started - f.running),
        weeks: weeks(p, k),
        os: shares(os, total, k),
        versions: shares(
            p.by_version
                .iter()
                .map(|r| (r.value.as_str(), r.funnel.started))
                .collect(),
            total,
            k,
        ),
        failure_steps: shares(steps, failures, k),
    }
}

/// Buckets of at least `k`, most first, then one `other` summing the rest (if any), which is at
/// least `k` too: the smallest buckets join it until it is (and it is left out when even all of
/// them are fewer).
fn shares(buckets: BTreeMap<&str, u64>, total: u64, k: u64) -> Vec<Share> {
    let mut shown: Vec<(&str, u64)> = Vec::new();
    let mut other = 0;
    for (name, n) in buckets {
        if n >= k && name != OTHER {
            shown.push((name, n));
        } else {
            other += n;
        }
    }
    shown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    while other > 0 && other < k {
        let Some((_, n)) = shown.pop() else { break };
        other += n;
    }
    let share = |n: u64| rate(n, total);
    let mut out: Vec<Share> = shown
        .into_iter()
        .map(|(name, n)| Share {
            name: name.to_string(),
            installations: n,
            share: share(n),
        })
        .collect();
    // Under k even with every group in it (fewer failures than k): not shown at all.
    if other >= k {
        out.push(Share {
            name: "other".into(),
            installations: other,
            share: share(other),
        });
    }
    out
}

/// Installations per week from the per-day series; weeks under `k` are not counted out, and
/// neither are the smallest others until those not counted out sum to at least `k`.
fn weeks(p: &ProductReport, k: u64) -> Vec<Week> {
    let mut weeks: BTreeMap<i64, u64> = BTreeMap::new();
    for d in &p.daily {
        if let Some(day) = day_number(&d.date) {
            // 1970-01-01 was a Thursday: Monday-based weeks start 3 days earlier.
            let monday = day - (day + 3).rem_euclid(7);
            *weeks.entry(monday).or_default() += d.started;
        }
    }
    let mut hidden: u64 = weeks.values().filter(|&&n| n < k).sum();
    let mut shown: Vec<(u64, i64)> = weeks.iter().filter(|&(_, &n)| n >= k).map(|(&m, &n)| (n, m)).collect();
    shown.sort_unstable();
    let mut complements = shown.into_iter();
    let mut also_hidden = Vec::new();
    while hidden > 0 && hidden < k {
        let Some((n, monday)) = complements.next() else { break };
        hidden += n;
        also_hidden.push(monday);
    }
    weeks
        .into_iter()
        .map(|(monday, n)| Week {
            week_of: crate::clock::date(monday),
            installations: (n >= k && !also_hidden.contains(&monday)).then_some(n),
        })
        .collect()
}

/// Days since the epoch of a `YYYY-MM-DD` date.
fn day_number(date: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok().map(|ms| ms / DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Day, FailingStep, Funnel, OsRow, Row};

    fn funnel(started: u64, succeeded: u64) -> Funnel {
        Funnel {
            started,
            succeeded,
            failed: started - succeeded,
            ..Funnel::default()
        }
    }

    fn sample() -> Report {
        let acme = ProductReport {
            product: "acme".into(),
            installations: funnel(40, 30),
            by_os: vec![
                OsRow {
                    os: "ubuntu".into(),
                    os_version: "22.04".into(),
                    funnel: funnel(20, 15),
                },
                OsRow {
                    os: "ubuntu".into(),
                    os_version: "24.04".into(),
                    funnel: funnel(5, 5),
                },
                OsRow {
                    os: "alpine".into(),
                    os_version: "3.20".into(),
                    funnel: funnel(12, 9),
                },
                OsRow {
                    os: "macos".into(),
                    os_version: "14".into(),
                    funnel: funnel(3, 1),
                },
            ],
            by_version: vec![
                Row {
                    value: "2.4.0".into(),
                    funnel: funnel(31, 24),
                },
                Row {
                    value: "2.3.0".into(),
                    funnel: funnel(9, 6),
                },
            ],
            failing_steps: vec![FailingStep {
                step: "db".into(),
                exit_code: Some(5),
                count: 12,
                installations: 10,
                messages: vec![],
            }],
            daily: vec![
                Day {
                    date: "2026-11-16".into(),
                    started: 30,
                    ..Day::default()
                },
                Day {
                    date: "2026-11-23".into(),
                    started: 6,
                    ..Day::default()
                },
                Day {
                    date: "2026-11-24".into(),
                    started: 4,
                    ..Day::default()
                },
            ],
            ..ProductReport::default()
        };
        let tiny = ProductReport {
            product: "secret-beta".into(),
            installations: funnel(3, 3),
            ..ProductReport::default()
        };
        Report {
            generated_at: "2026-11-24T08:00:00Z".into(),
            since: None,
            ci_included: false,
            agents_included: false,
            products: vec![acme, tiny],
            other_products: None,
            forwarding: vec![],
        }
    }

    #[test]
    fn buckets_under_k_merge_into_other() {
        let public = from_report(&sample(), 10);
        assert_eq!(public.products.len(), 1, "a product under k is not named");
        assert_eq!(public.other_products, None, "and 3 installations are under k too");
        let acme = &public.products[0];
        assert_eq!((acme.installations, acme.success_rate), (40, 0.75));
        let os: Vec<(&str, u64)> = acme.os.iter().map(|s| (s.name.as_str(), s.installations)).collect();
        // alpine goes with the 3 others: "other" alone would be under k.
        assert_eq!(os, [("ubuntu", 25), ("other", 15)]);
        let versions: Vec<(&str, u64)> = acme
            .versions
            .iter()
            .map(|s| (s.name.as_str(), s.installations))
            .collect();
        assert_eq!(versions, [("other", 40)], "9 alone would be 40 - 31");
        assert_eq!(acme.failure_steps[0].name, "db");
        assert_eq!(
            acme.weeks,
            [
                Week {
                    week_of: "2026-11-16".into(),
                    installations: Some(30)
                },
                Week {
                    week_of: "2026-11-23".into(),
                    installations: Some(10)
                },
            ]
        );
        // With k = 11 the week of 10 is hidden, and the week of 30 with it: 40 - 30 would show it.
        let weeks = &from_report(&sample(), 11).products[0].weeks;
        assert!(weeks.iter().all(|w| w.installations.is_none()), "{weeks:?}");
        let strict = from_report(&sample(), 31);
        assert_eq!(strict.products[0].versions[0].name, "other");
        assert_eq!(
            strict.products[0].os,
            [Share {
                name: "other".into(),
                installations: 40,
                share: 1.0
            }]
        );
        let stricter = from_report(&sample(), 41);
        assert_eq!(stricter.products, []);
        assert_eq!(stricter.other_products, Some(43), "together they are over k");
    }
}
