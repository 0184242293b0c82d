//! The report as one self-contained HTML page with inline SVG charts (no scripts, no network).

use std::fmt::Write;

use super::svg::{self, Bar, Series, escape};
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

/// A plain GET form: product, period or dates, CI; the choice lands in the URL.
fn picker(s: &mut String, picker: &Picker, ci_included: bool) {
    s.push_str("<form class=\"picker\" method=\"get\" action=\"/\"><label>product <select name=\"product\">");
    let option = |s: &mut String, value: &str, label: &str, selected: bool| {
        let _ = write!(
            s,
            "<option value=\"{}\"{}>{}</option>",
            escape(value),
            if selected { " selected" } else { "" },
            escape(label)
        );
    };
    option(s, "", "all products", picker.product.is_empty());
    for p in &picker.products {
        option(s, p, p, *p == picker.product);
    }
    if !picker.product.is_empty() && !picker.products.contains(&picker.product) {
        option(s, &picker.product, &picker.product, true);
    }
    s.push_str("</select></label> <label>period <select name=\"since\">");
    let known = SINCE_CHOICES.iter().any(|(v, _)| *v == picker.since);
    for (value, label) in SINCE_CHOICES {
        option(s, value, label, value == picker.since);
    }
    if !known {
        option(s, &picker.since, &picker.since, true);
    }
    let _ = write!(
        s,
        "</select></label> <label>or from <input type=\"date\" name=\"from\" value=\"{}\"></label> \
         <label>to <input type=\"date\" name=\"to\" value=\"{}\"></label> \
         <label><input type=\"checkbox\" name=\"include_ci\" value=\"1\"{}> count CI installs</label> \
         <button type=\"submit\">show</button></form>",
        escape(&picker.from),
        escape(&picker.to),
        if ci_included { " checked" } else { "" }
    );
}

/// Renders the whole page.
pub fn render(report: &Report, choice: &Picker) -> String {
    let mut s = String::with_capacity(32 * 1024);
    let window = super::window(report);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Installations — beacon-collector</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>\
         <header><h1>Installations</h1><p>{} · generated {} UTC · <a style=\"color:#74c0fc\" href=\"/report.json\">JSON</a></p></header><main>",
        escape(window),
        escape(&report.generated_at.replace('T', " ").replace('Z', ""))
    );
    picker(&mut s, choice, report.ci_included);
    forwarding(&mut s, report);
    if report.products.is_empty() {
        s.push_str("<section class=\"product\"><p class=\"empty\">No events yet. Point install-beacon at this collector.</p></section>");
    }
    for p in &report.products {
        product(&mut s, p);
    }
    if let Some(other) = &report.other_products {
        let f = &other.installations;
        let _ = write!(
            s,
            "<section class=\"product\"><h2>{} more products</h2><p class=\"empty\">Not listed one by one; \
             their installations together:</p><div class=\"kpis\">",
            other.products
        );
        for (value, label) in [
            (f.started.to_string(), "installations"),
            (percent(f.success_rate), "success rate"),
            (f.failed.to_string(), "failed"),
            (f.abandoned.to_string(), "abandoned"),
        ] {
            let _ = write!(s, "<div class=\"kpi\"><b>{value}</b><span>{label}</span></div>");
        }
        s.push_str("</div></section>");
    }
    s.push_str("</main></body></html>\n");
    s
}

/// One status line per relay backend: forwarded, queued, and since when it fails.
fn forwarding(s: &mut String, report: &Report) {
    for f in &report.forwarding {
        let state = match (&f.failing_since, &f.last_error) {
            (Some(since), error) => format!(
                "<b style=\"color:{RED}\">failing since {} UTC</b>{}",
                escape(&since.replace('T', " ").replace('Z', "")),
                error.as_deref().map_or(String::new(), |e| format!(": {}", escape(e)))
            ),
            (None, _) => format!("<b style=\"color:{GREEN}\">ok</b>"),
        };
        let _ = write!(
            s,
            "<p class=\"relay\">Forwarding to {} ({}): {state} · {} forwarded · {} queued{}</p>",
            escape(&f.backend),
            escape(&f.url),
            f.forwarded,
            f.queued,
            if f.rejected > 0 {
                format!(" · {} refused by the backend", f.rejected)
            } else {
                String::new()
            }
        );
    }
}

