//! Segment: a `track` call in a `/v1/batch` body, as analytics-python sends it.

use serde_json::{Value, json};

use super::{LIBRARY, VERSION, os};
use crate::event::Event;

/// A Segment `track` call as analytics-python sends it, with `context.ip` set to `0.0.0.0`:
/// Segment otherwise records the address the request came from.
pub fn event(e: &Event) -> Value {
    let (os, os_version) = os(e);
    json!({
        "type": "track",
        "event": e.event,
        "anonymousId": e.installation_id,
        "messageId": e.message_id,
        "timestamp": e.timestamp,
        "properties": e.properties,
        "context": {
            "ip": "0.0.0.0",
            "library": {"name": LIBRARY, "version": VERSION},
            "os": {"name": os, "version": os_version},
        },
    })
}
