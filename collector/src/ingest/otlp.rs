//! OpenTelemetry logs over OTLP/HTTP: `POST /v1/logs` with an `ExportLogsServiceRequest`, as
//! protobuf (`application/x-protobuf`, what the official SDK exporters send) or in the proto3 JSON
//! mapping (`application/json`).
//!
//! One `LogRecord` is one event: its `eventName` (`install.started`, ... or a custom name), the
//! installation ID from the resource attribute `app.installation.id`, and the facts from the
//! resource and record attributes, renamed as `beacon_wire::otlp` says. A record that cannot be
//! stored (no event name, no installation ID, too large) is refused alone and counted in the
//! answer's `partial_success`, as OTLP asks; the others are stored.
//!
//! Only the fields read are declared; protobuf skips the others, and so does serde.

use base64::Engine;
use beacon_wire::otlp;
use prost::Message;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::{Batch, IngestError, Keys, MAX_EVENT_BYTES, Refused};
use crate::event::{Event, Fallbacks, Protocol};

/// How the request body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names; anything else is a 415.
    pub fn of(content_type: Option<&str>) -> Result<Encoding, IngestError> {
        let essence = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/x-protobuf" | "application/protobuf") => Ok(Encoding::Protobuf),
            Some("application/json") => Ok(Encoding::Json),
            Some(other) => Err(IngestError::UnsupportedMediaType(format!(
                "Content-Type {other:?} is not an OTLP encoding"
            ))),
            None => Err(IngestError::UnsupportedMediaType("no Content-Type".into())),
        }
    }

    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Parses an OTLP logs request. The key comes only from the `Authorization` header (set with
/// `OTEL_EXPORTER_OTLP_HEADERS`).
pub fn parse(body: &[u8], encoding: Encoding, header_key: Option<String>, keys: &Keys) -> Result<Batch, IngestError> {
    keys.check(header_key.as_deref())?;
    let request = match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| IngestError::BadOtlp(format!("body is not a protobuf ExportLogsServiceRequest: {e}")))?,
        Encoding::Json => {
            let value = super::parse_json(body)?;
            serde_json::from_value(value)
                .map_err(|e| IngestError::BadOtlp(format!("body is not an ExportLogsServiceRequest: {e}")))?
        }
    };
    let mut batch = Batch::default();
    let mut index = 0;
    for resource_logs in request.resource_logs {
        let resource = attributes(resource_logs.resource.unwrap_or_default().attributes, &otlp::RESOURCE);
        for record in resource_logs.scope_logs.into_iter().flat_map(|s| s.log_records) {
            match event(&resource, record, index) {
                Ok(e) => batch.events.push(e),
                Err(why) => {
                    batch.refused.count += 1;
                    batch.refused.first.get_or_insert(why);
                }
            }
            index += 1;
        }
    }
    Ok(batch)
}

