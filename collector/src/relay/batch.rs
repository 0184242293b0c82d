//! Stored events as one batch request in the backend's own format, as its official server-side
//! clients send it (posthog-python's `/batch/`, analytics-python's `/v1/batch`, the OTLP/HTTP
//! exporters' `/v1/logs` in the JSON encoding, written by `beacon_wire::otlp::json` as
//! install-beacon writes it).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::{Backend, Target};
use crate::clock;
use crate::store::Queued;
use beacon_wire::prop;

/// One HTTP POST.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Full URL.
    pub url: String,
    /// `Authorization` header, if the backend takes the key there.
    pub authorization: Option<String>,
    /// JSON body.
    pub body: Vec<u8>,
}

/// Library name sent with forwarded batches.
const LIBRARY: &str = "beacon-collector";

/// Namespace for the UUIDs PostHog needs when a message ID is not a UUID itself; the same message ID
/// always maps to the same UUID, so PostHog still deduplicates a resent event.
const MESSAGE_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_2b8e_9d4a_4c57_b0a3_52e1_7d90_c4f6);

/// The batch request carrying `events`, sent at `now_ms`.
pub fn request(target: &Target, events: &[Queued], now_ms: i64) -> Request {
    let sent_at = clock::iso(now_ms);
    match target.backend {
        Backend::Posthog => Request {
            url: super::endpoint(&target.url, "/batch/"),
            authorization: None,
            body: body(&json!({
                "api_key": target.key,
                "batch": events.iter().map(posthog_event).collect::<Vec<_>>(),
                "sent_at": sent_at,
            })),
        },
        Backend::Notify => Request {
            url: target.url.clone(),
            authorization: None,
            body: body(&notification(&events[..1])),
        },
        Backend::Segment => Request {
            url: super::endpoint(&target.url, "/v1/batch"),
            authorization: Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{}:", target.key))
            )),
            body: body(&json!({
                "batch": events.iter().map(segment_event).collect::<Vec<_>>(),
                "sentAt": sent_at,
            })),
        },
        Backend::Otlp => Request {
            url: super::endpoint(&target.url, beacon_wire::otlp::LOGS_PATH),
            authorization: (!target.key.trim().is_empty()).then(|| format!("Bearer {}", target.key.trim())),
            body: body(&otlp_request(events, now_ms)),
        },
    }
}

/// A support request as a webhook message: a Slack-compatible `text` and the fields apart.
fn notification(events: &[Queued]) -> Value {
    let Some(e) = events.first() else { return json!({}) };
    let props: Map<String, Value> = serde_json::from_str(&e.properties).unwrap_or_default();
    let text = |key: &str| props.get(key).and_then(crate::event::as_text);
    let (product, version) = (text(prop::PRODUCT), text(prop::PRODUCT_VERSION));
    let (step, message, email) = (text(prop::STEP), text(prop::MESSAGE), text(prop::EMAIL));
    let mut summary = format!(
        "Support request: {} {}",
        product.as_deref().unwrap_or("(no product)"),
        version.as_deref().unwrap_or("")
    )
    .trim_end()
    .to_string();
    if let Some(step) = &step {
        summary.push_str(&format!(", failed at step {step}"));
    }
    if let Some(message) = &message {
        summary.push_str(&format!("\n> {message}"));
    }
    summary.push_str(&format!(
        "\nemail: {} · installation ID: {}",
        email.as_deref().unwrap_or("(none given)"),
        e.installation_id
    ));
    json!({
        "text": summary,
        "product": product,
        "version": version,
        "step": step,
        "message": message,
        "email": email,
        "installation_id": e.installation_id,
        "timestamp": clock::iso(e.ts_ms),
        "message_id": e.message_id,
    })
}

/// The events as one `ExportLogsServiceRequest`; their properties are parsed once for it.
fn otlp_request(events: &[Queued], now_ms: i64) -> Value {
    use beacon_wire::otlp::json::{self, Record, Sender};
    let nanos = |ms: i64| u128::try_from(ms).unwrap_or(0) * 1_000_000;
    let props: Vec<Map<String, Value>> = events.iter().map(properties).collect();
    let records = events.iter().zip(&props).map(|(e, properties)| Record {
        event: &e.event,
        installation_id: &e.installation_id,
        message_id: &e.message_id,
        time_unix_nano: nanos(e.ts_ms),
        properties,
    });
    let sender = Sender {
        name: LIBRARY,
        version: env!("CARGO_PKG_VERSION"),
        resource: &[],
    };
    json::request(records, nanos(now_ms), &sender)
}

