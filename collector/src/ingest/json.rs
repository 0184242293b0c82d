//! Plain JSON: `POST /events` with one event object or an array of them:
//! `{"event","installation_id","message_id","timestamp","properties"}`.

use serde_json::Value;

use super::{Batch, IngestError, Keys, as_object, check_event_size, properties, required_text, text};
use crate::event::{Event, Fallbacks, Protocol};

/// Parses a plain JSON body. The key may come from the `Authorization` header or a body `api_key`.
pub fn parse(value: Value, header_key: Option<String>, keys: &Keys) -> Result<Batch, IngestError> {
    let raw = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(IngestError::Invalid("event list is empty".into()));
        }
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(IngestError::BadJson(format!(
                "body is {}, expected an event object or an array of them",
                super::kind(&other)
            )));
        }
    };
    let key = header_key.or_else(|| {
        let first = raw.first()?.as_object()?;
        text(first, "api_key").or_else(|| text(first, "writeKey"))
    });
    keys.check(key.as_deref())?;
    let mut events = Vec::with_capacity(raw.len());
    for (index, item) in raw.into_iter().enumerate() {
        check_event_size(&item, index)?;
        let mut obj = as_object(item, index)?;
        let name = required_text(&obj, &["event"], index)?;
        let installation_id = required_text(
            &obj,
            &[
                "installation_id",
                "anonymousId",
                "anonymous_id",
                "distinct_id",
                "userId",
            ],
            index,
        )?;
        let props = properties(&mut obj, index)?;
        let message_id = text(&obj, "message_id").or_else(|| text(&obj, "messageId"));
        events.push(Event::new(
            Protocol::Json,
            message_id,
            name,
            installation_id,
            text(&obj, "timestamp"),
            props,
            Fallbacks::default(),
        ));
    }
    Ok(Batch {
        events,
        ..Batch::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_and_array() {
        let one = json!({"event": "E", "installation_id": "i", "message_id": "m", "properties": {"os": "alpine"}});
        let b = parse(one.clone(), None, &Keys::default()).unwrap();
        assert_eq!(b.events[0].os.as_deref(), Some("alpine"));
        assert_eq!(
            parse(json!([one.clone(), one]), None, &Keys::default())
                .unwrap()
                .events
                .len(),
            2
        );
    }

    #[test]
    fn rejects_scalars_and_missing_ids() {
        assert_eq!(parse(json!(3), None, &Keys::default()).unwrap_err().status(), 400);
        let err = parse(json!({"event": "E"}), None, &Keys::default()).unwrap_err();
        assert!(err.message().contains("installation_id"));
    }
}
