//! Erasure, retention and export through the real binary: `forget --id` removes one installation
//! everywhere, `serve --retain` deletes old raw events at start and keeps the report's numbers,
//! `export` writes every event as JSON Lines or CSV.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::common::{self, Collector, facts, product, with};

/// Two installations from 2021 (one fails at db, one asks for support) and one from now.
fn events(c: &Collector) {
    let p = facts("acme", "2.4.0", "ubuntu", "22.04");
    let e = |name: &str, id: &str, ts: Option<&str>, extra: Value| {
        let mut event = json!({"event": name, "installation_id": id, "properties": with(p.clone(), extra)});
        if let Some(ts) = ts {
            event["timestamp"] = json!(ts);
        }
        event
    };
    let body = json!([
        e("Installation Started", "old-1", Some("2021-03-10T10:00:00Z"), json!({})),
        e(
            "Installation Error",
            "old-1",
            Some("2021-03-10T10:00:05Z"),
            json!({"step": "db", "exit_code": 5, "message": "disk full"})
        ),
        e("Installation Started", "old-2", Some("2021-03-11T10:00:00Z"), json!({})),
        e(
            "Installation Support",
            "old-2",
            Some("2021-03-11T10:01:00Z"),
            json!({"email": "a@example.com"})
        ),
        e("Installation Started", "new-1", None, json!({})),
        e("Installation Success", "new-1", None, json!({"duration_ms": 1000})),
    ]);
    assert_eq!(c.post_json("/events", &[], &body).0, 200);
}

fn ids(db: &std::path::Path) -> Vec<String> {
    common::exported(db)
        .iter()
        .map(|e| e["installation_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn forget_removes_one_installation_from_events_report_and_export() {
    let c = Collector::start(&[]);
    events(&c);
    let run = common::run([
        "forget".as_ref(),
        "--db".as_ref(),
        c.db.as_os_str(),
        "--id".as_ref(),
        "old-1".as_ref(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "forgot installation old-1: 2 events and 1 installation records deleted\n"
    );
    assert_eq!(ids(&c.db), ["old-2", "old-2", "new-1", "new-1"]);
    let acme = c.report(&[]);
    let acme = product(&acme, "acme");
    assert_eq!(acme["installations"]["started"], 2);
    assert_eq!(acme["failing_steps"], json!([]));

    let again = common::run([
        "forget".as_ref(),
        "--db".as_ref(),
        c.db.as_os_str(),
        "--id".as_ref(),
        "old-1".as_ref(),
    ]);
    assert_eq!(again.code, Some(0));
    assert!(
        again.stdout.starts_with("no events of installation old-1"),
        "{}",
        again.stdout
    );
    let missing = common::run(["forget", "--db", "/nonexistent/db.sqlite", "--id", "x"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(common::run(["forget", "--db", "x.sqlite", "--id", ""]).code, Some(2));
}

#[test]
fn export_writes_every_event_as_jsonl_or_csv() {
    let c = Collector::start(&[]);
    events(&c);
    let jsonl = common::run(["export".as_ref(), "--db".as_ref(), c.db.as_os_str()]).ok();
    let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[1]["event"], "Installation Error");
    assert_eq!(lines[1]["timestamp"], "2021-03-10T10:00:05.000Z");
    assert_eq!(lines[1]["properties"]["message"], "disk full");
    assert_eq!(lines[3]["email"], "a@example.com");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.csv");
    let run = common::run([
        "export".as_ref(),
        "--db".as_ref(),
        c.db.as_os_str(),
        "--format".as_ref(),
        "csv".as_ref(),
        "--output".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr.trim(), format!("exported 6 events to {}", file.display()));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the export holds emails");
    let csv = std::fs::read_to_string(&file).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "message_id,event,installation_id,timestamp,received_at,sent_timestamp,protocol,product,product_version,os,os_version,step,exit_code,email,duration_ms,properties"
    );
    assert_eq!(rows.count(), 6);
}

#[test]
fn serve_retain_deletes_old_raw_events_at_start_and_keeps_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.sqlite");
    let before = {
        let c = Collector::start_with_db(&db, &[]);
        events(&c);
        c.report(&[])
    };
    let c = Collector::start_with_db(&db, &["--retain", "400d"]);
    assert_eq!(ids(&db), ["new-1", "new-1"], "raw events older than 400 days are gone");
    assert!(
        c.stderr()
            .contains("retention: deleted 4 events older than 400 days, dropped the ID of 2 installations"),
        "{}",
        c.stderr()
    );
    let after = c.report(&[]);
    let (b, a) = (product(&before, "acme"), product(&after, "acme"));
    assert_eq!(a["installations"], b["installations"], "the funnel is kept");
    assert_eq!(a["daily"], b["daily"], "so is the per-day series");
    assert_eq!(a["support"]["count"], 1, "support requests are counted per day");
    assert_eq!(a["support"]["requests"], json!([]), "but the list of old ones is gone");
    assert_eq!(a["failing_steps"][0]["step"], "db");
    assert_eq!(
        a["failing_steps"][0]["messages"],
        json!([{"message": "disk full", "count": 1}])
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM installations WHERE installation_id LIKE 'old-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0, "old installations keep their outcome, not their ID");

    let short = common::run([
        "serve".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--retain".as_ref(),
        "1h".as_ref(),
    ]);
    assert_eq!(short.code, Some(2));
    assert!(short.stderr.contains("shorter than a day"), "{}", short.stderr);
}
