//! `--db postgres://…` through the real binary, on a throwaway PostgreSQL (Debian's, started by
//! `testkit::Postgres`): the same events give the same report as on SQLite, and replicas sharing
//! one database store an event posted to each of them once.

use std::path::Path;

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
