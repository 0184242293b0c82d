//! Segment tracking API: `POST /v1/batch` (`{"batch":[...]}`) and `POST /v1/track` (one message).
//!
//! `track` messages are stored; `identify`, `page`, `screen`, `group` and `alias` are validated as
//! objects and acknowledged without being stored, as they carry no installation events.

use serde_json::Value;

use super::{Batch, IngestError, Keys, as_object, check_event_size, items, properties, required_text, text};
use crate::event::{Event, Fallbacks, Protocol};

/// Parses a Segment body. `header_key` is the Basic-auth user; `default_type` is the message type
/// implied by the endpoint (`track` for `/v1/track`).
pub fn parse(value: Value, header_key: Option<String>, default_type: &str, keys: &Keys) -> Result<Batch, IngestError> {
    let mut body = match value {
        Value::Object(m) => m,
        other => {
            return Err(IngestError::BadJson(format!(
                "Segment body is {}, expected an object",
                super::kind(&other)
            )));
        }
    };
    let key = header_key.or_else(|| text(&body, "writeKey"));
    keys.check(key.as_deref())?;
    let messages = match body.remove("batch") {
        Some(batch) => items(batch, "batch")?,
        None => vec![Value::Object(body)],
    };
    let mut events = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        check_event_size(&message, index)?;
        if let Some(event) = message_to_event(message, index, default_type)? {
            events.push(event);
        }
    }
    Ok(Batch {
        events,
        ..Batch::default()
    })
}

fn message_to_event(message: Value, index: usize, default_type: &str) -> Result<Option<Event>, IngestError> {
    let mut obj = as_object(message, index)?;
    let kind = text(&obj, "type").unwrap_or_else(|| default_type.to_string());
    if kind != "track" {
        return Ok(None);
    }
    let name = required_text(&obj, &["event"], index)?;
    let installation_id = required_text(&obj, &["anonymousId", "userId"], index)?;
    let props = properties(&mut obj, index)?;
    let os = obj.get("context").and_then(|c| c.get("os"));
    let fallbacks = Fallbacks {
        os: os.and_then(|o| o.get("name")).and_then(crate::event::as_text),
        os_version: os.and_then(|o| o.get("version")).and_then(crate::event::as_text),
    };
    let timestamp = text(&obj, "timestamp").or_else(|| text(&obj, "originalTimestamp"));
    Ok(Some(Event::new(
        Protocol::Segment,
        text(&obj, "messageId"),
        name,
        installation_id,
        timestamp,
        props,
        fallbacks,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_of_track_and_identify() {
        let body = json!({
            "batch": [
                {"type": "track", "event": "Installation Started", "anonymousId": "a1", "messageId": "m1",
                 "timestamp": "2026-11-23T10:00:00.123Z", "properties": {"product": "acme"},
                 "context": {"os": {"name": "ubuntu", "version": "22.04"}}},
                {"type": "identify", "userId": "u1", "traits": {}}
            ],
            "writeKey": "body-key"
        });
        let keys = Keys::new(vec!["body-key".into()]);
        let batch = parse(body, None, "track", &keys).unwrap();
        assert_eq!(batch.events.len(), 1);
        let e = &batch.events[0];
        assert_eq!(
            (e.os.as_deref(), e.os_version.as_deref()),
            (Some("ubuntu"), Some("22.04"))
        );
        assert_eq!(e.message_id, "m1");
    }

    #[test]
    fn header_key_wins_and_user_id_is_accepted() {
        let body = json!({"event": "X", "userId": "u1"});
        let keys = Keys::new(vec!["hk".into()]);
        let batch = parse(body, Some("hk".into()), "track", &keys).unwrap();
        assert_eq!(batch.events[0].installation_id, "u1");
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse(
            json!({"batch": [{"type": "track", "anonymousId": "a"}]}),
            None,
            "track",
            &Keys::default(),
        )
        .unwrap_err();
        assert_eq!(err, IngestError::Invalid("event 0 is missing event".into()));
        let err = parse(json!({"batch": [{"event": "E"}]}), None, "track", &Keys::default()).unwrap_err();
        assert_eq!(
            err,
            IngestError::Invalid("event 0 is missing anonymousId or userId".into())
        );
        let err = parse(json!({"batch": []}), None, "track", &Keys::default()).unwrap_err();
        assert_eq!(err.status(), 400);
    }
}
