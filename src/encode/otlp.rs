//! OpenTelemetry logs, OTLP/HTTP JSON (`POST {endpoint}/v1/logs`): one `LogRecord` per event,
//! written by hand in the proto3 JSON mapping so the binary carries no protobuf code. The names
//! come from `beacon_wire::otlp`, which the collector reads them back with.

use serde_json::Value;

use beacon_wire::otlp;
use beacon_wire::otlp::json::{Record, Sender};

use crate::event::{Event, branding};

/// The `ExportLogsServiceRequest` of `events`, sent at `observed` (RFC 3339).
pub fn request(events: &[Event], observed: &str) -> Value {
    otlp::json::request(events.iter().map(record), nanos(observed), &sender())
}

/// One event alone, as [`request`] sends it (for size limits).
pub fn event(e: &Event) -> Value {
    otlp::json::one(record(e), &sender())
}

fn record(e: &Event) -> Record<'_> {
    Record {
        event: standard_name(&e.event),
        installation_id: &e.installation_id,
        message_id: &e.message_id,
        time_unix_nano: nanos(&e.timestamp),
        properties: &e.properties,
    }
}

/// What describes this binary on every resource.
const RESOURCE: [(&str, &str); 3] = [
    ("os.type", os_type()),
    ("telemetry.sdk.name", otlp::SDK_NAME),
    ("telemetry.sdk.language", "rust"),
];

fn sender() -> Sender<'static> {
    Sender {
        name: otlp::SDK_NAME,
        version: super::VERSION,
        resource: &RESOURCE,
    }
}

/// The standard name of a checkpoint this build sends under a branded name.
fn standard_name(name: &str) -> &str {
    branding::CHECKPOINT_NAMES
        .into_iter()
        .find(|(branded, _)| *branded == name)
        .map_or(name, |(_, standard)| standard)
}

