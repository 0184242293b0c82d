//! Step bookkeeping between calls: `run` records how long each step took and which one failed;
//! `success` reports the durations (then forgets them) and `support` names the failed step.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::commands::Ctx;
use crate::event;
use crate::store::state::{Saved, StepTime};

/// `total_duration_ms` and `step_durations_ms` for `Installation Success`; empty without steps.
pub fn success_fields(steps: &[StepTime]) -> Map<String, Value> {
    let mut fields = Map::new();
    if steps.is_empty() {
        return fields;
    }
    let total: u64 = steps.iter().map(|s| s.duration_ms).sum();
    let per_step: Map<String, Value> = steps.iter().map(|s| (s.step.clone(), s.duration_ms.into())).collect();
    fields.insert("total_duration_ms".into(), total.into());
    fields.insert("step_durations_ms".into(), per_step.into());
    fields
}

/// Records a finished step; a step run again replaces its earlier time.
pub fn record(saved: &mut Saved, step: &str, duration_ms: u64) {
    saved.steps.retain(|s| s.step != step);
    saved.steps.push(StepTime {
        step: step.to_owned(),
        duration_ms,
    });
}

impl Ctx<'_> {
    /// Changes the saved state when telemetry is on (a disabled beacon keeps no records), warning
    /// when it cannot be written.
    fn remember(&self, change: impl FnOnce(&mut Saved)) {
        if !self.decision.enabled() || self.settings.dry_run {
            return;
        }
        let Some(state) = &self.settings.state_dir else { return };
        if let Err(e) = state.update(change) {
            self.ui
                .warn(&format!("cannot record step times in {}: {e}", state.path().display()));
        }
    }

    /// Records that `step` succeeded after `duration_ms`.
    pub(crate) fn record_step(&self, step: &str, duration_ms: u64) {
        self.remember(|saved| record(saved, step, duration_ms));
    }

    /// Sends `Installation Error` and remembers the failed step for `support`.
    pub(crate) fn send_error(&self, fields: Map<String, Value>) -> Result<ExitCode> {
        let step = fields.get("step").and_then(Value::as_str).map(str::to_owned);
        let code = self.send(event::ERROR, fields)?;
        if let Some(step) = step {
            self.remember(|saved| saved.last_failed_step = Some(step));
        }
        Ok(code)
    }

    /// Sends `Installation Success` with the recorded step durations, then forgets them.
    pub(crate) fn send_success(&self) -> Result<ExitCode> {
        let fields = success_fields(&self.saved.steps);
        let code = self.send(event::SUCCESS, fields)?;
        self.remember(|saved| {
            saved.steps.clear();
            saved.last_failed_step = None;
        });
        Ok(code)
    }

    /// Sends `Installation Support` with the address, the user's message, and the step named by
    /// the last `Installation Error`, if any.
    pub(crate) fn send_support(&self, email: String, message: Option<&str>) -> Result<ExitCode> {
        let mut fields = Map::new();
        fields.insert("email".into(), email.into());
        if let Some(message) = message {
            fields.insert("message".into(), event::trim_message(message).into());
        }
        if let Some(step) = self.last_failed_step() {
            fields.insert("step".into(), step.into());
        }
        self.send(event::SUPPORT, fields)
    }

    /// The step named by the last `Installation Error`, if any.
    pub(crate) fn last_failed_step(&self) -> Option<String> {
        self.saved.last_failed_step.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_sum_and_rerun_replaces() {
        let mut saved = Saved::default();
        assert!(success_fields(&saved.steps).is_empty());
        record(&mut saved, "download", 1200);
        record(&mut saved, "unpack", 300);
        record(&mut saved, "download", 1000);
        assert_eq!(
            Value::Object(success_fields(&saved.steps)),
            json!({"total_duration_ms": 1300, "step_durations_ms": {"download": 1000, "unpack": 300}})
        );
    }
}
