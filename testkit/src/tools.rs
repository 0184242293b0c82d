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
