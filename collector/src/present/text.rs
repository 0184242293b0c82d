//! The report as aligned text tables for a terminal.

use std::fmt::Write;

use super::{clean, duration, percent};
use crate::report::{Funnel, Report};

fn funnel_cells(f: &Funnel) -> [String; 8] {
    [
        f.started.to_string(),
        f.succeeded.to_string(),
        f.failed.to_string(),
        f.abandoned.to_string(),
        f.running.to_string(),
        percent(f.success_rate),
        duration(f.median_duration_ms),
        duration(f.p90_duration_ms),
    ]
}

const FUNNEL_HEAD: [&str; 8] = [
    "started",
    "succeeded",
    "failed",
    "abandoned",
    "running",
    "success",
    "median",
    "p90",
];

/// Aligned text tables, one block per product.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "beacon-collector report ({}, generated {}; CI installations {}, agent installations {})",
        super::window(report),
        report.generated_at,
        if report.ci_included { "included" } else { "shown apart" },
        if report.agents_included {
            "included"
        } else {
            "shown apart"
        }
    );
    for f in &report.forwarding {
        let state = match &f.failing_since {
            Some(since) => format!("FAILING since {since}: {}", f.last_error.as_deref().unwrap_or("-")),
            None => "ok".into(),
        };
        let _ = writeln!(
            out,
            "forwarding to {} ({}): {state}; {} forwarded, {} queued, {} refused",
            f.backend, f.url, f.forwarded, f.queued, f.rejected
        );
    }
    if report.products.is_empty() {
        let _ = writeln!(out, "\nno events yet");
    }
    for p in &report.products {
        let _ = writeln!(out, "\n== {} ==", clean(&p.product));
        let mut rows = vec![head(&[""], &FUNNEL_HEAD)];
        rows[0].extend(["active 24h".to_string(), "support".to_string()]);
        let mut row = vec!["installations".to_string()];
        row.extend(funnel_cells(&p.installations));
        row.push(p.active_24h.to_string());
        row.push(p.support.count.to_string());
        rows.push(row);
        for (name, funnel) in [("CI", &p.ci), ("agents", &p.agents)] {
            let mut row = vec![name.to_string()];
            row.extend(funnel_cells(funnel));
            rows.push(row);
        }
        out.push_str(&grid(&rows));
        let _ = writeln!(out, "attempts: {}", super::attempts(p));
        let _ = writeln!(out, "beacon unavailable: {}", super::beacon_unavailable(p));
        if let Some(emails) = &p.support.emails {
            let _ = writeln!(
                out,
                "support emails: {}",
                if emails.is_empty() {
                    "-".into()
                } else {
                    clean(&emails.join(", ")).into_owned()
                }
            );
        }

        let _ = writeln!(out, "\nby OS");
        let mut rows = vec![head(&["os", "version"], &FUNNEL_HEAD)];
        for r in &p.by_os {
            let mut row = vec![r.os.clone(), r.os_version.clone()];
            row.extend(funnel_cells(&r.funnel));
            rows.push(row);
        }
        out.push_str(&grid(&rows));
        for (title, column, list) in super::breakdowns(p) {
            let _ = writeln!(out, "\nby {title}");
            let mut rows = vec![head(&[column], &FUNNEL_HEAD)];
            for r in list {
                let mut row = vec![r.value.clone()];
                row.extend(funnel_cells(&r.funnel));
                rows.push(row);
            }
            out.push_str(&grid(&rows));
        }

        let _ = writeln!(out, "\ntop failing steps");
        let mut rows = vec![vec![
            "step".into(),
            "exit code".into(),
            "errors".into(),
            "installations".into(),
            "top messages".into(),
        ]];
        for s in &p.failing_steps {
            let messages: Vec<String> = s
                .messages
                .iter()
                .map(|m| format!("{} ({})", if m.message.is_empty() { "-" } else { &m.message }, m.count))
                .collect();
            rows.push(vec![
                s.step.clone(),
                s.exit_code.map_or("-".into(), |c| c.to_string()),
                s.count.to_string(),
                s.installations.to_string(),
                messages.join("; "),
            ]);
        }
        out.push_str(&grid(&rows));

        let _ = writeln!(out, "\nlatest support requests");
        let emails = p.support.emails.is_some();
        let mut head = vec!["time".into(), "version".into(), "step".into(), "installation".into()];
        if emails {
            head.push("email".into());
        }
        let mut rows = vec![head];
        for r in &p.support.requests {
            let mut row = vec![
                r.time.clone(),
                r.product_version.clone().unwrap_or_else(|| "-".into()),
                r.step.clone().unwrap_or_else(|| "-".into()),
                r.installation_id.clone(),
            ];
            if emails {
                row.push(r.email.clone().unwrap_or_else(|| "-".into()));
            }
            rows.push(row);
        }
        out.push_str(&grid(&rows));

        let _ = writeln!(out, "\nper day");
        let mut rows = vec![vec![
            "date".into(),
            "started".into(),
            "succeeded".into(),
            "failed".into(),
        ]];
        for d in &p.daily {
            rows.push(vec![
                d.date.clone(),
                d.started.to_string(),
                d.succeeded.to_string(),
                d.failed.to_string(),
            ]);
        }
        out.push_str(&grid(&rows));
    }
    if let Some(other) = &report.other_products {
        let _ = writeln!(out, "\n== {} more products (not listed) ==", other.products);
        let mut rows = vec![head(&[""], &FUNNEL_HEAD)];
        let mut row = vec!["installations".to_string()];
        row.extend(funnel_cells(&other.installations));
        rows.push(row);
        out.push_str(&grid(&rows));
    }
    out
}

fn head(first: &[&str], rest: &[&str]) -> Vec<String> {
    first.iter().chain(rest).map(|s| s.to_string()).collect()
}

/// Left-aligned first column(s) of text, right-aligned numbers, two spaces apart.
fn grid(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| clean(cell).into_owned()).collect())
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let numeric = cell.starts_with(|ch: char| ch.is_ascii_digit()) || cell == "-";
            if numeric && c > 0 {
                let _ = write!(line, "{cell:>w$}  ", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
