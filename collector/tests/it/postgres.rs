//! `--db postgres://…` through the real binary, on a throwaway PostgreSQL (Debian's, started by
//! `testkit::Postgres`): the same events give the same report as on SQLite, and replicas sharing
//! one database store an event posted to each of them once.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{self, Collector, facts};
use crate::drill_down::scenario;

/// `report --format json` with `args`, without the moment it was made.
fn report(db: &Path, args: &[&str]) -> Value {
    let mut report = common::report(db, args);
    if let Some(r) = report.as_object_mut() {
        r.remove("generated_at");
    }
    report
}

#[test]
fn the_report_on_postgres_is_the_report_on_sqlite() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let url = server.database("same_report");
    let sqlite = Collector::start(&[]);
    let postgres = Collector::start_with_db(Path::new(&url), &[]);
    scenario(&sqlite);
    scenario(&postgres);
    for args in [
        &["--from", "2026-11-01", "--to", "2026-12-01"][..],
        &[
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-01",
            "--include-ci",
            "--show-emails",
        ],
        &["--from", "2026-11-11", "--to", "2026-11-12", "--product", "acme"],
    ] {
        let on_postgres = report(Path::new(&url), args);
        assert!(
            on_postgres["products"].as_array().is_some_and(|p| !p.is_empty()),
            "{on_postgres:#}"
        );
        assert_eq!(on_postgres, report(&sqlite.db, args), "report {args:?}");
    }
}

#[test]
fn replicas_on_one_database_store_an_event_posted_to_each_once() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let url = server.database("replicas");
    let (a, b) = (
        Collector::start_with_db(Path::new(&url), &[]),
        Collector::start_with_db(Path::new(&url), &[]),
    );
    let event = json!({
        "event": "Installation Started", "installation_id": "i-1", "message_id": "m-1",
        "timestamp": "2026-11-23T10:00:00Z", "properties": facts("acme", "1.0.0", "ubuntu", "24.04")
    });
    assert_eq!(a.post_json("/events", &[], &event).0, 200);
    assert_eq!(b.post_json("/events", &[], &event).0, 200);
    let exported = common::run(["export", "--db", &url]).ok();
    assert_eq!(exported.lines().count(), 1, "{exported}");
    let acme = report(Path::new(&url), &["--from", "2026-11-01", "--to", "2026-12-01"]);
    assert_eq!(common::product(&acme, "acme")["installations"]["started"], 1);

    let forgot = common::run(["forget", "--db", &url, "--id", "i-1"]).ok();
    assert!(forgot.contains("1 events"), "{forgot}");
    assert_eq!(common::run(["export", "--db", &url]).ok(), "");
}

#[test]
fn replicas_relaying_to_one_backend_send_each_event_once() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let url = server.database("relay");
    let receiver = testkit::Server::start();
    let forward = format!("posthog={}", receiver.url);
    let args = ["--forward", forward.as_str(), "--forward-key", "phc_test_key"];
    let (a, b) = (
        Collector::start_with_db(Path::new(&url), &args),
        Collector::start_with_db(Path::new(&url), &args),
    );
    let event = |i: usize| {
        json!({
            "event": "Installation Started", "installation_id": format!("i-{i}"),
            "message_id": format!("00000000-0000-4000-8000-{i:012}"),
            "timestamp": "2026-11-23T10:00:00Z", "properties": facts("acme", "1.0.0", "ubuntu", "24.04")
        })
    };
    // 40 events: the first 10 posted to both replicas, the rest to one or the other.
    for i in 0..40 {
        let to: &[&Collector] = if i < 10 {
            &[&a, &b]
        } else if i % 2 == 0 {
            &[&a]
        } else {
            &[&b]
        };
        for c in to {
            assert_eq!(c.post_json("/events", &[], &json!([event(i)])).0, 200);
        }
    }
    let sent = |got: &[testkit::Received]| -> Vec<String> {
        got.iter()
            .flat_map(|r| r.json()["batch"].as_array().cloned().unwrap_or_default())
            .map(|e| e["uuid"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let got = testkit::eventually(Duration::from_secs(30), "40 events forwarded", || {
        let got = receiver.requests();
        if sent(&got).len() >= 40 {
            Ok(got)
        } else {
            Err(sent(&got))
        }
    });
    // Long enough for a second copy from the other replica's relay to arrive, if one were coming.
    std::thread::sleep(Duration::from_secs(2));
    let mut uuids = sent(&receiver.requests());
    uuids.sort();
    let mut once = uuids.clone();
    once.dedup();
    assert_eq!(uuids, once, "an event sent twice ({} requests before)", got.len());
    assert_eq!(uuids.len(), 40);
}
