//! The report for people and programs: terminal text, JSON, CSV, and the HTML page.

pub mod csv;
pub mod page;
pub mod public;
pub mod svg;
pub mod text;

use std::borrow::Cow;

use crate::report::{ProductReport, Report, Row};

/// Milliseconds as `850 ms`, `42.1 s` or `3m 05s`; `-` when unknown.
pub fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// A rate (0..1) as a percentage with one decimal.
pub fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Stored text made safe for a terminal: control characters (C0, DEL, C1) and the Unicode
/// bidirectional overrides are shown as escapes (`\u{1b}`) instead of acting on the terminal.
pub fn clean(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// How the report names its window.
pub fn window(report: &Report) -> &str {
    report.since.as_deref().unwrap_or("all time")
}

/// The single-fact breakdowns of a product: title, column name, rows.
pub fn breakdowns(p: &ProductReport) -> [(&'static str, &'static str, &[Row]); 3] {
    [
        ("product version", "version", &p.by_version),
        ("architecture", "arch", &p.by_arch),
        ("container", "container", &p.by_container),
    ]
}

/// Pretty JSON.
pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_percentages() {
        assert_eq!(duration(Some(850)), "850 ms");
        assert_eq!(duration(Some(42_100)), "42.1 s");
        assert_eq!(duration(Some(185_000)), "3m 05s");
        assert_eq!(duration(None), "-");
        assert_eq!(percent(0.8167), "81.7%");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(clean("acme 1.0"), "acme 1.0");
        assert_eq!(clean("\x1b[31mred\x07"), "\\u{1b}[31mred\\u{7}");
        assert_eq!(clean("a\nb\u{9b}c\u{202e}d"), "a\\u{a}b\\u{9b}c\\u{202e}d");
    }
}
