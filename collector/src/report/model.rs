//! What a report holds; serialised as is for `/report.json` and `report --format json`.

use serde::Serialize;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the report was made (UTC, ISO 8601).
    pub generated_at: String,
    /// The window, if one was asked for.
    pub since: Option<String>,
    /// One section per product, most installations first (at most `MAX_PRODUCTS`).
    pub products: Vec<ProductReport>,
    /// The products not listed, summed; absent when every product is listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_products: Option<OtherProducts>,
    /// Forwarding to PostHog or Segment, per backend (empty when never configured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forwarding: Vec<crate::relay::queue::Status>,
}

/// Installations of the products a report does not list.
#[derive(Debug, Clone, Serialize)]
pub struct OtherProducts {
    /// How many products.
    pub products: u64,
    /// Their installations, summed (no durations).
    pub installations: Funnel,
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
