//! The report as one self-contained HTML page with inline SVG charts (no scripts, no network).
//! Built with maud: every value is escaped unless it is itself markup.

use maud::{Markup, PreEscaped, html};

use super::svg::{self, Bar, Series};
use super::{duration, percent};
use crate::report::{Funnel, ProductReport, Report};

pub(super) const GREEN: &str = "#2f9e44";
pub(super) const RED: &str = "#e03131";
pub(super) const BLUE: &str = "#1c7ed6";
pub(super) const GREY: &str = "#adb5bd";
const ORANGE: &str = "#f08c00";

pub(super) const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;color:#212529}
header{background:#1f2933;color:#fff;padding:18px 32px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#adb5bd}main{padding:8px 32px 32px;max-width:1180px}
section.product{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:20px 24px;margin:20px 0}
h2{margin:0 0 14px;font-size:18px}h3{font-size:14px;margin:18px 0 6px;color:#495057}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));gap:10px;margin-bottom:12px}
.kpi{background:#f1f3f5;border-radius:8px;padding:8px 12px}.kpi b{display:block;font-size:20px}
.kpi span{color:#6c757d;font-size:12px}.charts{display:grid;grid-template-columns:1fr 1fr;gap:8px 28px}
.charts svg{width:100%;height:auto}.charts .wide{grid-column:1/-1}
.chart text{font:12px system-ui,sans-serif;fill:#343a40}.chart .ct{font-weight:600;font-size:13px}
.chart .axis{fill:#868e96;font-size:11px}.chart .grid{stroke:#e9ecef}.chart .muted{fill:#adb5bd}
table{border-collapse:collapse;font-size:13px;margin-bottom:4px}th,td{padding:3px 10px 3px 0;text-align:right;white-space:nowrap}
th:first-child,td:first-child,th.l,td.l{text-align:left}th{color:#6c757d;font-weight:500;border-bottom:1px solid #dee2e6}
.relay{background:#fff;border-radius:10px;padding:10px 24px;margin:20px 0 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:0 28px}td.msg{white-space:normal;max-width:560px}.n{color:#868e96}
form.picker{background:#fff;border-radius:10px;padding:10px 24px;margin:20px 0 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
form.picker label{margin-right:10px}.empty{color:#868e96}
";

/// What the picker shows: every product, and the current choice (as in the URL).
#[derive(Debug, Default)]
pub struct Picker {
    /// Every product with installations.
    pub products: Vec<String>,
    /// `since`, `from`, `to` and `product` as given.
    pub since: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// The product shown, empty for all.
    pub product: String,
}

const SINCE_CHOICES: [(&str, &str); 6] = [
    ("", "all time"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("90d", "last 90 days"),
    ("365d", "last year"),
];

/// A plain GET form: product, period or dates, CI and agents; the choice lands in the URL.
fn picker(picker: &Picker, report: &Report) -> Markup {
    let known_since = SINCE_CHOICES.iter().any(|(v, _)| *v == picker.since);
    let unlisted_product = !picker.product.is_empty() && !picker.products.contains(&picker.product);
    html! {
        form.picker method="get" action="/" {
            label { "product " select name="product" {
                option value="" selected[picker.product.is_empty()] { "all products" }
                @for p in &picker.products {
                    option value=(p) selected[*p == picker.product] { (p) }
                }
                @if unlisted_product {
                    option value=(picker.product) selected { (picker.product) }
                }
            } }
            " "
            label { "period " select name="since" {
                @for (value, label) in SINCE_CHOICES {
                    option value=(value) selected[value == picker.since] { (label) }
                }
                @if !known_since {
                    option value=(picker.since) selected { (picker.since) }
                }
            } }
            " "
            label { "or from " input type="date" name="from" value=(picker.from); }
            " "
            label { "to " input type="date" name="to" value=(picker.to); }
            " "
            label { input type="checkbox" name="include_ci" value="1" checked[report.ci_included]; " count CI installs" }
            " "
            label {
                input type="checkbox" name="include_agents" value="1" checked[report.agents_included];
                " count agent installs"
            }
            " "
            button type="submit" { "show" }
        }
    }
}

/// A time as the page shows it: `2026-11-23 10:00:00`.
pub(super) fn time(iso: &str) -> String {
    iso.replace('T', " ").replace('Z', "")
}

/// The document around a page's `main`: head, style, header with title and subtitle.
pub(super) fn document(title: &str, heading: &str, subtitle: Markup, main: Markup) -> String {
    let page = html! {
        (PreEscaped("<!doctype html>"))
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                meta name="viewport" content="width=device-width";
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { h1 { (heading) } p { (subtitle) } }
                main { (main) }
            }
        }
    };
    let mut s = page.into_string();
    s.push('\n');
    s
}

/// A row of key numbers.
pub(super) fn kpis(items: &[(String, &str)]) -> Markup {
    html! {
        div.kpis {
            @for (value, label) in items {
                div.kpi { b { (value) } span { (label) } }
            }
        }
    }
}

/// Renders the whole page.
pub fn render(report: &Report, choice: &Picker) -> String {
    let subtitle = html! {
        (super::window(report)) " · generated " (time(&report.generated_at)) " UTC · "
        a style="color:#74c0fc" href="/report.json" { "JSON" }
    };
    let main = html! {
        (picker(choice, report))
        (forwarding(report))
        @if report.products.is_empty() {
            section.product { p.empty { "No events yet. Point install-beacon at this collector." } }
        }
        @for p in &report.products {
            (product(p))
        }
        @if let Some(other) = &report.other_products {
            @let f = &other.installations;
            section.product {
                h2 { (other.products) " more products" }
                p.empty { "Not listed one by one; their installations together:" }
                (kpis(&[
                    (f.started.to_string(), "installations"),
                    (percent(f.success_rate), "success rate"),
                    (f.failed.to_string(), "failed"),
                    (f.abandoned.to_string(), "abandoned"),
                ]))
            }
        }
    };
    document("Installations — beacon-collector", "Installations", subtitle, main)
}

/// One status line per relay backend: forwarded, queued, and since when it fails.
fn forwarding(report: &Report) -> Markup {
    html! {
        @for f in &report.forwarding {
            p.relay {
                "Forwarding to " (f.backend) " (" (f.url) "): "
                @if let Some(since) = &f.failing_since {
                    b style={"color:" (RED)} { "failing since " (time(since)) " UTC" }
                    @if let Some(e) = &f.last_error { ": " (e) }
                } @else {
                    b style={"color:" (GREEN)} { "ok" }
                }
                " · " (f.forwarded) " forwarded · " (f.queued) " queued"
                @if f.rejected > 0 { " · " (f.rejected) " refused by the backend" }
            }
        }
    }
}

fn product(p: &ProductReport) -> Markup {
    let f = &p.installations;
    let steps: Vec<Bar> = p
        .failing_steps
        .iter()
        .map(|st| Bar {
            label: match st.exit_code {
                Some(code) => format!("{} (exit {code})", st.step),
                None => st.step.clone(),
            },
            value: st.count,
            color: RED,
            note: st.count.to_string(),
        })
        .collect();
    let dates: Vec<String> = p.daily.iter().map(|d| d.date.clone()).collect();
    let series = [
        Series {
            name: "started",
            color: BLUE,
            values: p.daily.iter().map(|d| d.started).collect(),
        },
        Series {
            name: "succeeded",
            color: GREEN,
            values: p.daily.iter().map(|d| d.succeeded).collect(),
        },
        Series {
            name: "failed",
            color: RED,
            values: p.daily.iter().map(|d| d.failed).collect(),
        },
    ];
    let os_rows: Vec<(Vec<String>, &Funnel)> = p
        .by_os
        .iter()
        .map(|r| (vec![r.os.clone(), r.os_version.clone()], &r.funnel))
        .collect();
    html! {
        section.product {
            h2 { (p.product) }
            (kpis(&[
                (f.started.to_string(), "installations"),
                (percent(f.success_rate), "success rate"),
                (f.running.to_string(), "running now"),
                (p.ci.started.to_string(), "CI installs (apart)"),
                (p.agents.started.to_string(), "agent installs (apart)"),
                (duration(f.median_duration_ms), "median install"),
                (duration(f.p90_duration_ms), "p90 install"),
                (p.active_24h.to_string(), "active (24 h)"),
                (p.support.count.to_string(), "support requests"),
                (p.attempts.started.to_string(), "install attempts"),
                (f.recovered.to_string(), "recovered after a failure"),
                (p.beacon_unavailable.to_string(), "beacon unavailable"),
            ]))
            p.empty { "Attempts: " (super::attempts(p)) ". Beacon unavailable: " (super::beacon_unavailable(p)) "." }
            div.charts {
                (svg::bars("Funnel", &funnel_bars(f), 520))
                (svg::bars("Failures by step", &steps, 520))
                div.wide { (svg::lines("Per day: started vs succeeded vs failed", &dates, &series, 1080, 250)) }
            }
            div.tables {
                div { h3 { "By OS" } (funnel_table(&["OS", "version"], &os_rows)) }
                @for (title, column, list) in super::breakdowns(p) {
                    @let rows: Vec<(Vec<String>, &Funnel)> =
                        list.iter().map(|r| (vec![r.value.clone()], &r.funnel)).collect();
                    div { h3 { "By " (title) } (funnel_table(&[column], &rows)) }
                }
            }
            (failing_steps(p))
            (support_requests(p))
        }
    }
}

/// Each failing step with its exit code and most frequent messages.
fn failing_steps(p: &ProductReport) -> Markup {
    html! {
        h3 { "Why installations fail" }
        @if p.failing_steps.is_empty() {
            p.empty { "no errors" }
        } @else {
            table.wide {
                tr {
                    th.l { "step" } th { "exit code" } th { "errors" } th { "installations" }
                    th.l { "most frequent messages" }
                }
                @for st in &p.failing_steps {
                    tr {
                        td.l { (st.step) }
                        td { (st.exit_code.map_or("-".into(), |c| c.to_string())) }
                        td { (st.count) }
                        td { (st.installations) }
                        td.l.msg {
                            @for (i, m) in st.messages.iter().enumerate() {
                                @if i > 0 { br; }
                                (if m.message.is_empty() { "(no message)" } else { &m.message })
                                " " span.n { "×" (m.count) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Support requests listed on the page (the JSON and `report` carry up to 50 per product).
const SUPPORT_ROWS: usize = 15;

/// The latest support requests; their emails only when the report carries them (the page was
/// asked for with the admin token).
fn support_requests(p: &ProductReport) -> Markup {
    let emails = p.support.emails.is_some();
    let shown = p.support.requests.len().min(SUPPORT_ROWS);
    html! {
        h3 { "Support requests (" (p.support.count) ")" }
        @if p.support.requests.is_empty() {
            p.empty { "none" }
        } @else {
            table {
                tr {
                    th.l { "time (UTC)" } th.l { "version" } th.l { "failed step" } th.l { "installation ID" }
                    @if emails { th.l { "email" } }
                }
                @for r in &p.support.requests[..shown] {
                    tr {
                        td.l { (time(&r.time)) }
                        td.l { (r.product_version.as_deref().unwrap_or("-")) }
                        td.l { (r.step.as_deref().unwrap_or("-")) }
                        td.l { code { (r.installation_id) } }
                        @if emails { td.l { (r.email.as_deref().unwrap_or("-")) } }
                    }
                }
            }
            @if !emails {
                p.empty {
                    "Emails are hidden: this collector has no admin token, so this page answers anyone who "
                    "can reach its address. To see them, start serve with " code { "--admin-token-file" }
                    " (or " code { "BEACON_COLLECTOR_ADMIN_TOKEN" } ") and log in with the token, or run "
                    code { "beacon-collector report --show-emails" } " where the database is."
                }
            }
            @if p.support.count > shown as u64 {
                p.empty {
                    "the latest " (shown) " of " (p.support.count) "; more in "
                    a href="/report.json" { "/report.json" } " and " code { "beacon-collector report" }
                }
            }
        }
    }
}

fn funnel_bars(f: &Funnel) -> Vec<Bar> {
    let share = |n: u64| {
        if f.started == 0 {
            n.to_string()
        } else {
            format!("{n} ({})", percent(n as f64 / f.started as f64))
        }
    };
    vec![
        Bar {
            label: "started".into(),
            value: f.started,
            color: BLUE,
            note: f.started.to_string(),
        },
        Bar {
            label: "succeeded".into(),
            value: f.succeeded,
            color: GREEN,
            note: share(f.succeeded),
        },
        Bar {
            label: "failed".into(),
            value: f.failed,
            color: RED,
            note: share(f.failed),
        },
        Bar {
            label: "abandoned".into(),
            value: f.abandoned,
            color: GREY,
            note: share(f.abandoned),
        },
    ]
}

fn funnel_table(keys: &[&str], rows: &[(Vec<String>, &Funnel)]) -> Markup {
    let rate_color = |rate: f64| {
        if rate >= 0.9 {
            GREEN
        } else if rate >= 0.7 {
            ORANGE
        } else {
            RED
        }
    };
    html! {
        @if rows.is_empty() {
            p.empty { "no installations" }
        } @else {
            table {
                tr {
                    @for k in keys { th.l { (k) } }
                    th { "started" } th { "succeeded" } th { "failed" } th { "abandoned" } th { "running" }
                    th { "success" } th { "median" } th { "p90" }
                }
                @for (cells, f) in rows {
                    tr {
                        @for c in cells { td.l { (c) } }
                        td { (f.started) } td { (f.succeeded) } td { (f.failed) } td { (f.abandoned) } td { (f.running) }
                        td style={"color:" (rate_color(f.success_rate))} { (percent(f.success_rate)) }
                        td { (duration(f.median_duration_ms)) } td { (duration(f.p90_duration_ms)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FailingStep, Message, Support, SupportRequest};
    use crate::store::Forwarding;

    #[test]
    fn no_stored_value_is_printed_unescaped() {
        let evil = "<script>x</script>\"'&";
        let report = Report {
            generated_at: "2026-11-23T10:00:00Z".into(),
            since: Some(evil.into()),
            ci_included: false,
            agents_included: false,
            products: vec![ProductReport {
                product: evil.into(),
                failing_steps: vec![FailingStep {
                    step: evil.into(),
                    exit_code: Some(2),
                    count: 1,
                    installations: 1,
                    messages: vec![Message {
                        message: evil.into(),
                        count: 1,
                    }],
                }],
                support: Support {
                    count: 1,
                    emails: Some(vec![evil.into()]),
                    requests: vec![SupportRequest {
                        time: evil.into(),
                        product_version: Some(evil.into()),
                        step: Some(evil.into()),
                        installation_id: evil.into(),
                        email: Some(evil.into()),
                    }],
                },
                ..ProductReport::default()
            }],
            other_products: None,
            forwarding: vec![Forwarding {
                backend: evil.into(),
                url: evil.into(),
                forwarded: 0,
                queued: 0,
                rejected: 0,
                last_success: None,
                failing_since: Some(evil.into()),
                last_error: Some(evil.into()),
            }],
        };
        let picker = Picker {
            products: vec![evil.into()],
            since: evil.into(),
            from: evil.into(),
            to: evil.into(),
            product: evil.into(),
        };
        let html = render(&report, &picker);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("x</script>"));
        assert!(html.matches("&lt;script&gt;x&lt;/script&gt;&quot;").count() >= 15);
    }
}
