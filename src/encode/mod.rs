//! Wire formats: turns events into the HTTP requests Segment, PostHog or a plain JSON receiver
//! accept, with the field names and types their official client libraries send.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use beacon_wire::{Protocol, prop};

use crate::event::Event;

mod endpoint;
mod otlp;
mod posthog;
mod segment;

pub use endpoint::{Endpoint, mask};
pub use otlp::headers as otlp_headers;

/// Library name reported to the backend.
pub const LIBRARY: &str = "install-beacon";
/// Library version reported to the backend.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// Wire format.
    pub protocol: Protocol,
    /// Base URL.
    pub endpoint: Endpoint,
    /// Segment write key or PostHog project API key.
    pub key: Option<String>,
    /// More request headers (OTLP: `OTEL_EXPORTER_OTLP_HEADERS`); their values are secrets.
    pub headers: Vec<(String, String)>,
}

/// One HTTP POST, ready to send or to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Full URL.
    pub url: Endpoint,
    /// Headers besides `User-Agent`, which the transport sets.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Vec<u8>,
    /// Message IDs of the events carried, in order.
    pub message_ids: Vec<String>,
}

/// Size limits of a backend's batch endpoint.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Bytes per request body.
    body: usize,
    /// Events per request.
    events: usize,
    /// Bytes per encoded event.
    event: usize,
}

/// Bytes kept free in every body for the envelope (`sentAt`, `api_key`, brackets).
const ENVELOPE: usize = 1024;

impl Target {
    /// Segment: 500 KB and 2,500 events per batch, 32 KB per event. PostHog: 1 MB per event,
    /// batches kept to 5 MiB as its Python client does. Plain JSON: one event per request.
    fn limits(&self) -> Limits {
        match self.protocol {
            Protocol::Segment => Limits {
                body: 500_000,
                events: 2_500,
                event: 32_000,
            },
            Protocol::Posthog => Limits {
                body: 5 * 1024 * 1024,
                events: 10_000,
                event: 1_000_000,
            },
            Protocol::Json => Limits {
                body: 1_000_000,
                events: 1,
                event: 1_000_000,
            },
            Protocol::Otlp => Limits {
                body: 500_000,
                events: 2_500,
                event: 32_000,
            },
        }
    }

    /// Groups events, oldest first, into as few batches as the backend accepts. Events larger
    /// than the backend takes are returned apart: they would be refused every time.
    pub fn batches(&self, events: Vec<Event>) -> (Vec<Vec<Event>>, Vec<Event>) {
        let limits = self.limits();
        let mut batches: Vec<Vec<Event>> = Vec::new();
        let mut too_large = Vec::new();
        let mut size = 0;
        for event in events {
            let len = self.encoded_len(&event) + 1;
            if len > limits.event {
                too_large.push(event);
                continue;
            }
            match batches.last_mut() {
                Some(batch) if batch.len() < limits.events && size + len <= limits.body - ENVELOPE => {
                    size += len;
                    batch.push(event);
                }
                _ => {
                    size = len;
                    batches.push(vec![event]);
                }
            }
        }
        (batches, too_large)
    }

    fn encoded_len(&self, event: &Event) -> usize {
        let encoded = match self.protocol {
            Protocol::Segment => serde_json::to_vec(&segment::event(event)),
            Protocol::Posthog => serde_json::to_vec(&posthog::event(event)),
            Protocol::Json => serde_json::to_vec(event),
            Protocol::Otlp => serde_json::to_vec(&otlp::event(event)),
        };
        encoded.map_or(usize::MAX, |v| v.len())
    }

    /// The refusal an accepted answer carries (OTLP's `partial_success`), with how many of the
    /// request's `events` were refused.
    pub fn partly_refused(&self, body: &[u8], events: usize) -> Option<(String, usize)> {
        match self.protocol {
            Protocol::Otlp => otlp::partly_refused(body, events),
            Protocol::Segment | Protocol::Posthog | Protocol::Json => None,
        }
    }

    /// The URL events are posted to.
    pub fn url(&self) -> Endpoint {
        match self.protocol {
            Protocol::Segment => self.endpoint.join("/v1/batch"),
            Protocol::Posthog => self.endpoint.join("/batch/"),
            Protocol::Json => self.endpoint.clone(),
            // Settings made it the logs URL (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` is used as it is).
            Protocol::Otlp => self.endpoint.clone(),
        }
    }

