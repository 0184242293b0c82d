//! The audit log and `install-beacon log`: every event delivered, queued or dropped is recorded in
//! the state directory (0600) as it was sent, the email masked, and shown back on request.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::{Env, Reply, Server, stdout};

fn log_json(env: &Env, args: &[&str]) -> Vec<Value> {
    let out = env.cmd().args(["log", "--json"]).args(args).output().unwrap();
    assert!(out.status.success());
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn log_records_what_was_delivered_dropped_and_queued() {
    let env = Env::new();
    let out = env.cmd().arg("log").output().unwrap();
    assert!(stdout(&out).starts_with("nothing sent yet"), "{}", stdout(&out));

    let server = Server::with_plan(vec![Reply::Status(200), Reply::Body(400, "bad event".into())]);
    env.json(&server.url).arg("started").assert().success();
    env.json(&server.url)
        .args(["error", "--step", "unpack", "--exit-code", "2"])
        .assert()
        .success();
    let refused = "http://127.0.0.1:1";
    env.json(refused)
        .args(["support", "--email", "ada@example.com"])
        .assert()
        .success();

    let entries = log_json(&env, &[]);
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default();
            (s("outcome"), s("event"), s("host"))
        })
        .collect();
    let host = server.url.trim_start_matches("http://");
    assert_eq!(
        summary,
        [
            ("delivered", "Installation Started", host),
            ("dropped", "Installation Error", host),
            ("queued", "Installation Support", "127.0.0.1:1"),
        ]
    );
    // The properties as sent, the email masked; the ID and message ID as the backend saw them.
    let sent = &server.events()[0];
    assert_eq!(entries[0]["properties"], sent["properties"]);
    assert_eq!(entries[0]["message_id"], sent["message_id"]);
    assert_eq!(entries[0]["installation_id"], sent["installation_id"]);
    assert_eq!(entries[0]["protocol"], "json");
    assert!(entries[1]["reason"].as_str().unwrap().contains("400"), "{}", entries[1]);
    assert_eq!(entries[2]["properties"]["email"], "a***@example.com");
    assert!(
        entries[2]["reason"].as_str().unwrap().contains("refused"),
        "{}",
        entries[2]
    );

    let file = env.state_dir("acme").join("audit.jsonl");
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(
        !fs::read_to_string(&file).unwrap().contains("ada@"),
        "the address is never kept"
    );

    assert_eq!(log_json(&env, &["--limit", "1"]).len(), 1);
    let none = stdout(&env.cmd().args(["log", "--limit", "0"]).output().unwrap());
    assert!(!none.contains("nothing sent yet"), "the log is not empty:\n{none}");
    let table = stdout(&env.cmd().arg("log").output().unwrap());
    let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(rows.len(), 4, "header and three events:\n{table}");
    assert!(rows[0].starts_with("TIME") && rows[0].contains("OUTCOME") && rows[0].contains("EVENT"));
    assert!(
        rows[3].contains("queued (") && rows[3].contains("Installation Support"),
        "{table}"
    );
    assert!(table.contains("email=a***@example.com"), "{table}");
}

/// A queued event shows up again, as delivered, when a later call gets it out.
#[test]
fn a_queued_event_is_logged_again_when_delivered() {
    let env = Env::new();
    env.json("http://127.0.0.1:1").arg("started").assert().success();
    let server = Server::start();
    env.requeue_for(&server.url);
    env.json(&server.url).arg("flush").assert().success();
    let entries = log_json(&env, &[]);
    let outcomes: Vec<&str> = entries.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["queued", "delivered"]);
    assert_eq!(entries[0]["message_id"], entries[1]["message_id"]);
}

#[test]
fn opted_out_calls_and_dry_runs_record_nothing() {
    let env = Env::new();
    let server = Server::start();
    env.json(&server.url)
        .env("DO_NOT_TRACK", "1")
        .arg("started")
        .assert()
        .success();
    env.json(&server.url).args(["--dry-run", "started"]).assert().success();
    assert!(!env.state_dir("acme").join("audit.jsonl").exists());
}

/// `log` reads whatever the file holds: a 65,536-character event name (which made it abort),
/// bytes that are not UTF-8, nesting past any limit, wrong types, escape sequences, a line of
/// 300,000 characters. Each bad line is counted, the rest shown inert, and the call exits 0.
#[test]
fn log_shows_any_audit_file_without_failing() {
    let env = Env::new();
    let dir = env.state_dir("acme");
    fs::create_dir_all(&dir).unwrap();
    let record = |event: &str| {
        serde_json::json!({
            "event": event, "host": "h", "installation_id": "i", "message_id": "m",
            "outcome": "delivered", "properties": {"note": event}, "protocol": "json",
            "time": "2026-11-24T07:00:01Z",
        })
        .to_string()
    };
    let mut file = Vec::new();
    for line in [
        record(&"N".repeat(65_536)),
        record("\u{1b}[31mred\u{1b}]0;title\u{7}\r\u{202e}"),
        "[".repeat(100_000),
        r#"{"event": 5, "outcome": "delivered"}"#.to_owned(),
        r#"{"event": "x", "outcome": "exploded"}"#.to_owned(),
        "[1, 2, 3]".to_owned(),
        format!("\"{}\"", "x".repeat(300_000)),
        record("Installation Started"),
    ] {
        file.extend_from_slice(line.as_bytes());
        file.push(b'\n');
    }
    file.extend_from_slice(b"\xff\xfe{\"event\"\x00\n");
    fs::write(dir.join("audit.jsonl"), &file).unwrap();

    let out = env.cmd().arg("log").output().unwrap();
    let (table, err) = (stdout(&out), crate::support::stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("skipped 6 unreadable line(s)"), "{err}");
    assert!(!table.contains(['\u{1b}', '\u{7}', '\r', '\u{202e}']), "{table:?}");
    assert!(
        table.contains("red") && table.contains("Installation Started"),
        "{table}"
    );
    assert!(table.len() < 4_000, "long values are cut: {} bytes", table.len());
    let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(rows.len(), 4, "header and three records:\n{table}");

    let out = env.cmd().args(["log", "--json", "--limit", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), record("Installation Started") + "\n");
}
