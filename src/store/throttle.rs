//! `--once`, `--min-interval` and `heartbeat --every`: whether an event is due, and the record of
//! when it was last handed to delivery (in `state.json`). Held-back calls exit 0 and send nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::state::Saved;

/// Limits on how often an event is sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throttle {
    /// Send the event only once per installation ID.
    pub once: bool,
    /// Send the event at most once per interval.
    pub min_interval: Option<Duration>,
}

/// Why an event is held back, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Due,
    /// `--once`: already sent for this installation ID.
    AlreadySent,
    /// `--min-interval`: sent less than the interval ago.
    TooSoon,
}

/// The `sent_once` key: one entry per installation ID and event name.
pub fn once_key(installation_id: &str, event: &str) -> String {
    format!("{installation_id} {event}")
}

/// Whether an event last sent at `last` (Unix seconds) may be sent again at `now`. A time in the
/// future (the clock was set back) counts as long ago, so a wrong clock never silences an event.
pub fn due(last: Option<u64>, now: u64, interval: Duration) -> bool {
    match last {
        Some(last) if last <= now => now - last >= interval.as_secs(),
        _ => true,
    }
}

/// Decides from the saved record; pure.
pub fn check(saved: &Saved, rules: Throttle, event: &str, installation_id: &str, now: u64) -> Verdict {
    if rules.once && saved.sent_once.contains_key(&once_key(installation_id, event)) {
        return Verdict::AlreadySent;
    }
    if let Some(interval) = rules.min_interval
        && !due(saved.last_sent.get(event).copied(), now, interval)
    {
        return Verdict::TooSoon;
    }
    Verdict::Due
}

/// Records that the event was handed to delivery.
pub fn mark(saved: &mut Saved, rules: Throttle, event: &str, installation_id: &str, now: u64) {
    if rules.once {
        saved.sent_once.insert(once_key(installation_id, event), now);
    }
    if rules.min_interval.is_some() {
        saved.last_sent.insert(event.to_owned(), now);
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn intervals() {
        assert!(due(None, 100, HOUR));
        assert!(!due(Some(100), 100 + 3599, HOUR));
        assert!(due(Some(100), 100 + 3600, HOUR));
        assert!(due(Some(10_000), 100, HOUR), "a clock set back does not silence events");
    }

    #[test]
    fn once_is_per_installation_and_event() {
        let rules = Throttle {
            once: true,
            min_interval: None,
        };
        let mut saved = Saved::default();
        assert_eq!(check(&saved, rules, "Installation Success", "id-1", 5), Verdict::Due);
        mark(&mut saved, rules, "Installation Success", "id-1", 5);
        assert_eq!(
            check(&saved, rules, "Installation Success", "id-1", 99_999_999),
            Verdict::AlreadySent
        );
        assert_eq!(check(&saved, rules, "Installation Success", "id-2", 6), Verdict::Due);
        assert_eq!(check(&saved, rules, "Installation Started", "id-1", 6), Verdict::Due);
        assert!(saved.last_sent.is_empty(), "--once alone records no interval");
    }

    #[test]
    fn min_interval_is_per_event() {
        let rules = Throttle {
            once: false,
            min_interval: Some(12 * HOUR),
        };
        let mut saved = Saved::default();
        mark(&mut saved, rules, "Instance Active", "id", 1000);
        assert_eq!(
            check(&saved, rules, "Instance Active", "id", 1000 + 3600),
            Verdict::TooSoon
        );
        assert_eq!(
            check(&saved, rules, "Instance Active", "other-id", 1000 + 3600),
            Verdict::TooSoon
        );
        assert_eq!(check(&saved, rules, "Installation Started", "id", 1001), Verdict::Due);
        assert_eq!(
            check(&saved, rules, "Instance Active", "id", 1000 + 12 * 3600),
            Verdict::Due
        );
        assert!(saved.sent_once.is_empty());
    }
}
