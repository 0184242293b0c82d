//! An event as install-beacon records it, independent of any wire format: name, installation ID,
//! message ID, timestamp and properties (machine facts plus the command's own fields).

pub mod branding;
pub mod facts;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::facts::Facts;

/// Checkpoint event names (`Installation Started` unless a branded build renamed it).
pub const STARTED: &str = branding::EVENT_STARTED;
/// Sent when the install finished.
pub const SUCCESS: &str = branding::EVENT_SUCCESS;
/// Sent when a step failed.
pub const ERROR: &str = branding::EVENT_ERROR;
/// Sent when the user asked for help.
pub const SUPPORT: &str = branding::EVENT_SUPPORT;

/// Keep-alive of a running instance (`heartbeat`).
pub const INSTANCE_ACTIVE: &str = "Instance Active";

/// Longest free-text message sent, in characters.
pub const MAX_MESSAGE: usize = 500;

/// One event, ready to be encoded for any protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event name, e.g. `Installation Started`.
    pub event: String,
    /// The installation ID (Segment's anonymousId, PostHog's distinct_id).
    pub installation_id: String,
    /// Unique per event and kept across retries, so backends can drop duplicates.
    pub message_id: String,
    /// When the event happened, RFC 3339 with milliseconds.
    pub timestamp: String,
    /// Facts and fields.
    pub properties: Map<String, Value>,
}

/// What identifies the product in every event.
#[derive(Debug, Clone)]
pub struct Product<'a> {
    /// Product name.
    pub name: &'a str,
    /// Product version, if given.
    pub version: Option<&'a str>,
}

impl Event {
    /// Builds an event stamped now with a fresh message ID. `fields` (the command's own, such as
    /// `step` or `email`) are added after the facts and win over them.
    pub fn new(
        name: &str,
        installation_id: Uuid,
        facts: &Facts,
        product: &Product,
        fields: Map<String, Value>,
    ) -> Event {
        let mut properties = Map::new();
        properties.insert("os".into(), facts.os.clone().into());
        properties.insert("os_version".into(), facts.os_version.clone().into());
        properties.insert("arch".into(), facts.arch.into());
        properties.insert("cpu_count".into(), facts.cpu_count.into());
        if let Some(mb) = facts.memory_mb {
            properties.insert("memory_mb".into(), mb.into());
        }
        properties.insert("container".into(), facts.container.into());
        properties.insert("ci".into(), facts.ci.into());
        if let Some(context) = &facts.context {
            properties.insert("context".into(), context.clone().into());
        }
        properties.insert("product".into(), product.name.into());
        if let Some(version) = product.version {
            properties.insert("product_version".into(), version.into());
        }
        properties.insert("beacon_version".into(), env!("CARGO_PKG_VERSION").into());
        properties.extend(fields);
        Event {
            event: name.to_owned(),
            installation_id: installation_id.hyphenated().to_string(),
            message_id: Uuid::new_v4().hyphenated().to_string(),
            timestamp: now_rfc3339(),
            properties,
        }
    }

    /// The property as a string, if it is one.
    pub fn property_str(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(Value::as_str)
    }
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-23T18:58:36.123Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Cuts a message to `MAX_MESSAGE` characters (never inside a character).
pub fn trim_message(message: &str) -> String {
    message.trim().chars().take(MAX_MESSAGE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn facts() -> Facts {
        Facts {
            os: "ubuntu".into(),
            os_version: "22.04".into(),
            arch: "x86_64",
            cpu_count: 4,
            memory_mb: Some(7982),
            container: "none",
            ci: false,
            context: None,
        }
    }

    #[test]
    fn properties_hold_facts_then_fields() {
        let mut fields = Map::new();
        fields.insert("step".into(), "download".into());
        let id = Uuid::new_v4();
        let product = Product {
            name: "acme",
            version: Some("1.2.3"),
        };
        let e = Event::new(ERROR, id, &facts(), &product, fields);
        assert_eq!(e.installation_id, id.to_string());
        let keys: Vec<&str> = e.properties.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "arch",
                "beacon_version",
                "ci",
                "container",
                "cpu_count",
                "memory_mb",
                "os",
                "os_version",
                "product",
                "product_version",
                "step"
            ]
        );
        assert_eq!(e.property_str("step"), Some("download"));
        assert!(humantime::parse_rfc3339(&e.timestamp).is_ok());
        assert_ne!(
            e.message_id,
            Event::new(ERROR, id, &facts(), &product, Map::new()).message_id
        );
    }

    #[test]
    fn messages_are_trimmed_by_characters() {
        assert_eq!(trim_message(&"é".repeat(600)).chars().count(), MAX_MESSAGE);
        assert_eq!(trim_message("  short \n"), "short");
    }
}
