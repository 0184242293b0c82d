//! Plain JSON: one object per event and request, for receivers of your own (beacon-collector).

use serde_json::{Value, json};

use crate::event::Event;

/// The event as one plain object.
pub fn event(e: &Event) -> Value {
    json!({
        "event": e.event,
        "installation_id": e.installation_id,
        "message_id": e.message_id,
        "timestamp": e.timestamp,
        "properties": e.properties,
    })
}
