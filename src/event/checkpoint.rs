//! What a command reports, typed: built once from the command's input and turned into event
//! properties in one place, whatever the protocol.

use beacon_wire::prop;
use serde_json::{Map, Value};

use crate::event::branding;
use crate::store::state::StepTime;

/// Longest free-text message sent, in characters.
pub const MAX_MESSAGE: usize = 500;

/// One report of an installer or an installed instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
    /// The installer began.
    Started,
    /// The installer finished; carries the steps `run` recorded since the last success.
    Success {
        /// Recorded steps and their durations.
        steps: Vec<StepTime>,
    },
    /// A step failed.
    Error {
        /// Name of the step.
        step: Option<String>,
        /// Its exit code.
        exit_code: Option<i64>,
        /// A short description (trimmed to `MAX_MESSAGE`).
        message: Option<String>,
        /// How long it ran (`run` only).
        duration_ms: Option<u64>,
    },
    /// The user asked for help.
    Support {
        /// The address the user typed in.
        email: String,
        /// What the user needs help with.
        message: Option<String>,
        /// The step named by the last error, if any.
        step: Option<String>,
    },
    /// Keep-alive of a running instance (`heartbeat`).
    Heartbeat,
    /// Any other event (`track`).
    Custom {
        /// Event name.
        name: String,
        /// Properties, in the order given.
        props: Vec<(String, Value)>,
    },
}

impl Checkpoint {
    /// Whether this reports a failure or asks for help: what the errors-only level sends.
    pub fn is_error_report(&self) -> bool {
        matches!(self, Checkpoint::Error { .. } | Checkpoint::Support { .. })
    }

    /// The event name (the checkpoints' names can be renamed by a branded build).
    pub fn name(&self) -> &str {
        match self {
            Checkpoint::Started => branding::EVENT_STARTED,
            Checkpoint::Success { .. } => branding::EVENT_SUCCESS,
            Checkpoint::Error { .. } => branding::EVENT_ERROR,
            Checkpoint::Support { .. } => branding::EVENT_SUPPORT,
            Checkpoint::Heartbeat => beacon_wire::event::INSTANCE_ACTIVE,
            Checkpoint::Custom { name, .. } => name,
        }
    }

    /// The checkpoint's own properties, added after the machine facts.
    pub fn properties(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                fields.insert(key.to_owned(), value);
            }
        };
        match self {
            Checkpoint::Started | Checkpoint::Heartbeat => {}
            Checkpoint::Success { steps } if steps.is_empty() => {}
            Checkpoint::Success { steps } => {
                let total: u64 = steps.iter().map(|s| s.duration_ms).sum();
                let per_step: Map<String, Value> =
                    steps.iter().map(|s| (s.step.clone(), s.duration_ms.into())).collect();
                put(prop::TOTAL_DURATION_MS, Some(total.into()));
                put(prop::STEP_DURATIONS_MS, Some(per_step.into()));
            }
            Checkpoint::Error {
                step,
                exit_code,
                message,
                duration_ms,
            } => {
                put(prop::STEP, step.clone().map(Value::from));
                put(prop::EXIT_CODE, exit_code.map(Value::from));
                put(prop::MESSAGE, message.as_deref().map(|m| trim_message(m).into()));
                put(prop::DURATION_MS, duration_ms.map(Value::from));
            }
            Checkpoint::Support { email, message, step } => {
                put(prop::EMAIL, Some(email.clone().into()));
                put(prop::MESSAGE, message.as_deref().map(|m| trim_message(m).into()));
                put(prop::STEP, step.clone().map(Value::from));
            }
            Checkpoint::Custom { props, .. } => fields.extend(props.iter().cloned()),
        }
        fields
    }
}

/// Masks URL passwords and email addresses in a message (`scrub`), then cuts it to `MAX_MESSAGE`
/// characters (never inside a character).
pub fn trim_message(message: &str) -> String {
    super::scrub::scrub(message.trim()).chars().take(MAX_MESSAGE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_sums_the_steps() {
        let none = Checkpoint::Success { steps: Vec::new() };
        assert!(none.properties().is_empty());
        let steps = [("download", 1000), ("unpack", 300)]
            .map(|(step, duration_ms)| StepTime {
                step: step.into(),
                duration_ms,
            })
            .to_vec();
        assert_eq!(
            Value::Object(Checkpoint::Success { steps }.properties()),
            json!({"total_duration_ms": 1300, "step_durations_ms": {"download": 1000, "unpack": 300}})
        );
    }

    #[test]
    fn error_and_support_fields() {
        let error = Checkpoint::Error {
            step: Some("db".into()),
            exit_code: Some(-3),
            message: Some(format!("  {}", "é".repeat(600))),
            duration_ms: None,
        };
        let fields = error.properties();
        assert_eq!(fields["step"], "db");
        assert_eq!(fields["exit_code"], -3);
        assert_eq!(fields["message"].as_str().unwrap().chars().count(), MAX_MESSAGE);
        assert!(!fields.contains_key("duration_ms"));
        assert_eq!(error.name(), "Installation Error");
        let support = Checkpoint::Support {
            email: "ada@example.com".into(),
            message: None,
            step: Some("db".into()),
        };
        assert_eq!(
            Value::Object(support.properties()),
            json!({"email": "ada@example.com", "step": "db"})
        );
    }

    #[test]
    fn messages_are_trimmed_by_characters() {
        assert_eq!(trim_message(&"é".repeat(600)).chars().count(), MAX_MESSAGE);
        assert_eq!(trim_message("  short \n"), "short");
    }
}
