//! PostHog capture API: `POST /batch/` (`{"api_key","batch":[...]}`), and `/capture/`, `/i/v0/e/`
//! (one event `{"api_key","event","distinct_id","properties"}`, a batch, or an array of events).

use serde_json::{Map, Value};

use super::{Batch, IngestError, Keys, as_object, check_event_size, items, properties, required_text, text};
use crate::event::{Event, Fallbacks, Protocol};

/// Parses a PostHog body. The key is `api_key` (top level, per event, or `properties.token`).
pub fn parse(value: Value, header_key: Option<String>, keys: &Keys) -> Result<Batch, IngestError> {
    let (key, raw) = match value {
        Value::Object(mut body) => match body.remove("batch") {
            Some(batch) => (text(&body, "api_key"), items(batch, "batch")?),
            None => (None, vec![Value::Object(body)]),
        },
        array @ Value::Array(_) => (None, items(array, "event list")?),
        other => {
            return Err(IngestError::BadJson(format!(
                "PostHog body is {}, expected an object or array",
                super::kind(&other)
            )));
        }
    };
    let key = key.or_else(|| raw.first().and_then(event_key)).or(header_key);
    keys.check(key.as_deref())?;
    let mut events = Vec::with_capacity(raw.len());
    for (index, item) in raw.into_iter().enumerate() {
        check_event_size(&item, index)?;
        let mut obj = as_object(item, index)?;
        let props = properties(&mut obj, index)?;
        events.push(to_event(obj, props, index)?);
    }
    Ok(Batch {
        events,
        ..Batch::default()
    })
}

/// The key carried by an event itself: `api_key`, or `properties.token` as posthog-js sends it.
fn event_key(item: &Value) -> Option<String> {
    let obj = item.as_object()?;
    text(obj, "api_key").or_else(|| text(obj.get("properties")?.as_object()?, "token"))
}

fn to_event(obj: Map<String, Value>, props: Map<String, Value>, index: usize) -> Result<Event, IngestError> {
    let name = required_text(&obj, &["event"], index)?;
    let installation_id = required_text(&obj, &["distinct_id"], index)
        .or_else(|_| required_text(&props, &["distinct_id", "$distinct_id"], index))?;
    let fallbacks = Fallbacks {
        os: text(&props, "$os"),
        os_version: text(&props, "$os_version"),
    };
    let message_id = text(&obj, "uuid").or_else(|| text(&props, "$insert_id"));
    Ok(Event::new(
        Protocol::Posthog,
        message_id,
        name,
        installation_id,
        text(&obj, "timestamp"),
        props,
        fallbacks,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_form() {
        let body = json!({"api_key": "k", "batch": [
            {"event": "Installation Started", "distinct_id": "d1", "uuid": "u1",
             "properties": {"$os": "ubuntu", "$os_version": "22.04", "product": "acme"}}
        ]});
        let b = parse(body.clone(), None, &Keys::new(vec!["k".into()])).unwrap();
        assert!(parse(body, None, &Keys::new(vec!["other".into()])).is_err());
        assert_eq!(b.events[0].os.as_deref(), Some("ubuntu"));
        assert_eq!(b.events[0].message_id, "u1");
    }

    #[test]
    fn single_event_form_with_distinct_id_in_properties() {
        let body = json!({"api_key": "k", "event": "E", "properties": {"distinct_id": "d"}});
        let b = parse(body, None, &Keys::new(vec!["k".into()])).unwrap();
        assert_eq!(b.events[0].installation_id, "d");
    }

    #[test]
    fn array_form_with_token() {
        let body = json!([{"event": "E", "properties": {"distinct_id": "d", "token": "t"}}]);
        assert!(parse(body, None, &Keys::new(vec!["t".into()])).is_ok());
    }

    #[test]
    fn missing_distinct_id() {
        let err = parse(json!({"api_key": "k", "event": "E"}), None, &Keys::default()).unwrap_err();
        assert_eq!(
            err,
            IngestError::Invalid("event 0 is missing distinct_id or $distinct_id".into())
        );
    }
}
