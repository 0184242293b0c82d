//! `--protocol otlp`: what the real binary sends parses with the official OpenTelemetry protobuf
//! schema's JSON mapping, unknown fields refused (`opentelemetry-proto` from PyPI, which `.ci/run`
//! installs; without it these fail under `CI=true` and skip with a line on stderr elsewhere).

use serde_json::{Value, json};

use crate::support::tools::{have_otel_python, otlp_records};
use crate::support::{Env, Reply, Server};

fn otlp(env: &Env, server: &Server) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.args([
        "--protocol",
        "otlp",
        "--endpoint",
        &server.url,
        "--product-version",
        "2.4.0",
    ]);
    cmd
}

#[test]
fn the_body_parses_with_the_official_schema_unknown_fields_refused() {
    if !have_otel_python() {
        return;
    }
    let server = Server::start();
    let env = Env::new();
    otlp(&env, &server).arg("started").assert().success();
    otlp(&env, &server)
        .args(["error", "--step", "db", "--exit-code", "3", "--message", "disk full"])
        .assert()
        .success();
    otlp(&env, &server)
        .args(["support", "--email", "ada@example.com"])
        .assert()
        .success();
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.url == "/v1/logs" && r.header("content-type") == Some("application/json"))
    );
    let bodies: Vec<&[u8]> = requests.iter().map(|r| &r.body[..]).collect();
    let records = otlp_records(&bodies);
    let names: Vec<&Value> = records.iter().map(|r| &r["eventName"]).collect();
    assert_eq!(
        names,
        ["install.started", "install.failed", "install.support_requested"]
    );
    let severities: Vec<(&Value, &Value)> = records
        .iter()
        .map(|r| (&r["severityNumber"], &r["severityText"]))
        .collect();
    assert_eq!(
        severities,
        [
            (&json!(9), &json!("INFO")),
            (&json!(17), &json!("ERROR")),
            (&json!(9), &json!("INFO"))
        ]
    );
    let id = std::fs::read_to_string(env.id_file("acme")).unwrap();
    let resource = &records[1]["resource"];
    assert_eq!(resource["app.installation.id"], json!({"stringValue": id.trim()}));
    assert_eq!(resource["service.name"], json!({"stringValue": "acme"}));
    assert_eq!(resource["service.version"], json!({"stringValue": "2.4.0"}));
    assert_eq!(resource["telemetry.sdk.name"], json!({"stringValue": "install-beacon"}));
    for key in [
        "os.type",
        "os.name",
        "os.version",
        "host.arch",
        "telemetry.sdk.version",
        "install.cpu_count",
    ] {
        assert!(resource.get(key).is_some(), "{key} in {resource}");
    }
    let failed = &records[1]["attributes"];
    assert_eq!(failed["install.step"], json!({"stringValue": "db"}));
    assert_eq!(failed["process.exit.code"], json!({"intValue": "3"}));
    assert_eq!(failed["install.message"], json!({"stringValue": "disk full"}));
    assert!(failed.get("user.email").is_none());
    assert_eq!(
        records[2]["attributes"]["user.email"],
        json!({"stringValue": "ada@example.com"})
    );
    assert!(
        records
            .iter()
            .all(|r| r["time"].as_u64().is_some_and(|t| t > 1_700_000_000_000_000_000))
    );
    assert!(records.iter().all(|r| r["observed"].as_u64() >= r["time"].as_u64()));
}

#[test]
fn otel_sdk_disabled_opts_out_of_every_protocol_and_status_names_it() {
    let server = Server::start();
    let env = Env::new();
    for protocol in ["segment", "posthog", "json", "otlp"] {
        env.cmd()
            .env("OTEL_SDK_DISABLED", "true")
            .args([
                "--protocol",
                protocol,
                "--endpoint",
                &server.url,
                "--key",
                "k",
                "started",
            ])
            .assert()
            .success();
    }
    assert!(server.requests().is_empty(), "nothing is sent");
    assert!(!env.state_dir("acme").exists(), "nothing is created");
    let status = env
        .cmd()
        .env("OTEL_SDK_DISABLED", "true")
        .arg("status")
        .output()
        .unwrap();
    let text = crate::support::stdout(&status);
    assert!(
        text.contains("telemetry:  disabled\ndecided by: environment variable OTEL_SDK_DISABLED\n"),
        "{text}"
    );
}

#[test]
fn otel_variables_set_the_logs_url_and_headers() {
    let server = Server::start();
    let env = Env::new();
    let otlp = || {
        let mut cmd = env.cmd();
        cmd.args(["--protocol", "otlp", "--quiet"]);
        cmd
    };
    // The endpoint variable gets /v1/logs; the headers are percent-decoded.
    otlp()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("{}/otlp/", server.url))
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Bearer%20t0k%3D, x-tenant=acme",
        )
        .arg("started")
        .assert()
        .success();
    // The logs endpoint is used as it is and wins, as the logs headers do.
    otlp()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", crate::support::refused_url())
        .env(
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            format!("{}/ingest/logs", server.url),
        )
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
        .env("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-tenant=logs-team")
        .arg("success")
        .assert()
        .success();
    // --endpoint wins over both.
    otlp()
        .env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", crate::support::refused_url())
        .args(["--endpoint", &server.url, "heartbeat"])
        .assert()
        .success();
    let requests = server.requests();
    let seen: Vec<(&str, Option<&str>, Option<&str>)> = requests
        .iter()
        .map(|r| (r.url.as_str(), r.header("authorization"), r.header("x-tenant")))
        .collect();
    assert_eq!(
        seen,
        [
            ("/otlp/v1/logs", Some("Bearer t0k="), Some("acme")),
            ("/ingest/logs", None, Some("logs-team")),
            ("/v1/logs", None, None)
        ]
    );

    // --dry-run shows the header masked; a malformed entry is named, its value never shown.
    let out = env
        .cmd()
        .args(["--protocol", "otlp"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &server.url)
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret-value-123,oops")
        .args(["--dry-run", "started"])
        .output()
        .unwrap();
    let (stdout, stderr) = (crate::support::stdout(&out), crate::support::stderr(&out));
    assert!(stdout.contains("x-api-key: secr****"), "{stdout}");
    assert!(!stdout.contains("secret-value-123") && !stderr.contains("secret-value-123"));
    assert!(
        stderr.contains("ignoring 1 entry of OTEL_EXPORTER_OTLP_HEADERS: use key=value pairs separated by commas"),
        "{stderr}"
    );
}

#[test]
fn partial_success_is_reported_like_a_refusal() {
    let answer = r#"{"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "log record 0 is too large"}}"#;
    let server = Server::with_plan(vec![Reply::Body(200, answer.into())]);
    let env = Env::new();
    let out = otlp(&env, &server).args(["--strict", "started"]).output().unwrap();
    let stderr = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("server rejected 1 of 1 log records: log record 0 is too large"),
        "{stderr}"
    );
    otlp(&env, &server).arg("success").assert().success();
    assert_eq!(server.requests().len(), 2, "a refused record is not sent again");
}
