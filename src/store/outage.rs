//! One timeout per install, not per call. When a call from a state directory found its endpoint
//! unreachable (no answer within `--timeout`, or no route), the outage is saved in `state.json`;
//! later calls to the same endpoint within `WINDOW` of the last failure queue their event at once
//! and leave the retry to one detached delivery. The first delivery that gets through ends it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long after the last failed attempt calls keep queueing without trying. Each failed
/// background retry renews it, so a network that stays down costs one `--timeout` per window.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);

/// An endpoint found unreachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// The URL that could not be reached.
    pub url: String,
    /// When the first failure of this outage happened (Unix seconds).
    pub since: u64,
    /// When the latest failure happened (Unix seconds).
    pub last: u64,
    /// The latest failure, as shown to the user.
    pub reason: String,
}

impl Outage {
    /// Whether a call to `url` at `now` should queue without trying. A clock set back before the
    /// last failure ends the outage rather than stretching it.
    pub fn holds(&self, url: &str, now: u64) -> bool {
        self.url == url && now >= self.last && now - self.last < WINDOW.as_secs()
    }

    /// "unreachable for 3 min (no answer within 1s)", as of `now`.
    pub fn summary(&self, now: u64) -> String {
        let secs = now.saturating_sub(self.since);
        let span = if secs < 60 {
            format!("{secs} s")
        } else {
            format!("{} min", secs / 60)
        };
        format!("unreachable for {span} ({})", self.reason)
    }

    /// The outage after another failure at `now`: a continuing one keeps its start.
    pub fn after_failure(previous: Option<&Outage>, url: &str, reason: &str, now: u64) -> Outage {
        let since = previous.filter(|o| o.holds(url, now)).map_or(now, |o| o.since.min(now));
        Outage {
            url: url.to_owned(),
            since,
            last: now,
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://api.segment.io/v1/batch";

    #[test]
    fn holds_for_the_same_endpoint_within_the_window() {
        let outage = Outage::after_failure(None, URL, "no answer within 1s", 1000);
        assert!(outage.holds(URL, 1000));
        assert!(outage.holds(URL, 1000 + WINDOW.as_secs() - 1));
        assert!(!outage.holds(URL, 1000 + WINDOW.as_secs()));
        assert!(
            !outage.holds("https://eu.i.posthog.com/batch/", 1001),
            "another endpoint"
        );
        assert!(!outage.holds(URL, 999), "clock set back");
    }

    #[test]
    fn a_continuing_outage_keeps_its_start_and_a_new_one_starts_over() {
        let first = Outage::after_failure(None, URL, "a", 1000);
        let again = Outage::after_failure(Some(&first), URL, "b", 1100);
        assert_eq!((again.since, again.last, again.reason.as_str()), (1000, 1100, "b"));
        let later = 1100 + WINDOW.as_secs() + 1;
        assert_eq!(Outage::after_failure(Some(&again), URL, "c", later).since, later);
        assert_eq!(again.summary(1130), "unreachable for 2 min (b)");
        assert_eq!(again.summary(1030), "unreachable for 30 s (b)");
    }
}
