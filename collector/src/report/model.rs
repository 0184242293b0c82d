//! What a report holds; serialised as is for `/report.json` and `report --format json`.

use serde::Serialize;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the report was made (UTC, ISO 8601).
    pub generated_at: String,
    /// The window, if one was asked for.
    pub since: Option<String>,
    /// Whether CI installations are counted in the funnels.
    pub ci_included: bool,
    /// Whether installations run by AI agents are counted in the funnels.
    pub agents_included: bool,
    /// One section per product, most installations first (at most `MAX_PRODUCTS`).
    pub products: Vec<ProductReport>,
    /// The products not listed, summed; absent when every product is listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_products: Option<OtherProducts>,
    /// Forwarding to PostHog or Segment, per backend (empty when never configured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forwarding: Vec<crate::store::Forwarding>,
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
    /// Installations that reported anything (started = succeeded + failed + abandoned + running).
    pub started: u64,
    /// Installations whose last outcome is a Success.
    pub succeeded: u64,
    /// Installations with an Error and no later Success.
    pub failed: u64,
    /// Installations that reported neither outcome and started before the running window.
    pub abandoned: u64,
    /// Installations with no outcome yet that started within the running window.
    pub running: u64,
    /// Installations that succeeded after a failed attempt.
    pub recovered: u64,
    /// succeeded / (started − running), 0 to 1, rounded to 4 decimals.
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

/// Outcomes of one value of a single-valued fact (product version, architecture, container).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The value, e.g. `1.4.2`, `arm64`, `docker`.
    pub value: String,
    /// Outcomes.
    #[serde(flatten)]
    pub funnel: Funnel,
}

/// One error message and how often it came.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    /// The message as sent (empty when none was).
    pub message: String,
    /// Error events with it.
    pub count: u64,
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
    /// Its most frequent messages.
    pub messages: Vec<Message>,
}

/// One support request.
#[derive(Debug, Clone, Serialize)]
pub struct SupportRequest {
    /// When it was sent (UTC).
    pub time: String,
    /// Product version being installed.
    pub product_version: Option<String>,
    /// The step that failed, as the request named it.
    pub step: Option<String>,
    /// Installation ID (what `install-beacon id` prints).
    pub installation_id: String,
    /// Contact email, only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Support requests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Support {
    /// Number of `Installation Support` events.
    pub count: u64,
    /// Distinct emails, only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
    /// The latest requests, newest first.
    pub requests: Vec<SupportRequest>,
}

/// Outcomes per UTC day.
#[derive(Debug, Clone, Default, Serialize)]
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
    /// Outcomes over all its installations (without CI ones unless included).
    pub installations: Funnel,
    /// Install attempts of these installations (one installation, one ID; each re-run after a
    /// `started` is a new attempt). An installation's outcome is that of its latest attempt.
    pub attempts: Attempts,
    /// Outcomes of the installations that ran in CI (`ci` property true).
    pub ci: Funnel,
    /// Outcomes of the installations an AI agent ran (`agent` property set).
    pub agents: Funnel,
    /// Outcomes by OS and OS version, most installations first.
    pub by_os: Vec<OsRow>,
    /// Outcomes by product version, most installations first.
    pub by_version: Vec<Row>,
    /// Outcomes by CPU architecture, most installations first.
    pub by_arch: Vec<Row>,
    /// Outcomes by container runtime (`none` on a plain host), most installations first.
    pub by_container: Vec<Row>,
    /// Outcomes by install method (`curl-sh`, `docker`, ...; `unknown` when not said).
    pub by_install_method: Vec<Row>,
    /// Most frequent failing steps.
    pub failing_steps: Vec<FailingStep>,
    /// Support requests.
    pub support: Support,
    /// `Beacon Unavailable` events: installers that could not fetch the beacon (not installations,
    /// never in the funnel or the failing steps).
    pub beacon_unavailable: u64,
    /// Distinct installations with an `Instance Active` event in the last 24 h.
    pub active_24h: u64,
    /// Per-day series.
    pub daily: Vec<Day>,
}

/// Install attempts, counted by the outcome of each.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts begun.
    pub started: u64,
    /// Attempts that ended in a Success.
    pub succeeded: u64,
    /// Attempts that ended in an Error.
    pub failed: u64,
}
