//! Time as the collector uses it: milliseconds since the Unix epoch, printed as UTC RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The last millisecond `humantime` can print (9999-12-31T23:59:59.999Z).
const MAX_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The instant `ms` after the epoch, clamped to what can be printed: events may carry any
/// timestamp, and times before 1970 show as 1970-01-01.
fn instant(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.clamp(0, MAX_MS).unsigned_abs())
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01, UTC).
pub fn date(day: i64) -> String {
    let mut text = iso_seconds(day.saturating_mul(DAY_MS));
    text.truncate("YYYY-MM-DD".len());
    text
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso(ms: i64) -> String {
    humantime::format_rfc3339_millis(instant(ms)).to_string()
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds).
pub fn iso_seconds(ms: i64) -> String {
    humantime::format_rfc3339_seconds(instant(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso(1_795_428_000_123), "2026-11-23T10:00:00.123Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_seconds(1_795_428_000_999), "2026-11-23T10:00:00Z");
        assert_eq!(iso_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(date(1_795_428_000_123 / DAY_MS), "2026-11-23");
        assert_eq!(date(0), "1970-01-01");
    }

    #[test]
    fn out_of_range_times_are_clamped_not_a_panic() {
        assert_eq!(date(-5), "1970-01-01");
        assert_eq!(date(i64::MAX), "9999-12-31");
        assert_eq!(iso_seconds(i64::MIN), "1970-01-01T00:00:00Z");
    }
}
