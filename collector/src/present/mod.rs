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

/// Control characters (C0, DEL, C1) and the Unicode bidirectional overrides: stored text that
/// could act on a terminal or reorder what a reader sees.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Stored text made safe for a terminal: control characters (C0, DEL, C1) and the Unicode
/// bidirectional overrides are shown as escapes (`\u{1b}`) instead of acting on the terminal.
pub fn clean(text: &str) -> Cow<'_, str> {
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
pub fn breakdowns(p: &ProductReport) -> [(&'static str, &'static str, &[Row]); 4] {
    [
        ("product version", "version", &p.by_version),
        ("architecture", "arch", &p.by_arch),
        ("container", "container", &p.by_container),
        ("install method", "method", &p.by_install_method),
    ]
}

/// The attempts line: `3 started, 2 succeeded, 1 failed; 1 installation recovered after a failed attempt`.
pub fn attempts(p: &ProductReport) -> String {
    let a = &p.attempts;
    format!(
        "{} started, {} succeeded, {} failed; {} recovered after a failed attempt",
        a.started, a.succeeded, a.failed, p.installations.recovered
    )
}

/// The beacon-unavailable line: installers that could not fetch the beacon.
pub fn beacon_unavailable(p: &ProductReport) -> String {
    format!(
        "{} installers could not fetch the beacon (not counted as installations)",
        p.beacon_unavailable
    )
}

/// Pretty JSON.
pub fn json(report: &Report) -> String {
    let mut s = json_text(report, true);
    s.push('\n');
    s
}

/// `value` as JSON in which DEL, the C1 controls and the bidirectional overrides are escaped too
/// (`\u009b`), as JSON escapes C0: serde_json writes them raw, and a terminal or a viewer showing
/// the JSON would obey them. JSON has those characters only inside strings, so each is escaped
/// wherever it is. (C0 is left to serde_json: outside strings it is the pretty layout's whitespace.)
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    let text = text.unwrap_or_else(|e| json_text(&serde_json::json!({"error": e.to_string()}), pretty));
    let escape = |c: char| c >= '\u{7f}' && unsafe_char(c);
    if !text.contains(escape) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
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

    #[test]
    fn json_escapes_del_c1_and_bidi_overrides() {
        let value = serde_json::json!({"m\u{85}": "a\u{7f}b\u{9b}31mc\u{202e}d\u{1b}é"});
        assert!(json_text(&value, true).starts_with("{\n  \"m\\u0085\": "));
        let text = json_text(&value, false);
        assert_eq!(text, r#"{"m\u0085":"a\u007fb\u009b31mc\u202ed\u001bé"}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
    }
}
