//! The report as one CSV table: one row per line of the report, the `section` column says which.
//!
//! Stored text is made inert: control characters are escaped, and a cell that a spreadsheet would
//! take for a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`.

use serde::Serialize;

use super::clean;
use crate::report::{Funnel, OTHER, Report};

/// Stored text as a CSV cell: escaped, and never a formula.
fn text(value: &str) -> String {
    let value = clean(value);
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.into_owned()
    }
}

/// One CSV row; the header is made of these field names, empty cells are `None`.
#[derive(Debug, Default, Serialize)]
struct Row<'a> {
    section: &'a str,
    product: String,
    key: Option<String>,
    subkey: Option<String>,
    started: Option<u64>,
    succeeded: Option<u64>,
    failed: Option<u64>,
    abandoned: Option<u64>,
    running: Option<u64>,
    /// Written as Rust prints the rate (`1`, `0.8616`), not as a float serialiser would (`1.0`).
    success_rate: Option<String>,
    median_duration_ms: Option<i64>,
    p90_duration_ms: Option<i64>,
    count: Option<u64>,
    time: Option<&'a str>,
    installation_id: Option<String>,
    email: Option<String>,
}

impl<'a> Row<'a> {
    fn new(section: &'a str, product: &str) -> Row<'a> {
        Row {
            section,
            product: text(product),
            ..Row::default()
        }
    }

    fn funnel(self, f: &Funnel) -> Row<'a> {
        Row {
            started: Some(f.started),
            succeeded: Some(f.succeeded),
            failed: Some(f.failed),
            abandoned: Some(f.abandoned),
            running: Some(f.running),
            success_rate: Some(f.success_rate.to_string()),
            median_duration_ms: f.median_duration_ms,
            p90_duration_ms: f.p90_duration_ms,
            ..self
        }
    }

    fn count(self, n: u64) -> Row<'a> {
        Row { count: Some(n), ..self }
    }
}

/// The rows of the whole report, in report order.
fn rows(report: &Report) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    for p in &report.products {
        let prod = p.product.as_str();
        rows.push(Row::new("installations", prod).funnel(&p.installations));
        rows.push(Row::new("ci", prod).funnel(&p.ci));
        rows.push(Row::new("agents", prod).funnel(&p.agents));
        // Attempts by outcome; `count` is the installations recovered after a failed attempt.
        rows.push(Row {
            started: Some(p.attempts.started),
            succeeded: Some(p.attempts.succeeded),
            failed: Some(p.attempts.failed),
            count: Some(p.installations.recovered),
            ..Row::new("attempts", prod)
        });
        if p.beacon_unavailable > 0 {
            rows.push(Row::new("beacon_unavailable", prod).count(p.beacon_unavailable));
        }
        for r in &p.by_os {
            rows.push(
                Row {
                    key: Some(text(&r.os)),
                    subkey: Some(text(&r.os_version)),
                    ..Row::new("os", prod)
                }
                .funnel(&r.funnel),
            );
        }
        for (section, list) in [
            ("version", &p.by_version),
            ("arch", &p.by_arch),
            ("container", &p.by_container),
            ("install_method", &p.by_install_method),
        ] {
            for r in list {
                rows.push(
                    Row {
                        key: Some(text(&r.value)),
                        ..Row::new(section, prod)
                    }
                    .funnel(&r.funnel),
                );
            }
        }
        for s in &p.failing_steps {
            rows.push(
                Row {
                    key: Some(text(&s.step)),
                    subkey: s.exit_code.map(|c| c.to_string()),
                    ..Row::new("failing_step", prod)
                }
                .count(s.count),
            );
            for m in &s.messages {
                rows.push(
                    Row {
                        key: Some(text(&s.step)),
                        subkey: Some(text(&m.message)),
                        ..Row::new("error_message", prod)
                    }
                    .count(m.count),
                );
            }
        }
        rows.push(Row::new("support", prod).count(p.support.count));
        for e in p.support.emails.iter().flatten() {
            rows.push(
                Row {
                    key: Some(text(e)),
                    ..Row::new("support_email", prod)
                }
                .count(1),
            );
        }
        for r in &p.support.requests {
            rows.push(
                Row {
                    key: r.product_version.as_deref().map(text),
                    subkey: r.step.as_deref().map(text),
                    time: Some(&r.time),
                    installation_id: Some(text(&r.installation_id)),
                    email: r.email.as_deref().map(text),
                    ..Row::new("support_request", prod)
                }
                .count(1),
            );
        }
        rows.push(Row::new("active_24h", prod).count(p.active_24h));
        for d in &p.daily {
            rows.push(Row {
                key: Some(d.date.clone()),
                started: Some(d.started),
                succeeded: Some(d.succeeded),
                failed: Some(d.failed),
                ..Row::new("day", prod)
            });
        }
    }
    if let Some(other) = &report.other_products {
        rows.push(
            Row::new("other_products", OTHER)
                .funnel(&other.installations)
                .count(other.products),
        );
    }
    rows
}

/// The report as CSV text, header first (also when there is nothing else).
pub fn render(report: &Report) -> String {
    let rows = rows(report);
    let empty = rows.is_empty();
    let mut out = csv::Writer::from_writer(Vec::new());
    // The writer puts the header before the first row; an empty report writes a blank row only
    // to get the header, and drops it below. Writing to memory cannot fail.
    for row in rows.into_iter().chain(empty.then(Row::default)) {
        let _ = out.serialize(row);
    }
    let text = String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default();
    if empty {
        text.lines()
            .next()
            .map(|header| format!("{header}\n"))
            .unwrap_or_default()
    } else {
        text
    }
}
