//! Outside tools some tests need (tmux, zsh, chromium, openssl, unshare, curl). A test never passes
//! silently without its tool: under `CI=true` a missing tool fails the test; elsewhere the test
//! skips with one line on the real stderr, which `cargo test` shows even without `--nocapture`.
//!
//! Both integration suites use it through `testkit::tools`.

use std::io::Write;
use std::process::{Command, Stdio};

/// Whether `tool` runs (`tool PROBE...` exits 0). When it does not, reports it as [`cannot_run`]
/// does, naming the Debian `package` that provides it, and the caller returns early.
pub fn have(tool: &str, probe: &[&str], package: &str) -> bool {
    let runs = Command::new(tool)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        cannot_run(&format!("{tool} is not installed (apt-get install {package})"));
    }
    runs
}

/// Reports that the current test cannot run here, saying `why`: panics under `CI=true`, else
/// writes one `SKIPPED` line to stderr.
pub fn cannot_run(why: &str) {
    let on_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let line = skip_line(on_ci, why);
    // Not eprintln!: libtest captures the print macros, not writes to the stderr handle.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The line a skipped test prints; panics instead on CI.
pub fn skip_line(on_ci: bool, why: &str) -> String {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(!on_ci, "{test}: {why}; CI=true requires it (.ci/run installs it)");
    format!("SKIPPED {test}: {why}")
}

/// The PyPI packages these tests run, as `.ci/run` installs them.
pub const PYPI: &str = "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-proto";

/// Whether python3 has the OpenTelemetry packages; reports it as a missing tool when not.
pub fn have_otel_python() -> bool {
    let imports = "import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http, \
                   opentelemetry.proto.collector.logs.v1.logs_service_pb2";
    let ok = Command::new("python3")
        .args(["-c", imports])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        cannot_run(&format!(
            "python3 lacks the OpenTelemetry packages (python3 -m pip install {PYPI})"
        ));
    }
    ok
}

/// Runs a Python program with `args`; returns its stdout, failing the test on a non-zero exit.
pub fn python(program: &str, args: &[&str]) -> String {
    let mut child = Command::new("python3")
        .arg("-")
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(program.as_bytes())
        .expect("write program");
    let out = child.wait_with_output().expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python3 failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses each body with `json_format.Parse(..., ignore_unknown_fields=False)` into an
/// `ExportLogsServiceRequest` and prints one JSON line per record: what the schema read.
const STRICT: &str = r#"
import json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

def attrs(kvs):
    return {kv.key: json_format.MessageToDict(kv.value) for kv in kvs}

for path in sys.argv[1:]:
    with open(path) as f:
        req = json_format.Parse(f.read(), ExportLogsServiceRequest(), ignore_unknown_fields=False)
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                print(json.dumps({
                    "resource": attrs(rl.resource.attributes), "scope": sl.scope.name,
                    "eventName": r.event_name, "severityNumber": r.severity_number,
                    "severityText": r.severity_text, "time": r.time_unix_nano,
                    "observed": r.observed_time_unix_nano, "attributes": attrs(r.attributes),
                }, sort_keys=True))
"#;

/// The log records of OTLP/HTTP JSON `bodies` as the official protobuf schema reads them (unknown
/// fields refused): per record its `resource` and `attributes` (key → `AnyValue` as JSON), `scope`,
/// `eventName`, `severityNumber`, `severityText`, `time` and `observed` (nanoseconds).
pub fn otlp_records(bodies: &[&[u8]]) -> Vec<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!(
        "otlp-records-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let paths: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let path = dir.join(format!("{i}.json"));
            std::fs::write(&path, body).expect("write body");
            path.to_str().expect("UTF-8 temp path").to_owned()
        })
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let out = python(STRICT, &args);
    let _ = std::fs::remove_dir_all(&dir);
    out.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