fn body(value: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn properties(e: &Queued) -> Map<String, Value> {
    match serde_json::from_str(&e.properties) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A PostHog event; `$process_person_profile: false` (unless the client chose) keeps anonymous
/// installations from creating person profiles, as install-beacon itself does.
fn posthog_event(e: &Queued) -> Value {
    let mut props = properties(e);
    props.entry("$process_person_profile").or_insert(Value::Bool(false));
    props.entry("$lib").or_insert_with(|| LIBRARY.into());
    json!({
        "event": e.event,
        "distinct_id": e.installation_id,
        "uuid": posthog_uuid(&e.message_id),
        "timestamp": clock::iso(e.ts_ms),
        "properties": props,
    })
}

/// The message ID itself when it is a UUID (install-beacon's are), else a UUID derived from it.
fn posthog_uuid(message_id: &str) -> String {
    match uuid::Uuid::parse_str(message_id) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => uuid::Uuid::new_v5(&MESSAGE_ID_NAMESPACE, message_id.as_bytes()).to_string(),
    }
}

fn segment_event(e: &Queued) -> Value {
    json!({
        "type": "track",
        "event": e.event,
        "anonymousId": e.installation_id,
        "messageId": e.message_id,
        "timestamp": clock::iso(e.ts_ms),
        "properties": properties(e),
        "context": {"library": {"name": LIBRARY, "version": env!("CARGO_PKG_VERSION")}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(message_id: &str) -> Queued {
        Queued {
            event_id: 1,
            message_id: message_id.into(),
            event: "Installation Started".into(),
            installation_id: "inst-1".into(),
            ts_ms: 1_795_428_000_123,
            properties: r#"{"product":"acme","os":"ubuntu"}"#.into(),
        }
    }

    fn target(backend: Backend) -> Target {
        Target {
            backend,
            url: "https://example.test".into(),
            key: "k3y".into(),
        }
    }

    #[test]
    fn posthog_batch_carries_key_and_original_uuid() {
        let id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        let r = request(&target(Backend::Posthog), &[queued(id)], 0);
        assert_eq!(r.url, "https://example.test/batch/");
        assert_eq!(r.authorization, None);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["api_key"], "k3y");
        assert_eq!(
            body["batch"][0],
            json!({"event": "Installation Started", "distinct_id": "inst-1", "uuid": id,
                   "timestamp": "2026-11-23T10:00:00.123Z",
                   "properties": {"product": "acme", "os": "ubuntu", "$process_person_profile": false,
                                  "$lib": "beacon-collector"}})
        );
    }

    #[test]
    fn non_uuid_message_ids_map_to_a_stable_uuid() {
        let a = posthog_uuid("m-1");
        assert_eq!(a, posthog_uuid("m-1"));
        assert_ne!(a, posthog_uuid("m-2"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn otlp_batch_is_a_logs_request_with_the_checkpoint_names() {
        let mut t = target(Backend::Otlp);
        t.url = "https://example.test/otlp?tenant=a".into();
        let r = request(&t, &[queued("m-1")], 1_000);
        assert_eq!(r.url, "https://example.test/otlp/v1/logs?tenant=a");
        assert_eq!(r.authorization.as_deref(), Some("Bearer k3y"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let logs = &body["resourceLogs"][0];
        assert!(
            logs["resource"]["attributes"]
                .as_array()
                .unwrap()
                .contains(&json!({"key": "service.name", "value": {"stringValue": "acme"}}))
        );
        let record = &logs["scopeLogs"][0]["logRecords"][0];
        assert_eq!(record["eventName"], "install.started");
        assert_eq!(record["timeUnixNano"], "1795428000123000000");
        assert_eq!(record["observedTimeUnixNano"], "1000000000");
        t.key = String::new();
        assert_eq!(request(&t, &[queued("m-1")], 0).authorization, None);
    }

    #[test]
    fn segment_batch_uses_basic_auth_and_message_id() {
        let r = request(&target(Backend::Segment), &[queued("m-1")], 0);
        assert_eq!(r.url, "https://example.test/v1/batch");
        assert_eq!(r.authorization.as_deref(), Some("Basic azN5Og=="));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let e = &body["batch"][0];
        assert_eq!(
            (&e["type"], &e["messageId"], &e["anonymousId"]),
            (&json!("track"), &json!("m-1"), &json!("inst-1"))
        );
        assert_eq!(e["properties"], json!({"product": "acme", "os": "ubuntu"}));
        assert_eq!(body["sentAt"], "1970-01-01T00:00:00.000Z");
    }
}
