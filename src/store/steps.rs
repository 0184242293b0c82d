//! Step bookkeeping between calls: `run` records how long each step took and which one failed;
//! `success` reports the durations (then forgets them) and `support` names the failed step.

use crate::store::state::{Saved, StepTime};

/// Records a finished step; a step run again replaces its earlier time.
pub fn record(saved: &mut Saved, step: &str, duration_ms: u64) {
    saved.steps.retain(|s| s.step != step);
    saved.steps.push(StepTime {
        step: step.to_owned(),
        duration_ms,
    });
}

/// Forgets the steps of a finished installation.
pub fn clear(saved: &mut Saved) {
    saved.steps.clear();
    saved.last_failed_step = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerun_replaces_and_clear_forgets() {
        let mut saved = Saved::default();
        record(&mut saved, "download", 1200);
        record(&mut saved, "unpack", 300);
        record(&mut saved, "download", 1000);
        let steps: Vec<(&str, u64)> = saved.steps.iter().map(|s| (s.step.as_str(), s.duration_ms)).collect();
        assert_eq!(steps, [("unpack", 300), ("download", 1000)]);
        saved.last_failed_step = Some("db".into());
        clear(&mut saved);
        assert_eq!(saved, Saved::default());
    }
}
