//! The time window of a report: `since 30d`, or `from`/`to` days (UTC, both included).

use crate::clock::DAY_MS;

/// A report window such as `30d`: its length in milliseconds, and how the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    label: String,
    ms: i64,
}

impl Since {
    /// Parses a humantime duration (`30d`, `12h`), refusing lengths that do not fit in
    /// milliseconds since the epoch (which would wrap around and empty the report).
    pub fn parse(text: &str) -> Result<Since, String> {
        let d = humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
        let ms = i64::try_from(d.as_millis())
            .map_err(|_| format!("{text} is too long a window; leave it out to report all time"))?;
        Ok(Since {
            label: spaced(&humantime::format_duration(d).to_string()),
            ms,
        })
    }
}

/// `30days 12h` → `30 days 12h`: humantime glues word units to their number.
fn spaced(duration: &str) -> String {
    let parts: Vec<String> = duration
        .split(' ')
        .map(|part| match part.find(|c: char| c.is_ascii_alphabetic()) {
            Some(unit) if part.len() - unit > 2 => format!("{} {}", &part[..unit], &part[unit..]),
            _ => part.to_string(),
        })
        .collect();
    parts.join(" ")
}

/// A day, `YYYY-MM-DD` (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    text: String,
    start_ms: i64,
}

impl Day {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Day, String> {
        let bad = || format!("invalid date {text:?}: use YYYY-MM-DD");
        let t = humantime::parse_rfc3339(&format!("{}T00:00:00Z", text.trim())).map_err(|_| bad())?;
        let d = t.duration_since(std::time::UNIX_EPOCH).map_err(|_| bad())?;
        Ok(Day {
            text: text.trim().to_string(),
            start_ms: i64::try_from(d.as_millis()).map_err(|_| bad())?,
        })
    }
}

/// A resolved window: installations first seen, and events sent, in `[since_ms, until_ms)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// Start (ms since the epoch), if bounded.
    pub since_ms: Option<i64>,
    /// End, exclusive (ms since the epoch), if bounded.
    pub until_ms: Option<i64>,
    /// How the report names it, e.g. `last 30days` or `2026-11-01 – 2026-11-20`.
    pub label: Option<String>,
}

/// The window of a duration before `now_ms`, or of days; the error names what is wrong.
pub fn resolve(since: Option<&Since>, from: Option<&Day>, to: Option<&Day>, now_ms: i64) -> Result<Window, String> {
    if let Some(since) = since {
        if from.is_some() || to.is_some() {
            return Err("give either a duration (since) or days (from, to), not both".into());
        }
        return Ok(Window {
            since_ms: Some(now_ms.saturating_sub(since.ms)),
            until_ms: None,
            label: Some(format!("last {}", since.label)),
        });
    }
    if let (Some(f), Some(t)) = (from, to)
        && f.start_ms > t.start_ms
    {
        return Err(format!("from {} is after to {}", f.text, t.text));
    }
    let label = match (from, to) {
        (None, None) => None,
        (Some(f), Some(t)) => Some(format!("{} – {}", f.text, t.text)),
        (Some(f), None) => Some(format!("since {}", f.text)),
        (None, Some(t)) => Some(format!("until {}", t.text)),
    };
    Ok(Window {
        since_ms: from.map(|d| d.start_ms),
        until_ms: to.map(|d| d.start_ms.saturating_add(DAY_MS)),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    #[test]
    fn durations_and_days() {
        assert_eq!(resolve(None, None, None, NOW), Ok(Window::default()));
        let w = resolve(Some(&Since::parse("1d").unwrap()), None, None, NOW).unwrap();
        assert_eq!(
            (w.since_ms, w.until_ms, w.label.as_deref()),
            (Some(NOW - DAY_MS), None, Some("last 1 day"))
        );
        let w = resolve(None, Some(&day("2026-11-01")), Some(&day("2026-11-20")), NOW).unwrap();
        assert_eq!(w.since_ms, Some(1_793_491_200_000));
        assert_eq!(w.until_ms, Some(1_795_219_200_000), "the last day is included");
        assert_eq!(w.label.as_deref(), Some("2026-11-01 – 2026-11-20"));
    }

    #[test]
    fn labels_read_as_words() {
        assert_eq!(Since::parse("30d").unwrap().label, "30 days");
        assert_eq!(Since::parse("36h").unwrap().label, "1 day 12h");
        assert_eq!(Since::parse("1y").unwrap().label, "1 year");
    }

    #[test]
    fn bad_values_are_named() {
        assert!(Since::parse("500000000y").unwrap_err().contains("too long"));
        assert!(Day::parse("11/01/2026").unwrap_err().contains("YYYY-MM-DD"));
        assert!(Day::parse("2026-13-01").is_err());
        let (a, b) = (day("2026-11-20"), day("2026-11-01"));
        assert!(resolve(None, Some(&a), Some(&b), NOW).unwrap_err().contains("after"));
        let since = Since::parse("1d").unwrap();
        assert!(
            resolve(Some(&since), Some(&b), None, NOW)
                .unwrap_err()
                .contains("not both")
        );
    }
}
