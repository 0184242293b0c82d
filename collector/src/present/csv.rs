//! The report as one CSV table.

use std::fmt::Write;

use crate::report::{Funnel, Report};

/// One CSV table; the `section` column says which part of the report a row belongs to.
pub fn csv(report: &Report) -> String {
    let mut out = String::from(
        "section,product,key,subkey,started,succeeded,failed,abandoned,success_rate,median_duration_ms,p90_duration_ms,count\n",
    );
    let f = |f: &Funnel| {
        format!(
            "{},{},{},{},{},{},{},",
            f.started,
            f.succeeded,
            f.failed,
            f.abandoned,
            f.success_rate,
            f.median_duration_ms.map_or(String::new(), |v| v.to_string()),
            f.p90_duration_ms.map_or(String::new(), |v| v.to_string())
        )
    };
    for p in &report.products {
        let prod = field(&p.product);
        let _ = writeln!(out, "installations,{prod},,,{}", f(&p.installations));
        for r in &p.by_os {
            let _ = writeln!(
                out,
                "os,{prod},{},{},{}",
                field(&r.os),
                field(&r.os_version),
                f(&r.funnel)
            );
        }
        for r in &p.by_version {
            let _ = writeln!(out, "version,{prod},{},,{}", field(&r.product_version), f(&r.funnel));
        }
        for s in &p.failing_steps {
            let code = s.exit_code.map_or(String::new(), |c| c.to_string());
            let _ = writeln!(out, "failing_step,{prod},{},{code},,,,,,,,{}", field(&s.step), s.count);
        }
        let _ = writeln!(out, "support,{prod},,,,,,,,,,{}", p.support.count);
        for e in p.support.emails.iter().flatten() {
            let _ = writeln!(out, "support_email,{prod},{},,,,,,,,,1", field(e));
        }
        let _ = writeln!(out, "active_24h,{prod},,,,,,,,,,{}", p.active_24h);
        for d in &p.daily {
            let _ = writeln!(
                out,
                "day,{prod},{},,{},{},{},,,,,",
                d.date, d.started, d.succeeded, d.failed
            );
        }
    }
    out
}

/// Quotes a CSV field when needed.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted() {
        assert_eq!(field("a,\"b"), "\"a,\"\"b\"");
    }
}
