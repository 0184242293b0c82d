//! The OTLP/HTTP JSON request (`ExportLogsServiceRequest` in the protobuf schema's JSON mapping)
//! for a list of events: what `install-beacon --protocol otlp` sends and what
//! `beacon-collector --forward otlp=URL` relays. Written by hand, so neither links protobuf code.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use serde_json::{Map, Value, json};

use super::{ARCH_NAMES, EVENT_NAMES, INSTALLATION_ID, RECORD, RESOURCE, to_otel};
use crate::{event, prop};

/// `severityNumber` of `INFO` and `ERROR`.
const INFO: u8 = 9;
const ERROR: u8 = 17;

/// Attribute keys that describe the resource although no property maps to them.
const RESOURCE_ONLY: [&str; 3] = ["os.type", "telemetry.sdk.name", "telemetry.sdk.language"];

/// One event to encode.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The event name: a checkpoint's standard name (sent as `install.*`) or a custom name.
    pub event: &'a str,
    /// The installation ID (`app.installation.id`).
    pub installation_id: &'a str,
    /// Kept across retries: `log.record.uid`.
    pub message_id: &'a str,
    /// When it happened, nanoseconds since the epoch (0: unknown).
    pub time_unix_nano: u128,
    /// Its properties, as every protocol carries them.
    pub properties: &'a Map<String, Value>,
}

/// Who sends: the instrumentation scope, and resource attributes of the sender itself.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// `scope.name`.
    pub name: &'a str,
    /// `scope.version`.
    pub version: &'a str,
    /// Attributes added to every resource (`os.type`, `telemetry.sdk.*`).
    pub resource: &'a [(&'a str, &'a str)],
}

/// The request carrying `records`, observed (sent) at `observed_unix_nano`: consecutive records of
/// one installation and machine share a resource.
pub fn request<'a>(records: impl IntoIterator<Item = Record<'a>>, observed_unix_nano: u128, sender: &Sender) -> Value {
    let mut resources: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    for record in records {
        let (resource, log) = split(record, observed_unix_nano, sender);
        match resources.last_mut() {
            Some((last, logs)) if *last == resource => logs.push(log),
            _ => resources.push((resource, vec![log])),
        }
    }
    let resource_logs: Vec<Value> = resources
        .into_iter()
        .map(|(attributes, logs)| {
            json!({
                "resource": {"attributes": attributes},
                "scopeLogs": [{"scope": {"name": sender.name, "version": sender.version}, "logRecords": logs}],
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs })
}

/// One record alone, with its resource (for size limits).
pub fn one(record: Record, sender: &Sender) -> Value {
    let (resource, log) = split(record, record.time_unix_nano, sender);
    json!([resource, log])
}

/// The resource attributes and the `LogRecord` of one event.
fn split(r: Record, observed_unix_nano: u128, sender: &Sender) -> (Vec<Value>, Value) {
    let mut resource = vec![attribute(INSTALLATION_ID, &Value::from(r.installation_id))];
    resource.extend(sender.resource.iter().map(|(k, v)| attribute(k, &Value::from(*v))));
    let mut attributes = vec![attribute("log.record.uid", &Value::from(r.message_id))];
    for (key, value) in r.properties {
        if let Some(name) = to_otel(&RESOURCE, key) {
            let value = match (key.as_str(), value) {
                (prop::ARCH, Value::String(arch)) => Value::from(to_otel(&ARCH_NAMES, arch).unwrap_or(arch)),
                _ => value.clone(),
            };
            resource.push(attribute(name, &value));
        } else if RESOURCE_ONLY.contains(&key.as_str()) {
            if !sender.resource.iter().any(|(k, _)| k == key) {
                resource.push(attribute(key, value));
            }
        } else {
            attributes.push(attribute(to_otel(&RECORD, key).unwrap_or(key), value));
        }
    }
    resource.retain(|a| a["value"] != json!({}));
    attributes.retain(|a| a["value"] != json!({}));
    let severity = if r.event == event::ERROR { ERROR } else { INFO };
    let log = json!({
        "timeUnixNano": r.time_unix_nano.to_string(),
        "observedTimeUnixNano": observed_unix_nano.to_string(),
        "severityNumber": severity,
        "severityText": if severity == ERROR { "ERROR" } else { "INFO" },
        "eventName": to_otel(&EVENT_NAMES, r.event).unwrap_or(r.event),
        "attributes": attributes,
    });
    (resource, log)
}

/// `{"key": …, "value": AnyValue}`; a null value becomes an empty `AnyValue` (dropped above).
fn attribute(key: &str, value: &Value) -> Value {
    json!({"key": key, "value": any_value(value)})
}

/// A JSON value as an OTLP `AnyValue` (64-bit integers as strings, as the JSON mapping writes them).
fn any_value(value: &Value) -> Value {
    match value {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "intValue": i.to_string() }),
            None => json!({ "doubleValue": n.as_f64() }),
        },
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(items) => json!({"arrayValue": {"values": items.iter().map(any_value).collect::<Vec<_>>()}}),
        Value::Object(map) => {
            json!({"kvlistValue": {"values": map.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>()}})
        }
    }
}
