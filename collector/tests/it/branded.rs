//! Events from a branded install-beacon build, whose checkpoints carry the vendor's own names
//! (`BEACON_BUILD_EVENT_*`): mapped with `serve --event-name`, they count in the funnel, also when
//! they were stored before the mapping was given.

use serde_json::{Value, json};

use crate::common::{self, Collector, basic, product};

const MAPPING: [&str; 8] = [
    "--event-name",
    "started=Zeta Setup Begun",
    "--event-name",
    "success=Zeta Setup Done",
    "--event-name",
    "error=Zeta Setup Failed",
    "--event-name",
    "support=Zeta Help Wanted",
];

fn json_event(name: &str, id: &str, mid: &str, props: Value) -> Value {
    json!({"event": name, "installation_id": id, "message_id": mid, "properties": props})
}

#[test]
fn branded_event_names_count_once_mapped_also_those_stored_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.sqlite");
    let before = Collector::start_with_db(&db, &[]);
    let zeta = json!({"product": "zeta", "os": "debian", "os_version": "12"});
    let failed = json!({"product": "zeta", "step": "unpack", "exit_code": 3});
    let batch = json!([
        json_event("Zeta Setup Begun", "a", "m1", zeta.clone()),
        json_event("Zeta Setup Failed", "a", "m2", failed.clone()),
    ]);
    assert_eq!(before.post_json("/events", &[], &batch).0, 200);
    assert_eq!(
        before.report(&[])["products"],
        json!([]),
        "without the mapping the funnel is empty"
    );
    assert!(
        before.stderr().contains(
            "note: events named \"Zeta Setup Begun\" are stored but are not a step of the install funnel; \
             if a branded install-beacon sends them for a checkpoint, restart serve with \
             --event-name CHECKPOINT=\"Zeta Setup Begun\"\n"
        ),
        "{}",
        before.stderr()
    );
    drop(before);

    let c = Collector::start_with_db(&db, &MAPPING);
    assert!(
        c.stderr()
            .contains("note: 2 stored events sent under a branded name now count under the standard name\n"),
        "{}",
        c.stderr()
    );
    // The same names over Segment and PostHog, as a branded build sends them.
    let seg = json!({"batch": [
        {"type": "track", "event": "Zeta Setup Begun", "anonymousId": "b", "messageId": "m3", "properties": zeta},
        {"type": "track", "event": "Zeta Setup Done", "anonymousId": "b", "messageId": "m4",
         "properties": {"product": "zeta", "total_duration_ms": 5000}},
    ]});
    let auth = basic("wk");
    assert_eq!(c.post_json("/v1/batch", &[("Authorization", &auth)], &seg).0, 200);
    let ph = json!({"api_key": "phc", "batch": [
        {"event": "Zeta Help Wanted", "distinct_id": "a", "uuid": "m5",
         "properties": {"product": "zeta", "email": "ops@example.com"}},
    ]});
    assert_eq!(c.post_json("/batch/", &[], &ph).0, 200);

    let report = c.report(&["--show-emails"]);
    let z = product(&report, "zeta");
    assert_eq!(z["installations"]["started"], 2);
    assert_eq!(z["installations"]["succeeded"], 1);
    assert_eq!(z["installations"]["failed"], 1);
    assert_eq!(z["installations"]["median_duration_ms"], 5000);
    assert_eq!(z["failing_steps"][0]["step"], "unpack");
    assert_eq!(z["failing_steps"][0]["exit_code"], 3);
    assert_eq!(z["support"]["emails"], json!(["ops@example.com"]));
    assert!(
        !c.stderr().contains("not a step of the install funnel"),
        "{}",
        c.stderr()
    );
}

#[test]
fn a_contradictory_mapping_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let out = common::run([
        "serve",
        "--db",
        db,
        "--event-name",
        "error=X",
        "--event-name",
        "success=X",
    ]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "error: --event-name: \"X\" is given for two checkpoints\n\
         hint: give each branded name once, as CHECKPOINT=NAME\n"
    );
    let out = common::run(["serve", "--db", db, "--event-name", "failed=X"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.starts_with(
            "error: invalid value 'failed=X' for '--event-name <CHECKPOINT=NAME>': unknown checkpoint \"failed\"; \
             use one of started, success, error, support, active\n"
        ),
        "{}",
        out.stderr
    );
}