/// Nanoseconds since the epoch of an RFC 3339 time; 0 (unknown, in OTLP's terms) if it does not parse.
fn nanos(time: &str) -> u128 {
    humantime::parse_rfc3339_weak(time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// `partial_success.rejected_log_records` of an `ExportLogsServiceResponse` (JSON), as a refusal
/// of that many of the request's `events`, with the server's message.
pub fn partly_refused(body: &[u8], events: usize) -> Option<(String, usize)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let partial = answer.get("partialSuccess")?;
    // int64 is a string in the JSON mapping; a number is read too.
    let refused = match &partial["rejectedLogRecords"] {
        Value::String(s) => s.parse::<usize>().ok()?,
        other => usize::try_from(other.as_u64()?).ok()?,
    };
    if refused == 0 {
        return None;
    }
    let refused = refused.min(events);
    let mut reason = format!("server rejected {refused} of {events} log records");
    if let Some(message) = partial["errorMessage"].as_str().filter(|m| !m.trim().is_empty()) {
        reason.push_str(": ");
        reason.push_str(&crate::ui::plain(message, 200));
    }
    Some((reason, refused))
}

/// The headers of an `OTEL_EXPORTER_OTLP_HEADERS` value (`k=v,k2=v2`, values percent-decoded), and
/// how many entries were not a valid `key=value`.
pub fn headers(text: &str) -> (Vec<(String, String)>, usize) {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let (mut headers, mut bad) = (Vec::new(), 0);
    for entry in text.split(',').filter(|e| !e.trim().is_empty()) {
        let parsed = entry.split_once('=').and_then(|(k, v)| {
            let (key, value) = (k.trim(), percent_decode(v.trim()));
            let valid = !key.is_empty() && key.chars().all(token) && !value.chars().any(char::is_control);
            valid.then(|| (key.to_owned(), value))
        });
        match parsed {
            Some(header) => headers.push(header),
            None => bad += 1,
        }
    }
    (headers, bad)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The semantic conventions' `os.type` of this build.
const fn os_type() -> &'static str {
    if cfg!(target_os = "macos") {
        "darwin"
    } else {
        std::env::consts::OS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_wire::event;
    use serde_json::json;

    fn e(name: &str, props: Value) -> Event {
        Event {
            event: name.into(),
            installation_id: "6f1c".into(),
            message_id: "m1".into(),
            timestamp: "2026-11-23T10:00:00.123Z".into(),
            properties: props.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn checkpoints_become_named_records_on_a_shared_resource() {
        let facts = json!({"product": "acme", "arch": "x86_64", "os": "debian", "ci": false});
        let mut failed = facts.clone();
        failed["step"] = "db".into();
        failed["exit_code"] = 3.into();
        failed["email"] = Value::Null;
        let body = request(
            &[e(event::STARTED, facts), e(event::ERROR, failed)],
            "2026-11-23T10:00:01Z",
        );
        let logs = &body["resourceLogs"];
        assert_eq!(logs.as_array().map(Vec::len), Some(1), "{body:#}");
        let resource = &logs[0]["resource"]["attributes"];
        assert!(
            resource
                .as_array()
                .unwrap()
                .contains(&json!({"key": "host.arch", "value": {"stringValue": "amd64"}}))
        );
        assert!(
            resource
                .as_array()
                .unwrap()
                .contains(&json!({"key": "service.name", "value": {"stringValue": "acme"}}))
        );
        assert!(
            resource
                .as_array()
                .unwrap()
                .contains(&json!({"key": "install.ci", "value": {"boolValue": false}}))
        );
        let records = &logs[0]["scopeLogs"][0]["logRecords"];
        assert_eq!(records[0]["eventName"], "install.started");
        assert_eq!(
            (&records[1]["eventName"], &records[1]["severityNumber"]),
            (&json!("install.failed"), &json!(17))
        );
        assert_eq!(records[1]["timeUnixNano"], "1795428000123000000");
        assert_eq!(records[1]["observedTimeUnixNano"], "1795428001000000000");
        let attributes = records[1]["attributes"].as_array().unwrap();
        assert!(attributes.contains(&json!({"key": "process.exit.code", "value": {"intValue": "3"}})));
        assert!(attributes.iter().all(|a| a["key"] != "user.email"), "null is left out");
    }

    #[test]
    fn partial_success_is_a_refusal_of_that_many() {
        let body =
            br#"{"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "log record 1 has no eventName"}}"#;
        assert_eq!(
            partly_refused(body, 3),
            Some((
                "server rejected 2 of 3 log records: log record 1 has no eventName".into(),
                2
            ))
        );
        assert_eq!(
            partly_refused(br#"{"partialSuccess": {"rejectedLogRecords": 1}}"#, 1).map(|r| r.1),
            Some(1)
        );
        for accepted in [
            &b"{}"[..],
            b"",
            br#"{"partialSuccess": {}}"#,
            br#"{"partialSuccess": {"rejectedLogRecords": "0"}}"#,
        ] {
            assert_eq!(partly_refused(accepted, 3), None);
        }
    }

    #[test]
    fn headers_are_key_value_pairs_percent_decoded() {
        let (h, bad) = headers(" Authorization=Bearer%20t0k%3D ,x-tenant = acme,,bad,=v,a b=c,nl=%0A");
        assert_eq!(
            h,
            [
                ("Authorization".to_owned(), "Bearer t0k=".to_owned()),
                ("x-tenant".to_owned(), "acme".to_owned())
            ]
        );
        assert_eq!(bad, 4);
        assert_eq!(percent_decode("100%-%zz%41"), "100%-%zzA");
    }

    #[test]
    fn other_installations_get_their_own_resource() {
        let mut other = e("Custom", json!({"seats": 1.5, "tags": ["a"], "map": {"k": 1}}));
        other.installation_id = "7a2d".into();
        let body = request(&[e(event::STARTED, json!({})), other], "x");
        let attrs = &body["resourceLogs"][1]["scopeLogs"][0]["logRecords"][0]["attributes"];
        assert!(
            attrs
                .as_array()
                .unwrap()
                .contains(&json!({"key": "seats", "value": {"doubleValue": 1.5}}))
        );
        assert!(attrs.as_array().unwrap().contains(
            &json!({"key": "map", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "1"}}]}}})
        ));
        assert_eq!(
            body["resourceLogs"][1]["scopeLogs"][0]["logRecords"][0]["observedTimeUnixNano"],
            "0"
        );
    }
}