    /// Encodes events into as few requests as the format allows: one batch for Segment and PostHog,
    /// one request per event for plain JSON.
    pub fn encode(&self, events: &[Event], sent_at: &str) -> Vec<Request> {
        match self.protocol {
            Protocol::Segment => vec![self.request(
                &json!({"batch": events.iter().map(segment::event).collect::<Vec<_>>(), "sentAt": sent_at}),
                events,
            )],
            Protocol::Posthog => vec![self.request(
                &json!({
                    "api_key": self.key.as_deref().unwrap_or_default(),
                    "batch": events.iter().map(posthog::event).collect::<Vec<_>>(),
                    "sent_at": sent_at,
                }),
                events,
            )],
            Protocol::Json => events
                .iter()
                .map(|e| self.request(e, std::slice::from_ref(e)))
                .collect(),
            Protocol::Otlp => vec![self.request(&otlp::request(events, sent_at), events)],
        }
    }

    fn request(&self, body: &impl Serialize, events: &[Event]) -> Request {
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(auth) = self.authorization(self.key.as_deref()) {
            headers.push(("Authorization".to_owned(), auth));
        }
        headers.extend(self.headers.iter().cloned());
        Request {
            url: self.url(),
            headers,
            body: serde_json::to_vec(body).unwrap_or_default(),
            message_ids: events.iter().map(|e| e.message_id.clone()).collect(),
        }
    }

    /// The `Authorization` header for `key`: HTTP Basic with the write key as user name for Segment,
    /// a bearer token for plain JSON receivers; PostHog carries its key in the body instead.
    fn authorization(&self, key: Option<&str>) -> Option<String> {
        match (self.protocol, key) {
            (Protocol::Segment, Some(key)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
            )),
            (Protocol::Json | Protocol::Otlp, Some(key)) => Some(format!("Bearer {key}")),
            _ => None,
        }
    }

    /// Where this target sends, as the outbox records it.
    pub fn destination(&self) -> Destination {
        let (userinfo, query) = (self.endpoint.userinfo(), self.endpoint.query());
        let headers = !self.headers.is_empty();
        let credentials = (self.key.is_some() || userinfo.is_some() || query.is_some() || headers).then(|| {
            let mut secrets = format!("{}\n{}", self.key.as_deref().unwrap_or(""), userinfo.unwrap_or(""));
            if let Some(query) = query {
                secrets.push_str(&format!("\n{query}"));
            }
            for (name, value) in &self.headers {
                secrets.push_str(&format!("\n{name}: {value}"));
            }
            let digest = ring::digest::digest(&ring::digest::SHA256, secrets.as_bytes());
            digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
        });
        Destination {
            protocol: self.protocol,
            endpoint: self.endpoint.without_credentials(),
            credentials_sha256: credentials,
        }
    }

    /// The request as text, for `--dry-run` and `INSTALL_BEACON_DEBUG`: method, URL, headers and
    /// pretty JSON body, with the key and any credentials in the URL masked wherever they appear.
    pub fn render(&self, request: &Request) -> String {
        let masked = self.key.as_deref().map(mask);
        let mut out = format!("POST {}\n", request.url);
        for (i, (name, value)) in request.headers.iter().enumerate() {
            let extra = i >= request.headers.len() - self.headers.len();
            let value = match (name.as_str(), &masked) {
                _ if extra => mask(value),
                ("Authorization", Some(m)) if self.protocol == Protocol::Segment => format!("Basic base64(\"{m}:\")"),
                ("Authorization", Some(m)) => format!("Bearer {m}"),
                _ => value.clone(),
            };
            out.push_str(&format!("{name}: {value}\n"));
        }
        out.push_str(&format!("User-Agent: {}\n\n", user_agent()));
        let mut body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if let (Some(slot), Some(m)) = (body.get_mut("api_key"), &masked) {
            *slot = m.clone().into();
        }
        out.push_str(&serde_json::to_string_pretty(&body).unwrap_or_default());
        out.push('\n');
        out
    }
}