fn product(s: &mut String, p: &ProductReport) {
    let f = &p.installations;
    let _ = write!(
        s,
        "<section class=\"product\"><h2>{}</h2><div class=\"kpis\">",
        escape(&p.product)
    );
    for (value, label) in [
        (f.started.to_string(), "installations"),
        (percent(f.success_rate), "success rate"),
        (f.running.to_string(), "running now"),
        (p.ci.started.to_string(), "CI installs (apart)"),
        (duration(f.median_duration_ms), "median install"),
        (duration(f.p90_duration_ms), "p90 install"),
        (p.active_24h.to_string(), "active (24 h)"),
        (p.support.count.to_string(), "support requests"),
    ] {
        let _ = write!(
            s,
            "<div class=\"kpi\"><b>{}</b><span>{label}</span></div>",
            escape(&value)
        );
    }
    s.push_str("</div><div class=\"charts\">");
    s.push_str(&svg::bars("Funnel", &funnel_bars(f), 520));
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
    s.push_str(&svg::bars("Failures by step", &steps, 520));
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
    s.push_str("<div class=\"wide\">");
    s.push_str(&svg::lines(
        "Per day: started vs succeeded vs failed",
        &dates,
        &series,
        1080,
        250,
    ));
    s.push_str("</div></div><div class=\"tables\"><div><h3>By OS</h3>");
    let os_rows: Vec<(Vec<String>, &Funnel)> = p
        .by_os
        .iter()
        .map(|r| (vec![r.os.clone(), r.os_version.clone()], &r.funnel))
        .collect();
    funnel_table(s, &["OS", "version"], &os_rows);
    s.push_str("</div>");
    for (title, column, list) in super::breakdowns(p) {
        let _ = write!(s, "<div><h3>By {}</h3>", escape(title));
        let rows: Vec<(Vec<String>, &Funnel)> = list.iter().map(|r| (vec![r.value.clone()], &r.funnel)).collect();
        funnel_table(s, &[column], &rows);
        s.push_str("</div>");
    }
    s.push_str("</div>");
    failing_steps(s, p);
    support_requests(s, p);
    s.push_str("</section>");
}

/// Each failing step with its exit code and most frequent messages.
fn failing_steps(s: &mut String, p: &ProductReport) {
    s.push_str("<h3>Why installations fail</h3>");
    if p.failing_steps.is_empty() {
        s.push_str("<p class=\"empty\">no errors</p>");
        return;
    }
    s.push_str("<table class=\"wide\"><tr><th class=\"l\">step</th><th>exit code</th><th>errors</th><th>installations</th><th class=\"l\">most frequent messages</th></tr>");
    for st in &p.failing_steps {
        let messages: Vec<String> = st
            .messages
            .iter()
            .map(|m| {
                let text = if m.message.is_empty() {
                    "(no message)"
                } else {
                    &m.message
                };
                format!("{} <span class=\"n\">×{}</span>", escape(text), m.count)
            })
            .collect();
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l msg\">{}</td></tr>",
            escape(&st.step),
            st.exit_code.map_or("-".into(), |c| c.to_string()),
            st.count,
            st.installations,
            messages.join("<br>")
        );
    }
    s.push_str("</table>");
}

/// The latest support requests; their emails only when the report carries them (the page was
/// asked for with the admin token).
fn support_requests(s: &mut String, p: &ProductReport) {
    let _ = write!(s, "<h3>Support requests ({})</h3>", p.support.count);
    if p.support.requests.is_empty() {
        s.push_str("<p class=\"empty\">none</p>");
        return;
    }
    let emails = p.support.emails.is_some();
    let shown = p.support.requests.len().min(SUPPORT_ROWS);
    s.push_str("<table><tr><th class=\"l\">time (UTC)</th><th class=\"l\">version</th><th class=\"l\">failed step</th><th class=\"l\">installation ID</th>");
    if emails {
        s.push_str("<th class=\"l\">email</th>");
    }
    s.push_str("</tr>");
    for r in &p.support.requests[..shown] {
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td>",
            escape(&r.time.replace('T', " ").replace('Z', "")),
            escape(r.product_version.as_deref().unwrap_or("-")),
            escape(r.step.as_deref().unwrap_or("-")),
            escape(&r.installation_id)
        );
        if emails {
            let _ = write!(s, "<td class=\"l\">{}</td>", escape(r.email.as_deref().unwrap_or("-")));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    if p.support.count > shown as u64 {
        let _ = write!(
            s,
            "<p class=\"empty\">the latest {shown} of {}; more in <a href=\"/report.json\">/report.json</a> and <code>beacon-collector report</code></p>",
            p.support.count
        );
    }
}

/// Support requests listed on the page (the JSON and `report` carry up to 50 per product).
const SUPPORT_ROWS: usize = 15;

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

fn funnel_table(s: &mut String, keys: &[&str], rows: &[(Vec<String>, &Funnel)]) {
    if rows.is_empty() {
        s.push_str("<p class=\"empty\">no installations</p>");
        return;
    }
    s.push_str("<table><tr>");
    for k in keys {
        let _ = write!(s, "<th class=\"l\">{}</th>", escape(k));
    }
    s.push_str("<th>started</th><th>succeeded</th><th>failed</th><th>abandoned</th><th>running</th><th>success</th><th>median</th><th>p90</th></tr>");
    for (cells, f) in rows {
        s.push_str("<tr>");
        for c in cells {
            let _ = write!(s, "<td class=\"l\">{}</td>", escape(c));
        }
        let rate_color = if f.success_rate >= 0.9 {
            GREEN
        } else if f.success_rate >= 0.7 {
            ORANGE
        } else {
            RED
        };
        let _ = write!(
            s,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"color:{rate_color}\">{}</td><td>{}</td><td>{}</td></tr>",
            f.started,
            f.succeeded,
            f.failed,
            f.abandoned,
            f.running,
            percent(f.success_rate),
            duration(f.median_duration_ms),
            duration(f.p90_duration_ms)
        );
    }
    s.push_str("</table>");
}
