//! An event as install-beacon records it, independent of any wire format: name, installation ID,
//! message ID, timestamp and properties (machine facts plus the command's own fields).

pub mod branding;
pub mod checkpoint;
pub mod facts;
pub mod scrub;

use std::time::SystemTime;

use beacon_wire::prop;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use checkpoint::Checkpoint;
use facts::Facts;

/// One event, ready to be encoded for any protocol. Serialised as it is stored in the outbox and
/// sent by the plain JSON protocol; the fields are in the order they have always been written in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event name, e.g. `Installation Started`.
    pub event: String,
    /// The installation ID (Segment's anonymousId, PostHog's distinct_id).
    pub installation_id: String,
    /// Unique per event and kept across retries, so backends can drop duplicates.
    pub message_id: String,
    /// Facts and fields.
    pub properties: Map<String, Value>,
    /// When the event happened, RFC 3339 with milliseconds.
    pub timestamp: String,
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
    /// Builds the event of `checkpoint`, stamped now with a fresh message ID. The checkpoint's own
    /// properties (such as `step` or `email`) are added after the facts and win over them.
    pub fn new(checkpoint: &Checkpoint, installation_id: Uuid, facts: &Facts, product: &Product) -> Event {
        let mut properties = Map::new();
        properties.insert(prop::OS.into(), facts.os.clone().into());
        properties.insert(prop::OS_VERSION.into(), facts.os_version.clone().into());
        properties.insert(prop::ARCH.into(), facts.arch.into());
        properties.insert(prop::CPU_COUNT.into(), facts.cpu_count.into());
        if let Some(mb) = facts.memory_mb {
            properties.insert(prop::MEMORY_MB.into(), mb.into());
        }
        properties.insert(prop::CONTAINER.into(), facts.container.into());
        properties.insert(prop::CI.into(), facts.ci.into());
        if let Some(agent) = &facts.agent {
            properties.insert(prop::AGENT.into(), agent.clone().into());
        }
        if let Some(method) = &facts.install_method {
            properties.insert(prop::INSTALL_METHOD.into(), method.clone().into());
        }
        if let Some(context) = &facts.context {
            properties.insert(prop::CONTEXT.into(), context.clone().into());
        }
        properties.insert(prop::BEACON_VERSION.into(), env!("CARGO_PKG_VERSION").into());
        Event::stamped(checkpoint, installation_id, product, properties)
    }

    /// The event of a request the user made while statistics are off (`support`): the checkpoint's
    /// own properties and the product, no machine facts.
    pub fn request(checkpoint: &Checkpoint, installation_id: Uuid, product: &Product) -> Event {
        Event::stamped(checkpoint, installation_id, product, Map::new())
    }

    /// `properties` plus the product and the checkpoint's own, stamped now with a fresh message ID.
    fn stamped(
        checkpoint: &Checkpoint,
        installation_id: Uuid,
        product: &Product,
        mut properties: Map<String, Value>,
    ) -> Event {
        properties.insert(prop::PRODUCT.into(), product.name.into());
        if let Some(version) = product.version {
            properties.insert(prop::PRODUCT_VERSION.into(), version.into());
        }
        properties.extend(checkpoint.properties());
        Event {
            event: checkpoint.name().to_owned(),
            installation_id: installation_id.hyphenated().to_string(),
            message_id: Uuid::new_v4().hyphenated().to_string(),
            timestamp: now_rfc3339(),
            properties,
        }
    }

    /// A bare event with message ID `m<n>`, for tests of what carries events.
    #[cfg(test)]
    pub fn numbered(n: usize) -> Event {
        Event {
            event: "E".into(),
            installation_id: "id".into(),
            message_id: format!("m{n}"),
            timestamp: "t".into(),
            properties: Map::new(),
        }
    }

    /// The property as a string, if it is one.
    pub fn property_str(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(Value::as_str)
    }
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-23T18:58:36.123Z`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as RFC 3339 UTC with milliseconds: fixed width, so these strings sort as the times do.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            os: "ubuntu".into(),
            os_version: "22.04".into(),
            arch: "x86_64",
            cpu_count: 4,
            memory_mb: Some(7982),
            container: "none",
            ci: false,
            agent: Some("claude-code".into()),
            install_method: Some("curl-sh".into()),
            context: None,
        }
    }

    #[test]
    fn properties_hold_facts_then_fields() {
        let failed = Checkpoint::Error {
            step: Some("download".into()),
            exit_code: None,
            message: None,
            duration_ms: None,
        };
        let id = Uuid::new_v4();
        let product = Product {
            name: "acme",
            version: Some("1.2.3"),
        };
        let e = Event::new(&failed, id, &facts(), &product);
        assert_eq!(e.installation_id, id.to_string());
        let keys: Vec<&str> = e.properties.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "agent",
                "arch",
                "beacon_version",
                "ci",
                "container",
                "cpu_count",
                "install_method",
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
            Event::new(&Checkpoint::Started, id, &facts(), &product).message_id
        );
    }
}