/// Where queued events are to be delivered: the protocol, the endpoint without credentials and
/// with its query values masked, and a SHA-256 of the key, of any `user:password@` and of any query
/// in the endpoint (never the credentials themselves). A call delivers only the queued events whose
/// destination equals its own. Stored as `{"credentials_sha256": …, "endpoint": …, "protocol": …}`,
/// the first only when there are credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Hex SHA-256 of `key \n user:password`, then `\n query` when the endpoint has one; absent
    /// when there is none of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_sha256: Option<String>,
    /// Base URL, credentials removed, query values masked.
    pub endpoint: String,
    /// The wire format, by its name (`segment`, `posthog`, `json`).
    #[serde(with = "protocol_name")]
    pub protocol: Protocol,
}

/// A `Protocol` as its `--protocol` name.
mod protocol_name {
    use super::*;

    pub fn serialize<S: Serializer>(protocol: &Protocol, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(protocol.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Protocol, D::Error> {
        let name = String::deserialize(deserializer)?;
        Protocol::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown protocol '{name}'")))
    }
}

/// `install-beacon/<version>`.
pub fn user_agent() -> String {
    format!("{LIBRARY}/{VERSION}")
}

/// The OS name and version of an event, for the protocols that repeat them outside the properties.
fn os(e: &Event) -> (&str, &str) {
    (
        e.property_str(prop::OS).unwrap_or("unknown"),
        e.property_str(prop::OS_VERSION).unwrap_or("unknown"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn event(name: &str) -> Event {
        let mut properties = Map::new();
        properties.insert("os".into(), "debian".into());
        properties.insert("os_version".into(), "12".into());
        Event {
            event: name.into(),
            installation_id: "7d3c2f0e-1b7a-4c55-9b8e-2f8f6a1d0c11".into(),
            message_id: "11111111-2222-4333-8444-555555555555".into(),
            timestamp: "2026-11-23T10:00:00.000Z".into(),
            properties,
        }
    }

    fn target(protocol: Protocol, key: Option<&str>) -> Target {
        Target {
            protocol,
            endpoint: Endpoint::parse("http://127.0.0.1:9").unwrap(),
            key: key.map(Into::into),
            headers: Vec::new(),
        }
    }

    #[test]
    fn segment_batch() {
        let t = target(Protocol::Segment, Some("wk_secret_123"));
        let reqs = t.encode(&[event("Installation Started")], "2026-11-23T10:00:01.000Z");
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].url.expose(), "http://127.0.0.1:9/v1/batch");
        assert!(
            reqs[0]
                .headers
                .contains(&("Authorization".into(), "Basic d2tfc2VjcmV0XzEyMzo=".into()))
        );
        let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(
            body,
            json!({"batch": [{
                "type": "track", "event": "Installation Started",
                "anonymousId": "7d3c2f0e-1b7a-4c55-9b8e-2f8f6a1d0c11",
                "messageId": "11111111-2222-4333-8444-555555555555",
                "timestamp": "2026-11-23T10:00:00.000Z",
                "properties": {"os": "debian", "os_version": "12"},
                "context": {"ip": "0.0.0.0", "library": {"name": "install-beacon", "version": VERSION}, "os": {"name": "debian", "version": "12"}},
            }], "sentAt": "2026-11-23T10:00:01.000Z"})
        );
    }

    #[test]
    fn posthog_batch() {
        let t = target(Protocol::Posthog, Some("phc_abcdefgh"));
        let reqs = t.encode(&[event("a"), event("b")], "now");
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].url.expose(), "http://127.0.0.1:9/batch/");
        assert!(reqs[0].headers.iter().all(|(h, _)| h != "Authorization"));
        let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(body["api_key"], "phc_abcdefgh");
        assert_eq!(body["sent_at"], "now");
        assert_eq!(body["batch"][1]["event"], "b");
        assert_eq!(body["batch"][0]["distinct_id"], "7d3c2f0e-1b7a-4c55-9b8e-2f8f6a1d0c11");
        assert_eq!(body["batch"][0]["uuid"], "11111111-2222-4333-8444-555555555555");
        assert_eq!(body["batch"][0]["properties"]["$process_person_profile"], false);
        assert_eq!(body["batch"][0]["properties"]["$ip"], Value::Null);
        assert!(body["batch"][0]["properties"].as_object().unwrap().contains_key("$ip"));
        assert_eq!(body["batch"][0]["properties"]["$geoip_disable"], true);
        assert_eq!(body["batch"][0]["properties"]["$os"], "debian");
        assert_eq!(body["batch"][0]["properties"]["$lib"], "install-beacon");
    }