/// The answer to an accepted request: an `ExportLogsServiceResponse`, with `partial_success`
/// when some records were refused.
pub fn answer(encoding: Encoding, refused: &Refused) -> Vec<u8> {
    let partial = (refused.count > 0).then(|| PartialSuccess {
        rejected_log_records: i64::try_from(refused.count).unwrap_or(i64::MAX),
        error_message: refused.first.clone().unwrap_or_default(),
    });
    match encoding {
        Encoding::Protobuf => ExportLogsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Encoding::Json => {
            let body = match partial {
                // int64 is a string in the proto3 JSON mapping.
                Some(p) => json!({"partialSuccess": {
                    "rejectedLogRecords": p.rejected_log_records.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => json!({}),
            };
            body.to_string().into_bytes()
        }
    }
}

/// The body of a refusal: a `google.rpc.Status` whose message says what went wrong and how to fix it.
pub fn status(encoding: Encoding, message: &str) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => Status {
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => json!({ "message": message }).to_string().into_bytes(),
    }
}

/// One record as an event, or why it is refused.
fn event(resource: &Map<String, Value>, record: LogRecord, index: usize) -> Result<Event, String> {
    let mut props = resource.clone();
    props.extend(attributes(record.attributes, &otlp::RECORD));
    let installation_id = props
        .remove(otlp::INSTALLATION_ID)
        .as_ref()
        .and_then(crate::event::as_text)
        .ok_or_else(|| format!("log record {index} has no resource attribute {}", otlp::INSTALLATION_ID))?;
    let name = Some(record.event_name)
        .filter(|n| !n.trim().is_empty())
        .or_else(|| props.get("event.name").and_then(crate::event::as_text))
        .ok_or_else(|| format!("log record {index} has no eventName"))?;
    let name = otlp::from_otel(&otlp::EVENT_NAMES, &name).map_or(name, String::from);
    if let Some(Value::String(message)) = record.body.and_then(|b| b.value).map(any_value)
        && !props.contains_key(beacon_wire::prop::MESSAGE)
    {
        props.insert(beacon_wire::prop::MESSAGE.into(), Value::String(message));
    }
    let size = Value::Object(props.clone()).to_string().len();
    if size > MAX_EVENT_BYTES {
        return Err(format!(
            "log record {index} is {size} bytes, over the {MAX_EVENT_BYTES} byte limit"
        ));
    }
    let nanos = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|&n| n > 0);
    // A record has no ID of its own: one derived from what identifies it makes a retried export
    // a duplicate, stored once.
    let message_id = props
        .remove("log.record.uid")
        .as_ref()
        .and_then(crate::event::as_text)
        .or_else(|| {
            let key = format!("{installation_id}\n{name}\n{}", nanos?);
            Some(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).to_string())
        });
    let timestamp = nanos.map(|n| crate::clock::iso(i64::try_from(n / 1_000_000).unwrap_or(i64::MAX)));
    let fallbacks = Fallbacks {
        os: props.get("os.type").and_then(crate::event::as_text),
        os_version: None,
    };
    Ok(Event::new(
        Protocol::Otlp,
        message_id,
        name,
        installation_id,
        timestamp,
        props,
        fallbacks,
    ))
}

/// Attributes as properties: the keys in `table` under our name (an architecture under ours too),
/// the others under their own.
fn attributes(list: Vec<KeyValue>, table: &[(&'static str, &'static str)]) -> Map<String, Value> {
    let mut props = Map::new();
    for kv in list {
        let Some(value) = kv.value.and_then(|v| v.value).map(any_value) else {
            continue;
        };
        let value = match (otlp::from_otel(table, &kv.key), value) {
            (Some(beacon_wire::prop::ARCH), Value::String(arch)) => {
                Value::String(otlp::from_otel(&otlp::ARCH_NAMES, &arch).map_or(arch, String::from))
            }
            (_, value) => value,
        };
        let key = otlp::from_otel(table, &kv.key).map_or(kv.key, String::from);
        props.insert(key, value);
    }
    props
}

