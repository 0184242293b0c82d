//! OpenTelemetry logs at `/v1/logs`, sent by the official Python SDK's OTLP/HTTP exporter
//! (protobuf) and as the official schema's JSON mapping, answers read back with that schema.
//! `.ci/run` installs the PyPI packages; without them these fail under `CI=true` and skip with a
//! line on stderr elsewhere.

use serde_json::Value;

use crate::common::{self, Collector, product};
use crate::tools::{have_otel_python, python};

/// acme's report: one installation failed, at step `db` with exit code 3 and "disk full".
fn failed_at_db(report: &Value) -> &Value {
    let acme = product(report, "acme");
    assert_eq!(acme["installations"]["failed"], 1, "{acme:#}");
    let step = &acme["failing_steps"][0];
    assert_eq!(
        (&step["step"], &step["exit_code"], &step["messages"][0]["message"]),
        (&Value::from("db"), &Value::from(3), &Value::from("disk full")),
        "{step:#}"
    );
    acme
}

/// Every stored event, as `export --format jsonl` writes them.
fn exported(collector: &Collector) -> Vec<Value> {
    let db = collector.db.to_str().expect("UTF-8 temp path");
    let export = common::run(["export", "--db", db, "--format", "jsonl"]).ok();
    export.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The SDK's own path: a LoggerProvider with a resource, the OTLP/HTTP exporter (protobuf), one
/// `emit` per record. The record without an event name is refused alone: the SDK exports the batch
/// in one request, and the answer's partial success says so.
const SDK: &str = r#"
import sys
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk.resources import Resource

base, key = sys.argv[1], sys.argv[2]
resource = Resource.create({
    "service.name": "acme", "service.version": "2.4.0", "app.installation.id": "6f1c-otel",
    "os.type": "linux", "os.name": "debian", "os.version": "12", "host.arch": "amd64",
})
provider = LoggerProvider(resource=resource)
exporter = OTLPLogExporter(endpoint=base + "/v1/logs", headers={"Authorization": "Bearer " + key})
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
logger = provider.get_logger("installer")
t = 1795428000123000000
logger.emit(LogRecord(timestamp=t, event_name="install.started", severity_number=SeverityNumber.INFO))
logger.emit(LogRecord(timestamp=t + 10**9, event_name="install.failed", severity_number=SeverityNumber.ERROR,
    attributes={"install.step": "db", "process.exit.code": 3, "install.message": "disk full",
                "install.duration_ms": 1250}))
logger.emit(LogRecord(timestamp=t + 2 * 10**9, event_name="install.support_requested",
    attributes={"install.step": "db", "user.email": "ops@example.com"}))
logger.emit(LogRecord(timestamp=t + 3 * 10**9, event_name="license.accepted", attributes={"seats": 5}))
logger.emit(LogRecord(timestamp=t + 4 * 10**9, body="a plain log line, no event"))
print("flushed" if provider.force_flush() else "not flushed")
provider.shutdown()
"#;

#[test]
fn the_official_sdk_exporter_is_stored_as_checkpoints_and_custom_events() {
    if !have_otel_python() {
        return;
    }
    let collector = Collector::start(&["--key", "otel-key"]);
    let out = python(SDK, &[&collector.base, "otel-key"]);
    assert_eq!(out.trim(), "flushed");
    assert_eq!(collector.stored(), 4, "{}", collector.stderr());

    let rows = exported(&collector);
    let column = |key: &str| {
        rows.iter()
            .map(|r| r[key].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        column("event"),
        [
            "Installation Started",
            "Installation Error",
            "Installation Support",
            "license.accepted"
        ]
    );
    assert!(column("protocol").iter().all(|p| *p == "otlp"));
    assert!(column("installation_id").iter().all(|id| *id == "6f1c-otel"));
    assert_eq!(column("timestamp")[0], "2026-11-23T10:00:00.123Z");
    assert_eq!(
        (column("os")[0], rows[0]["properties"]["arch"].as_str()),
        ("debian", Some("x86_64"))
    );
    assert_eq!(column("email")[2], "ops@example.com");
    assert_eq!(rows[3]["properties"]["seats"], 5);

    let report = collector.report(&["--since", "100000d"]);
    failed_at_db(&report);
}

/// Builds a request with the official schema and posts it in both encodings; the answers are
/// parsed with the official schema too, the JSON one refusing unknown fields.
const SCHEMA: &str = r#"
import sys, urllib.request
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from google.rpc.status_pb2 import Status

base = sys.argv[1]
req = ExportLogsServiceRequest()
rl = req.resource_logs.add()
for k, v in [("service.name", "acme"), ("service.version", "2.4.0"), ("app.installation.id", "6f1c-json")]:
    rl.resource.attributes.add(key=k, value={"string_value": v})
sl = rl.scope_logs.add()
sl.log_records.add(time_unix_nano=1795428000123000000, event_name="install.started", severity_number=9)
sl.log_records.add(time_unix_nano=1795428001123000000, event_name="install.succeeded", severity_number=9,
    attributes=[{"key": "install.total_duration_ms", "value": {"int_value": 4200}}])
sl.log_records.add(time_unix_nano=1795428002123000000, severity_number=9)

def post(body, content_type):
    r = urllib.request.Request(base + "/v1/logs", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()

status, ctype, body = post(json_format.MessageToJson(req).encode(), "application/json")
answer = json_format.Parse(body, ExportLogsServiceResponse(), ignore_unknown_fields=False)
print("json", status, ctype, answer.partial_success.rejected_log_records, answer.partial_success.error_message)
status, ctype, body = post(req.SerializeToString(), "application/x-protobuf")
answer = ExportLogsServiceResponse.FromString(body)
print("protobuf", status, ctype, answer.partial_success.rejected_log_records, answer.partial_success.error_message)
status, ctype, body = post(b"\x0a\xff", "application/x-protobuf")
print("refused", status, ctype, Status.FromString(body).message)
status, ctype, body = post(b"{}", "text/plain")
print("refused", status, ctype, json_format.Parse(body, Status(), ignore_unknown_fields=False).message)
"#;

#[test]
fn json_and_protobuf_answers_parse_with_the_official_schema() {
    if !have_otel_python() {
        return;
    }
    let collector = Collector::start(&[]);
    let out = python(SCHEMA, &[&collector.base]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "json 200 application/json 1 log record 2 has no eventName",
            "protobuf 200 application/x-protobuf 1 log record 2 has no eventName"
        ],
        "{out}"
    );
    assert!(
        lines[2].starts_with("refused 400 application/x-protobuf body is not a protobuf ExportLogsServiceRequest"),
        "{out}"
    );
    assert_eq!(
        lines[3],
        "refused 415 application/json Content-Type \"text/plain\" is not an OTLP encoding (send an OTLP \
         ExportLogsServiceRequest as application/x-protobuf or application/json)",
        "{out}"
    );
    // The same two records in both encodings: the second request is a retry, stored once.
    assert_eq!(collector.stored(), 2);
    let acme = product(&collector.report(&["--since", "100000d"]), "acme").clone();
    let funnel = &acme["installations"];
    assert_eq!(
        (&funnel["started"], &funnel["succeeded"]),
        (&Value::from(1), &Value::from(1)),
        "{acme:#}"
    );
}

#[test]
fn install_beacon_over_otlp_fills_the_report() {
    let collector = Collector::start(&["--key", "otel-key"]);
    let home = tempfile::tempdir().unwrap();
    let beacon = |args: &[&str]| {
        let out = std::process::Command::new(crate::end_to_end::beacon_bin())
            .env_clear()
            .env("HOME", home.path())
            .args(["--product", "acme", "--product-version", "2.4.0", "--protocol", "otlp"])
            .args(["--endpoint", &collector.base, "--key", "otel-key", "--strict"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        stderr.into_owned()
    };
    beacon(&["started"]);
    beacon(&["error", "--step", "db", "--exit-code", "3", "--message", "disk full"]);
    beacon(&["support", "--email", "ada@example.com"]);
    beacon(&["track", "license.accepted"]);
    beacon(&["heartbeat"]);

    let report = collector.report(&["--show-emails"]);
    let acme = failed_at_db(&report);
    assert_eq!(acme["support"]["requests"][0]["email"], "ada@example.com", "{acme:#}");
    assert_eq!(acme["by_version"][0]["value"], "2.4.0");
    let rows = exported(&collector);
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["protocol"] == "otlp"));
    assert_eq!(
        (&rows[3]["event"], &rows[4]["event"]),
        (&Value::from("license.accepted"), &Value::from("Instance Active"))
    );
    let id = std::fs::read_to_string(home.path().join(".local/state/acme/installation_id")).unwrap();
    assert!(rows.iter().all(|r| r["installation_id"] == id.trim()), "{rows:#?}");
}

#[test]
fn forward_otlp_sends_logs_the_official_schema_reads() {
    if !have_otel_python() {
        return;
    }
    let receiver = testkit::Server::with_plan(vec![testkit::Reply::Status(503)]);
    let forward = format!("otlp={}/otlp", receiver.url);
    let collector = Collector::start(&["--forward", &forward, "--forward-key", "otel-tok"]);
    let facts = common::facts("acme", "2.4.0", "ubuntu", "22.04");
    let events = serde_json::json!([
        {"event": "Installation Started", "installation_id": "inst-9", "message_id": "m-1",
         "timestamp": "2026-11-23T10:00:00.000Z", "properties": facts},
        {"event": "Installation Error", "installation_id": "inst-9", "message_id": "m-2",
         "timestamp": "2026-11-23T10:00:05.000Z",
         "properties": common::with(facts.clone(), serde_json::json!({"step": "db", "exit_code": 3}))},
    ]);
    assert_eq!(collector.post_json("/events", &[], &events).0, 200);

    let got = testkit::eventually(std::time::Duration::from_secs(30), "a batch accepted", || {
        let got = receiver.requests();
        if got.iter().any(|r| r.status == Some(200)) {
            Ok(got)
        } else {
            Err(got)
        }
    });
    assert_eq!(got.len(), 2, "refused once (503), then sent again: {got:#?}");
    // The retry carries the same records (only observedTimeUnixNano, the send time, moves on).
    let uids = |body: &[u8]| {
        crate::tools::otlp_records(&[body])
            .iter()
            .map(|r| r["attributes"]["log.record.uid"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(uids(&got[0].body), uids(&got[1].body));
    let sent = &got[1];
    assert_eq!(sent.url, "/otlp/v1/logs");
    assert_eq!(sent.header("authorization"), Some("Bearer otel-tok"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let records = crate::tools::otlp_records(&[&sent.body]);
    let names: Vec<&Value> = records.iter().map(|r| &r["eventName"]).collect();
    assert_eq!(names, ["install.started", "install.failed"]);
    let resource = &records[1]["resource"];
    assert_eq!(
        resource["app.installation.id"],
        serde_json::json!({"stringValue": "inst-9"})
    );
    assert_eq!(resource["service.version"], serde_json::json!({"stringValue": "2.4.0"}));
    assert_eq!(resource["host.arch"], serde_json::json!({"stringValue": "amd64"}));
    assert_eq!(
        records[1]["attributes"]["process.exit.code"],
        serde_json::json!({"intValue": "3"})
    );
    assert_eq!(
        records[1]["attributes"]["log.record.uid"],
        serde_json::json!({"stringValue": "m-2"})
    );
    assert_eq!(
        (&records[1]["severityNumber"], &records[1]["time"]),
        (&Value::from(17), &Value::from(1_795_428_005_000_000_000u64))
    );
}
