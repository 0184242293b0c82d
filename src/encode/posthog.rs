//! PostHog: a capture event in a `/batch/` body, as posthog-python sends it.

use serde_json::{Value, json};

use super::{LIBRARY, VERSION, os};
use crate::event::Event;

/// A PostHog capture event as posthog-python sends it; `$process_person_profile: false` keeps
/// anonymous installs from creating person profiles. PostHog records the address the request came
/// from as `$ip` unless the event has that property, and looks up its location unless
/// `$geoip_disable` is set: `$ip: null` and `$geoip_disable: true` keep both out.
pub fn event(e: &Event) -> Value {
    let (os, os_version) = os(e);
    let mut properties = e.properties.clone();
    properties.insert("$lib".into(), LIBRARY.into());
    properties.insert("$lib_version".into(), VERSION.into());
    properties.insert("$os".into(), os.into());
    properties.insert("$os_version".into(), os_version.into());
    properties.insert("$process_person_profile".into(), false.into());
    properties.insert("$ip".into(), Value::Null);
    properties.insert("$geoip_disable".into(), true.into());
    json!({
        "event": e.event,
        "distinct_id": e.installation_id,
        "uuid": e.message_id,
        "timestamp": e.timestamp,
        "properties": properties,
    })
}