fn any_value(value: any_value::Value) -> Value {
    use any_value::Value as V;
    match value {
        V::String(s) => Value::String(s),
        V::Bool(b) => Value::Bool(b),
        V::Int(i) => Value::from(i),
        V::Double(d) => serde_json::Number::from_f64(d).map_or_else(|| Value::String(d.to_string()), Value::Number),
        V::Array(a) => Value::Array(a.values.into_iter().filter_map(|v| v.value).map(any_value).collect()),
        V::Kvlist(l) => Value::Object(
            l.values
                .into_iter()
                .filter_map(|kv| Some((kv.key, any_value(kv.value?.value?))))
                .collect(),
        ),
        V::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

// The messages of opentelemetry/proto/collector/logs/v1/logs_service.proto and the files it
// imports, reduced to the fields read. serde reads their proto3 JSON mapping: lowerCamelCase
// names, 64-bit integers as strings or numbers, bytes as base64, unknown fields skipped.

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_logs: Vec<ScopeLogs>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Resource {
    #[prost(message, repeated, tag = "1")]
    attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ScopeLogs {
    #[prost(message, repeated, tag = "2")]
    log_records: Vec<LogRecord>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LogRecord {
    #[prost(fixed64, tag = "1")]
    #[serde(deserialize_with = "int64")]
    time_unix_nano: u64,
    #[prost(fixed64, tag = "11")]
    #[serde(deserialize_with = "int64")]
    observed_time_unix_nano: u64,
    #[prost(message, optional, tag = "5")]
    body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    attributes: Vec<KeyValue>,
    #[prost(string, tag = "12")]
    event_name: String,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KeyValue {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    #[serde(flatten)]
    value: Option<any_value::Value>,
}

mod any_value {
    use serde::Deserialize;

    /// `AnyValue.value`: in JSON, an object with one of these keys.
    #[derive(Clone, PartialEq, prost::Oneof, Deserialize)]
    pub enum Value {
        #[prost(string, tag = "1")]
        #[serde(rename = "stringValue")]
        String(String),
        #[prost(bool, tag = "2")]
        #[serde(rename = "boolValue")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        #[serde(rename = "intValue")]
        Int(#[serde(deserialize_with = "super::int64")] i64),
        #[prost(double, tag = "4")]
        #[serde(rename = "doubleValue")]
        Double(f64),
        #[prost(message, tag = "5")]
        #[serde(rename = "arrayValue")]
        Array(super::ArrayValue),
        #[prost(message, tag = "6")]
        #[serde(rename = "kvlistValue")]
        Kvlist(super::KeyValueList),
        #[prost(bytes = "vec", tag = "7")]
        #[serde(rename = "bytesValue")]
        Bytes(#[serde(deserialize_with = "super::base64_bytes")] Vec<u8>),
    }
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    values: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
struct ExportLogsServiceResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_log_records: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// `google.rpc.Status`; OTLP leaves `code` unused.
#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(string, tag = "2")]
    message: String,
}

/// A 64-bit integer as the proto3 JSON mapping writes it (a decimal string), or as a number.
fn int64<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Signed(i64),
        Unsigned(u64),
        Text(String),
    }
    let n: i128 = match Int::deserialize(d)? {
        Int::Signed(n) => n.into(),
        Int::Unsigned(n) => n.into(),
        Int::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer")))?,
    };
    T::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} is out of range")))
}

/// `bytes` as the proto3 JSON mapping writes them: base64.
fn base64_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::String(value.into()))
    }

    fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        text("service.name", "acme"),
                        text("service.version", "2.4.0"),
                        text("app.installation.id", "6f1c"),
                        text("os.name", "ubuntu"),
                        text("host.arch", "arm64"),
                    ],
                }),
                scope_logs: vec![ScopeLogs { log_records: records }],
            }],
        }
    }

    fn failed() -> LogRecord {
        LogRecord {
            time_unix_nano: 1_795_428_000_123_456_789,
            event_name: "install.failed".into(),
            attributes: vec![
                text("install.step", "db"),
                kv("process.exit.code", any_value::Value::Int(3)),
                text("custom", "kept"),
            ],
            ..LogRecord::default()
        }
    }

    #[test]
    fn protobuf_records_become_checkpoints_with_their_facts() {
        let body = request(vec![failed()]).encode_to_vec();
        let batch = parse(&body, Encoding::Protobuf, None, &Keys::default()).unwrap();
        let e = &batch.events[0];
        assert_eq!(
            (e.event.as_str(), e.installation_id.as_str(), e.protocol),
            ("Installation Error", "6f1c", Protocol::Otlp)
        );
        assert_eq!(e.product.as_deref(), Some("acme"));
        assert_eq!(e.product_version.as_deref(), Some("2.4.0"));
        assert_eq!(e.arch.as_deref(), Some("aarch64"));
        assert_eq!((e.step.as_deref(), e.exit_code), (Some("db"), Some(3)));
        assert_eq!(e.properties["custom"], "kept");
        assert_eq!(e.timestamp.as_deref(), Some("2026-11-23T10:00:00.123Z"));
        let again = parse(&body, Encoding::Protobuf, None, &Keys::default()).unwrap();
        assert_eq!(again.events[0].message_id, e.message_id, "a retry is the same event");
        assert_eq!(batch.refused.count, 0);
    }

    #[test]
    fn json_mapping_reads_strings_for_64_bit_integers() {
        let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "app.installation.id", "value": {"stringValue": "i1"}}]},
        "scopeLogs": [{"scope": {"name": "x"}, "logRecords": [{
            "timeUnixNano": "1795428000123456789", "eventName": "deploy.done", "severityNumber": 9,
            "body": {"stringValue": "hello"},
            "attributes": [
                {"key": "process.exit.code", "value": {"intValue": "7"}},
                {"key": "install.step_durations_ms", "value": {"kvlistValue": {"values": [
                    {"key": "db", "value": {"intValue": 12}}]}}},
                {"key": "blob", "value": {"bytesValue": "aGk="}}
            ]}]}]}]});
        let batch = parse(body.to_string().as_bytes(), Encoding::Json, None, &Keys::default()).unwrap();
        let e = &batch.events[0];
        assert_eq!(e.event, "deploy.done", "a custom event keeps its name");
        assert_eq!(e.exit_code, Some(7));
        assert_eq!(e.properties["step_durations_ms"], json!({"db": 12}));
        assert_eq!(e.properties["message"], "hello");
        assert_eq!(e.properties["blob"], "aGk=");
        assert_eq!(e.timestamp.as_deref(), Some("2026-11-23T10:00:00.123Z"));
    }

    #[test]
    fn records_without_name_or_id_are_refused_alone() {
        let mut unnamed = failed();
        unnamed.event_name.clear();
        let mut req = request(vec![failed(), unnamed]);
        req.resource_logs.push(ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                log_records: vec![failed()],
            }],
        });
        let batch = parse(&req.encode_to_vec(), Encoding::Protobuf, None, &Keys::default()).unwrap();
        assert_eq!((batch.events.len(), batch.refused.count), (1, 2));
        assert_eq!(batch.refused.first.as_deref(), Some("log record 1 has no eventName"));
        let answer = ExportLogsServiceResponse::decode(&answer(Encoding::Protobuf, &batch.refused)[..]).unwrap();
        assert_eq!(answer.partial_success.unwrap().rejected_log_records, 2);
        let json: Value = serde_json::from_slice(&super::answer(Encoding::Json, &batch.refused)).unwrap();
        assert_eq!(json["partialSuccess"]["rejectedLogRecords"], "2");
    }

    #[test]
    fn bad_bodies_and_types_are_named() {
        let err = parse(b"\xff\xff", Encoding::Protobuf, None, &Keys::default()).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.message().contains("protobuf"), "{}", err.message());
        let err = parse(br#"{"resourceLogs": 3}"#, Encoding::Json, None, &Keys::default()).unwrap_err();
        assert!(err.message().contains("ExportLogsServiceRequest"), "{}", err.message());
        assert_eq!(Encoding::of(Some("application/x-protobuf")), Ok(Encoding::Protobuf));
        assert_eq!(
            Encoding::of(Some("Application/JSON; charset=utf-8")),
            Ok(Encoding::Json)
        );
        assert_eq!(Encoding::of(Some("text/plain")).unwrap_err().status(), 415);
        assert_eq!(Encoding::of(None).unwrap_err().status(), 415);
        let keys = Keys::new(vec!["k".into()]);
        assert_eq!(parse(b"", Encoding::Protobuf, None, &keys).unwrap_err().status(), 401);
    }
}
