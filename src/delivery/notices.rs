//! Version and security notices a collector may put in its responses
//! (`{"latest_version": "1.4.2", "notices": ["…"]}`): each is printed once, then remembered.

use serde::Deserialize;

use crate::store::state::StateDir;
use crate::ui::{self, Ui};

/// Notices remembered, so an old one is not shown again; the oldest are forgotten past this.
const REMEMBERED: usize = 50;
/// Longest notice shown, in characters.
const MAX_NOTICE: usize = 300;
/// Longest `latest_version` announced, in bytes.
const MAX_VERSION: usize = 40;

#[derive(Debug, Default, Deserialize)]
struct Fields {
    latest_version: Option<String>,
    #[serde(default)]
    notices: Vec<String>,
}

/// Prints what the responses announce and has not been shown yet: a newer product version than
/// `current`, and any notice text. Responses without these fields change nothing.
pub fn show(responses: &[Vec<u8>], product: &str, current: Option<&str>, state: Option<&StateDir>, ui: Ui) {
    if ui.quiet() {
        return;
    }
    let fields: Vec<Fields> = responses
        .iter()
        .filter_map(|body| serde_json::from_slice(body).ok())
        .collect();
    let latest = fields
        .iter()
        .filter_map(|f| f.latest_version.as_deref())
        .rfind(|v| is_version(v));
    // Server text, shown on the user's terminal: plain and bounded, compared and saved as shown.
    let notices: Vec<String> = fields
        .iter()
        .flat_map(|f| f.notices.iter().map(|n| ui::plain(n, MAX_NOTICE)))
        .collect();
    if latest.is_none() && notices.is_empty() {
        return;
    }
    let saved = state.map(|s| s.load().0).unwrap_or_default();
    let mut lines = Vec::new();
    let newer = match (latest, current) {
        (Some(latest), Some(current)) if is_newer(latest, current) => Some(latest),
        _ => None,
    }
    .filter(|latest| saved.notified_version.as_deref() != Some(*latest));
    if let (Some(latest), Some(current)) = (newer, current) {
        lines.push(format!(
            "A newer version of {product} is available: {latest} (you have {current})"
        ));
    }
    let fresh: Vec<&str> = notices
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty() && !saved.notices_shown.iter().any(|s| s == n))
        .collect();
    lines.extend(fresh.iter().map(|n| format!("{product}: {n}")));
    if lines.is_empty() {
        return;
    }
    for line in &lines {
        ui.say(line);
    }
    if let Some(state) = state {
        let _ = state.update(|saved| {
            if let Some(latest) = newer {
                saved.notified_version = Some(latest.to_owned());
            }
            saved.notices_shown.extend(fresh.iter().map(|n| (*n).to_owned()));
            let excess = saved.notices_shown.len().saturating_sub(REMEMBERED);
            saved.notices_shown.drain(..excess);
        });
    }
}

/// Whether a `latest_version` from the server looks like a version (`1.4.2`, `v2.0.0-rc.1+b5`):
/// anything else is not announced.
fn is_version(v: &str) -> bool {
    (1..=MAX_VERSION).contains(&v.len())
        && v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// Compares dotted versions part by part, numbers as numbers (`1.10.0` > `1.9.2`, `v2` = `2`).
pub fn is_newer(candidate: &str, current: &str) -> bool {
    fn parts(v: &str) -> Vec<Part<'_>> {
        v.trim()
            .trim_start_matches(['v', 'V'])
            .split(['.', '-', '+'])
            .map(|p| p.parse::<u64>().map_or(Part::Text(p), Part::Num))
            .collect()
    }
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Part<'a> {
        Text(&'a str),
        Num(u64),
    }
    parts(candidate) > parts(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_order() {
        assert!(is_newer("1.4.2", "1.3.0"));
        assert!(is_newer("1.10.0", "1.9.9"));
        assert!(is_newer("v2.0", "1.99"));
        assert!(!is_newer("1.3.0", "1.3.0"));
        assert!(!is_newer("1.2", "1.3.0"));
    }

    #[test]
    fn only_versions_are_announced() {
        for v in ["1.4.2", "v2.0.0-rc.1+b5", "2026.11"] {
            assert!(is_version(v), "{v}");
        }
        for v in ["", "latest", "9.9.9\u{1b}[32m", "1.0 run: curl", &"1".repeat(41)] {
            assert!(!is_version(v), "{v}");
        }
    }
}