    #[test]
    fn json_sends_its_key_as_a_bearer_token() {
        let t = target(Protocol::Json, Some("receiver_token_1"));
        let req = &t.encode(&[event("a")], "now")[0];
        assert!(
            req.headers
                .contains(&("Authorization".into(), "Bearer receiver_token_1".into()))
        );
        assert!(t.render(req).contains("Authorization: Bearer rece****\n"));
    }

    #[test]
    fn json_one_request_per_event() {
        let reqs = target(Protocol::Json, None).encode(&[event("a"), event("b")], "now");
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].url.expose(), "http://127.0.0.1:9");
        let body: Value = serde_json::from_slice(&reqs[1].body).unwrap();
        assert_eq!(body["event"], "b");
        assert_eq!(body["installation_id"], "7d3c2f0e-1b7a-4c55-9b8e-2f8f6a1d0c11");
    }

    #[test]
    fn batches_respect_segment_limits() {
        let t = target(Protocol::Segment, Some("k"));
        let small: Vec<Event> = (0..3000).map(|_| event("a")).collect();
        let (batches, too_large) = t.batches(small);
        assert!(too_large.is_empty());
        let limits = t.limits();
        let per_batch = limits
            .events
            .min((limits.body - ENVELOPE) / (t.encoded_len(&event("a")) + 1));
        assert_eq!(
            batches.len(),
            3000_usize.div_ceil(per_batch),
            "as few requests as the limits allow"
        );
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 3000);
        for batch in &batches {
            assert!(batch.len() <= 2500 && t.encode(batch, "now")[0].body.len() <= 500_000);
        }

        let mut big = event("big");
        big.properties.insert("blob".into(), "x".repeat(20_000).into());
        let mut huge = event("huge");
        huge.properties.insert("blob".into(), "x".repeat(40_000).into());
        let events = vec![big.clone(); 30].into_iter().chain([huge]).collect();
        let (batches, too_large) = t.batches(events);
        assert_eq!(too_large.len(), 1);
        for batch in &batches {
            assert!(t.encode(batch, "now")[0].body.len() <= 500_000);
        }
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 30);
        assert_eq!(batches.len(), 2);

        let (batches, _) = target(Protocol::Json, None).batches(vec![event("a"), event("b")]);
        assert_eq!(batches.len(), 2);
    }

    #[test]
    fn render_masks_the_key() {
        for protocol in [Protocol::Segment, Protocol::Posthog] {
            let t = target(protocol, Some("phc_abcdefgh"));
            let text = t.render(&t.encode(&[event("a")], "now")[0]);
            assert!(!text.contains("abcdefgh") && !text.contains("YWJjZGVmZ2g"), "{text}");
            assert!(text.contains("phc_****"), "{text}");
            assert!(text.starts_with("POST http://127.0.0.1:9/"));
        }
        assert_eq!(mask("short"), "****");
    }

    #[test]
    fn credentials_in_urls_are_hashed_never_stored() {
        let with = |endpoint: &str, key: Option<&str>| Target {
            protocol: Protocol::Json,
            endpoint: Endpoint::parse(endpoint).unwrap(),
            key: key.map(str::to_owned),
            headers: Vec::new(),
        };
        let d = with("http://ada:secret@h", Some("k")).destination();
        assert_eq!(d.endpoint, "http://h");
        assert_eq!(d.credentials_sha256.as_ref().map(String::len), Some(64));
        assert_ne!(d, with("http://ada:other@h", Some("k")).destination());
        assert_ne!(d, with("http://h", Some("k")).destination());
        assert_eq!(with("http://h", None).destination().credentials_sha256, None);
        let d = with("http://h/?token=abc", None).destination();
        assert_eq!(d.endpoint, "http://h/?token=****");
        assert_eq!(d.credentials_sha256.as_ref().map(String::len), Some(64));
        assert_ne!(d, with("http://h/?token=abd", None).destination());
    }
}
