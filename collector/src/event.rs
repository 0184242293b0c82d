//! The one shape every accepted event is turned into before it is stored.

use serde_json::{Map, Value};

pub use beacon_wire::Protocol;
/// The checkpoint event names install-beacon sends (an unbranded build; see [`EventNames`]).
pub use beacon_wire::event as names;
use beacon_wire::prop;

/// Product name used for events that carry none.
pub const NO_PRODUCT: &str = "(none)";

/// A step of the install funnel that an event name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// `started`
    Started,
    /// `success`
    Success,
    /// `error`
    Error,
    /// `support`
    Support,
    /// `heartbeat` (an installed instance is running)
    Active,
}

impl Checkpoint {
    /// Every checkpoint, with the word used for it on the command line.
    const ALL: [(Checkpoint, &'static str); 5] = [
        (Checkpoint::Started, "started"),
        (Checkpoint::Success, "success"),
        (Checkpoint::Error, "error"),
        (Checkpoint::Support, "support"),
        (Checkpoint::Active, "active"),
    ];

    /// The checkpoint whose standard name is `name`.
    pub fn of_standard_name(name: &str) -> Option<Checkpoint> {
        Checkpoint::ALL
            .iter()
            .map(|(c, _)| *c)
            .find(|c| c.standard_name() == name)
    }

    /// The name an unbranded install-beacon sends.
    pub fn standard_name(self) -> &'static str {
        match self {
            Checkpoint::Started => names::STARTED,
            Checkpoint::Success => names::SUCCESS,
            Checkpoint::Error => names::ERROR,
            Checkpoint::Support => names::SUPPORT,
            Checkpoint::Active => names::INSTANCE_ACTIVE,
        }
    }
}

/// Which event names stand for which checkpoint: the standard names, plus those a branded
/// install-beacon build sends instead (its `BEACON_BUILD_EVENT_*`), given to `serve` as
/// `--event-name CHECKPOINT=NAME`. Events are stored under the standard name.
#[derive(Debug, Clone, Default)]
pub struct EventNames {
    renamed: Vec<(String, Checkpoint)>,
}

impl EventNames {
    /// Parses one `CHECKPOINT=NAME` of the command line.
    pub fn parse_one(text: &str) -> Result<(Checkpoint, String), String> {
        let words = || Checkpoint::ALL.map(|(_, w)| w).join(", ");
        let (word, name) = text
            .split_once('=')
            .ok_or_else(|| format!("expected CHECKPOINT=NAME, where CHECKPOINT is one of {}", words()))?;
        let checkpoint = Checkpoint::ALL
            .iter()
            .find(|(_, w)| *w == word.trim())
            .map(|(c, _)| *c)
            .ok_or_else(|| format!("unknown checkpoint {word:?}; use one of {}", words()))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("the {word} event needs a name"));
        }
        Ok((checkpoint, name.to_string()))
    }

    /// The mapping for these branded names; refuses a name given for two checkpoints, or the
    /// standard name of another checkpoint.
    pub fn new(renamed: Vec<(Checkpoint, String)>) -> Result<EventNames, String> {
        let mut names = EventNames::default();
        for (checkpoint, name) in renamed {
            if let Some((_, standard)) = Checkpoint::ALL
                .iter()
                .map(|(c, _)| (c, c.standard_name()))
                .find(|(c, standard)| *standard == name && **c != checkpoint)
            {
                return Err(format!(
                    "{name:?} is already the name of another checkpoint ({standard})"
                ));
            }
            match names.renamed.iter().find(|(n, _)| *n == name) {
                Some((_, other)) if *other != checkpoint => {
                    return Err(format!("{name:?} is given for two checkpoints"));
                }
                Some(_) => {}
                None if name != checkpoint.standard_name() => names.renamed.push((name, checkpoint)),
                None => {}
            }
        }
        Ok(names)
    }

    /// Each branded name with the standard name it stands for.
    pub fn renamed(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.renamed.iter().map(|(name, c)| (name.as_str(), c.standard_name()))
    }

    /// Gives events sent under a branded name their standard name.
    pub fn standardise(&self, events: &mut [Event]) {
        for e in events {
            if let Some((_, c)) = self.renamed.iter().find(|(name, _)| *name == e.event) {
                e.event = c.standard_name().to_string();
            }
        }
    }
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
    /// CPU architecture (`properties.arch`).
    pub arch: Option<String>,
    /// Container runtime, or `none` (`properties.container`).
    pub container: Option<String>,
    /// Whether it ran in CI (`properties.ci`).
    pub ci: Option<bool>,
    /// The AI agent that ran the installer (`properties.agent`).
    pub agent: Option<String>,
    /// How the product is being installed, e.g. `curl-sh` (`properties.install_method`).
    pub install_method: Option<String>,
    /// The install attempt, 1, 2, ... per installation ID (`properties.attempt`).
    pub attempt: Option<i64>,
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
            product: text(prop::PRODUCT),
            product_version: text(prop::PRODUCT_VERSION),
            os: text(prop::OS).or(fallbacks.os),
            os_version: text(prop::OS_VERSION).or(fallbacks.os_version),
            step: text(prop::STEP),
            exit_code: int(prop::EXIT_CODE),
            email: text(prop::EMAIL),
            duration_ms: int(prop::DURATION_MS).or_else(|| int(prop::TOTAL_DURATION_MS)),
            arch: text(prop::ARCH),
            container: text(prop::CONTAINER),
            ci: properties.get(prop::CI).and_then(as_bool),
            agent: text(prop::AGENT),
            install_method: text(prop::INSTALL_METHOD),
            attempt: int(prop::ATTEMPT).filter(|a| *a >= 1),
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

