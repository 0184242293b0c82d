//! The one shape every accepted event is turned into before it is stored.

use serde_json::{Map, Value};

/// Which wire format an event arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Segment tracking API (`/v1/batch`, `/v1/track`).
    Segment,
    /// PostHog capture API (`/batch/`, `/capture/`, `/i/v0/e/`).
    Posthog,
    /// Plain JSON (`/events`).
    Json,
}

impl Protocol {
    /// The name stored in the `protocol` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Segment => "segment",
            Protocol::Posthog => "posthog",
            Protocol::Json => "json",
        }
    }
}

/// Product name used for events that carry none.
pub const NO_PRODUCT: &str = "(none)";

/// Well-known event names sent by install-beacon.
pub mod names {
    /// An installer began.
    pub const STARTED: &str = "Installation Started";
    /// An installer finished without error.
    pub const SUCCESS: &str = "Installation Success";
    /// An installer failed at a step.
    pub const ERROR: &str = "Installation Error";
    /// The user asked for help (may carry an email).
    pub const SUPPORT: &str = "Installation Support";
    /// An installed instance is running.
    pub const ACTIVE: &str = "Instance Active";
}

/// An event as stored: what was sent, plus the facts pulled out of it for reporting.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Client-chosen unique ID (generated when the client sent none).
    pub message_id: String,
    /// Wire format it arrived in.
    pub protocol: Protocol,
    /// Event name, e.g. `Installation Started`.
    pub event: String,
    /// anonymousId / userId / distinct_id / installation_id.
    pub installation_id: String,
    /// The event's own timestamp, as sent.
    pub timestamp: Option<String>,
    /// Product name (`properties.product`).
    pub product: Option<String>,
    /// Product version (`properties.product_version`).
    pub product_version: Option<String>,
    /// Operating system (`properties.os`, else the protocol's context).
    pub os: Option<String>,
    /// Operating system version.
    pub os_version: Option<String>,
    /// Installer step (`properties.step`).
    pub step: Option<String>,
    /// Exit code of the failed step (`properties.exit_code`).
    pub exit_code: Option<i64>,
    /// Contact email of a support request.
    pub email: Option<String>,
    /// `properties.duration_ms`, else `properties.total_duration_ms`.
    pub duration_ms: Option<i64>,
    /// The full properties object, as sent.
    pub properties: Map<String, Value>,
}

/// Values a protocol knows from outside `properties` (Segment `context.os`, PostHog `$os`).
#[derive(Debug, Default)]
pub struct Fallbacks {
    /// Operating system name.
    pub os: Option<String>,
    /// Operating system version.
    pub os_version: Option<String>,
}

impl Event {
    /// Builds an event, pulling the reporting facts out of `properties`.
    pub fn new(
        protocol: Protocol,
        message_id: Option<String>,
        event: String,
        installation_id: String,
        timestamp: Option<String>,
        properties: Map<String, Value>,
        fallbacks: Fallbacks,
    ) -> Event {
        let text = |key: &str| properties.get(key).and_then(as_text);
        let int = |key: &str| properties.get(key).and_then(as_int);
        Event {
            message_id: message_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            protocol,
            event,
            installation_id,
            timestamp,
            product: text("product"),
            product_version: text("product_version"),
            os: text("os").or(fallbacks.os),
            os_version: text("os_version").or(fallbacks.os_version),
            step: text("step"),
            exit_code: int("exit_code"),
            email: text("email"),
            duration_ms: int("duration_ms").or_else(|| int("total_duration_ms")),
            properties,
        }
    }
}

/// A string, or a number written as one; `None` for empty strings and other types.
pub fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer, also from a float or a numeric string.
pub fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn facts_come_from_properties_then_fallbacks() {
        let e = Event::new(
            Protocol::Segment,
            Some("m1".into()),
            names::ERROR.into(),
            "i1".into(),
            None,
            props(json!({"product": "acme", "step": "db", "exit_code": "3", "total_duration_ms": 12.6})),
            Fallbacks {
                os: Some("debian".into()),
                os_version: Some("12".into()),
            },
        );
        assert_eq!(e.product.as_deref(), Some("acme"));
        assert_eq!(e.os.as_deref(), Some("debian"));
        assert_eq!(e.exit_code, Some(3));
        assert_eq!(e.duration_ms, Some(13));
        assert_eq!(e.message_id, "m1");
    }

    #[test]
    fn missing_message_id_is_generated() {
        let e = Event::new(
            Protocol::Json,
            None,
            "x".into(),
            "i".into(),
            None,
            Map::new(),
            Fallbacks::default(),
        );
        assert_eq!(e.message_id.len(), 36);
    }
}