/// A boolean, also from `1`/`0` and `"true"`/`"false"`.
pub fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
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
            props(
                json!({"product": "acme", "step": "db", "exit_code": "3", "total_duration_ms": 12.6,
                         "arch": "arm64", "ci": "true"}),
            ),
            Fallbacks {
                os: Some("debian".into()),
                os_version: Some("12".into()),
            },
        );
        assert_eq!(e.product.as_deref(), Some("acme"));
        assert_eq!(e.os.as_deref(), Some("debian"));
        assert_eq!(e.exit_code, Some(3));
        assert_eq!(e.duration_ms, Some(13));
        assert_eq!(
            (e.arch.as_deref(), e.container.as_deref(), e.ci),
            (Some("arm64"), None, Some(true))
        );
        assert_eq!(e.message_id, "m1");
    }

    #[test]
    fn branded_names_map_to_the_standard_ones() {
        let parsed =
            ["error=Acme Setup Failed", " started = Acme Setup Began "].map(|t| EventNames::parse_one(t).unwrap());
        assert_eq!(parsed[1], (Checkpoint::Started, "Acme Setup Began".to_string()));
        let names = EventNames::new(parsed.to_vec()).unwrap();
        let mut events = ["Acme Setup Failed", "Acme Setup Began", "Installation Success", "Other"].map(|n| {
            Event::new(
                Protocol::Json,
                None,
                n.into(),
                "i".into(),
                None,
                Map::new(),
                Fallbacks::default(),
            )
        });
        names.standardise(&mut events);
        let got: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(got, [names::ERROR, names::STARTED, names::SUCCESS, "Other"]);

        assert!(
            EventNames::parse_one("failed=X")
                .unwrap_err()
                .starts_with("unknown checkpoint \"failed\"")
        );
        assert!(EventNames::parse_one("error").is_err());
        assert!(EventNames::parse_one("error= ").is_err());
        let twice = vec![
            (Checkpoint::Error, "X".to_string()),
            (Checkpoint::Success, "X".to_string()),
        ];
        assert_eq!(
            EventNames::new(twice).unwrap_err(),
            "\"X\" is given for two checkpoints"
        );
        let taken = vec![(Checkpoint::Error, names::SUCCESS.to_string())];
        assert!(EventNames::new(taken).is_err());
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
