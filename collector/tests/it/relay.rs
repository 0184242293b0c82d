//! The relay for real: a collector started with `--forward` sends what it stores to a local
//! receiver standing in for PostHog or Segment, which checks the batch format and the key. The
//! queue lives in the database, so events wait through a backend outage and a restart.

use std::time::Duration;

use crate::common::{self, Collector, basic, facts};
use serde_json::{Value, json};
use testkit::{Received, Reply, Server, eventually};

/// A stand-in backend on `addr` (127.0.0.1): answers each request with the next status of
/// `script` (200 once it is used up) and records it.
fn receiver(addr: &str, script: &[u16]) -> Server {
    Server::at(addr, script.iter().map(|s| Reply::Status(*s)).collect())
}

/// Waits until `receiver` has accepted `n` events in total (generous bound; fails after it).
fn wait_for_accepted(receiver: &Server, n: usize, events: fn(&Value) -> &Vec<Value>) -> Vec<Received> {
    eventually(Duration::from_secs(30), &format!("{n} events forwarded"), || {
        let got = receiver.requests();
        let accepted: usize = got
            .iter()
            .filter(|r| r.status == Some(200))
            .map(|r| events(&r.json()).len())
            .sum();
        if accepted >= n { Ok(got) } else { Err(got) }
    })
}

fn batch(body: &Value) -> &Vec<Value> {
    body["batch"].as_array().expect("batch array")
}

const IDS: [&str; 3] = [
    "0b7f3f4e-8f43-4c4e-9a57-3f1d7b6f0a01",
    "0b7f3f4e-8f43-4c4e-9a57-3f1d7b6f0a02",
    "0b7f3f4e-8f43-4c4e-9a57-3f1d7b6f0a03",
];

/// Three install-beacon events of one installation, in Segment format.
fn segment_events() -> Value {
    let p = facts("acme", "2.4.0", "ubuntu", "22.04");
    json!({"batch": [
        {"type": "track", "event": "Installation Started", "anonymousId": "inst-1", "messageId": IDS[0],
         "timestamp": "2026-11-23T10:00:00.000Z", "properties": p},
        {"type": "track", "event": "Installation Error", "anonymousId": "inst-1", "messageId": IDS[1],
         "timestamp": "2026-11-23T10:00:05.000Z",
         "properties": common::with(p.clone(), json!({"step": "db", "exit_code": 3, "message": "no space"}))},
        {"type": "track", "event": "Installation Success", "anonymousId": "inst-1", "messageId": IDS[2],
         "timestamp": "2026-11-23T10:01:00.000Z", "properties": common::with(p.clone(), json!({"duration_ms": 60000}))},
    ]})
}

#[test]
fn posthog_gets_every_stored_event_once_accepted_with_original_ids_and_key() {
    let receiver = receiver("127.0.0.1:0", &[503]);
    let forward = format!("posthog={}", receiver.url);
    let collector = Collector::start(&["--forward", &forward, "--forward-key", "phc_test_key"]);
    let (status, _) = collector.post_json("/v1/batch", &[("Authorization", &basic("wk"))], &segment_events());
    assert_eq!(status, 200);
    // A client retry of the same batch is stored once, so forwarded once.
    collector.post_json("/v1/batch", &[("Authorization", &basic("wk"))], &segment_events());

    let got = wait_for_accepted(&receiver, 3, batch);
    assert_eq!(got.len(), 2, "one refused (503) then one accepted: {got:#?}");
    assert_eq!(
        got[0].json()["batch"],
        got[1].json()["batch"],
        "the retry resends the same batch"
    );
    let accepted = &got[1];
    assert_eq!(accepted.url, "/batch/");
    let body = accepted.json();
    assert_eq!(body["api_key"], "phc_test_key");
    let events = batch(&body);
    let uuids: Vec<&str> = events.iter().map(|e| e["uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids, IDS);
    assert_eq!(events[1]["event"], "Installation Error");
    assert_eq!(events[1]["distinct_id"], "inst-1");
    assert_eq!(events[1]["timestamp"], "2026-11-23T10:00:05.000Z");
    assert_eq!(events[1]["properties"]["message"], "no space");
    assert_eq!(events[1]["properties"]["product_version"], "2.4.0");
    assert_eq!(events[1]["properties"]["$process_person_profile"], false);

    // The worker records the batch as forwarded just after the backend's answer.
    eventually(Duration::from_secs(10), "the batch recorded as forwarded", || {
        let forwarding = collector.report(&[])["forwarding"][0].clone();
        if forwarding["forwarded"] == 3 {
            Ok(())
        } else {
            Err(forwarding)
        }
    });
    let (_, page) = collector.get("/");
    assert!(
        page.contains("Forwarding to posthog") && page.contains("3 forwarded · 0 queued"),
        "{page}"
    );
    let forwarding = &collector.report(&[])["forwarding"][0];
    assert_eq!(
        (forwarding["forwarded"].as_u64(), forwarding["queued"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(forwarding["failing_since"], Value::Null);
}

#[test]
fn segment_events_wait_in_the_queue_through_an_outage_and_a_restart() {
    // A port with nothing listening: the backend is down.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let forward = format!("segment=http://{addr}");
    let args = ["--forward", forward.as_str(), "--forward-key", "seg_write_key"];
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.sqlite");
    let collector = Collector::start_with_db(&db, &args);
    let (status, _) = collector.post_json("/v1/batch", &[], &segment_events());
    assert_eq!(status, 200, "storing never waits for the backend");

    let forwarding = eventually(Duration::from_secs(20), "the relay reported failing", || {
        let forwarding = collector.report(&[])["forwarding"][0].clone();
        if forwarding["failing_since"].is_string() {
            Ok(forwarding)
        } else {
            Err(forwarding)
        }
    });
    assert_eq!(forwarding["queued"], 3);
    assert_eq!(forwarding["forwarded"], 0);
    let (_, page) = collector.get("/");
    assert!(page.contains("failing since") && page.contains("3 queued"), "{page}");

    drop(collector);

    // Started without --forward, the queue waits, and serve says so.
    let without = Collector::start_with_db(&db, &[]);
    assert!(
        without
            .stderr()
            .contains("note: 3 events wait in the queue for segment, which no --forward names any more"),
        "{}",
        without.stderr()
    );
    drop(without);

    let receiver = receiver(&addr.to_string(), &[]);
    let restarted = Collector::start_with_db(&db, &args);
    let got = wait_for_accepted(&receiver, 3, batch);
    let r = &got[0];
    assert_eq!(r.url, "/v1/batch");
    assert_eq!(r.header("authorization"), Some(basic("seg_write_key").as_str()));
    let body = r.json();
    let events = batch(&body);
    let ids: Vec<&str> = events.iter().map(|e| e["messageId"].as_str().unwrap()).collect();
    assert_eq!(ids, IDS);
    assert_eq!(events[0]["type"], "track");
    assert_eq!(events[0]["anonymousId"], "inst-1");
    assert_eq!(events[0]["properties"], facts("acme", "2.4.0", "ubuntu", "22.04"));
    eventually(Duration::from_secs(10), "the queue emptied", || {
        let forwarding = restarted.report(&[])["forwarding"][0].clone();
        if forwarding["queued"] == 0 {
            Ok(())
        } else {
            Err(forwarding)
        }
    });
}

#[test]
fn forward_without_its_key_is_a_usage_error() {
    let run = common::run([
        "serve",
        "--db",
        "/nonexistent/x.sqlite",
        "--forward",
        "posthog=https://eu.i.posthog.com",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("1 --forward but 0 --forward-key"), "{}", run.stderr);
    let run = common::run([
        "serve",
        "--db",
        "x",
        "--forward",
        "amplitude=https://x",
        "--forward-key",
        "k",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("unknown backend \"amplitude\""), "{}", run.stderr);
}

#[test]
fn forward_credentials_are_masked_and_the_path_goes_before_the_query() {
    let receiver = receiver("127.0.0.1:0", &[]);
    let host = receiver.url.trim_start_matches("http://");
    let forward = format!("posthog=http://relay-user:pa55word@{host}/ingest/?token=t0ken-in-query");
    let collector = Collector::start(&["--forward", &forward, "--forward-key", "phc_test_key"]);
    let (status, _) = collector.post_json("/v1/batch", &[], &segment_events());
    assert_eq!(status, 200);
    let got = wait_for_accepted(&receiver, 3, batch);
    assert_eq!(got[0].url, "/ingest/batch/?token=t0ken-in-query");

    let shown = format!("http://***@{host}/ingest/?token=***");
    let (_, page) = collector.get("/");
    let (_, json) = collector.get("/report.json");
    let text = common::run_report(&collector.db, &[]).ok();
    for (name, out) in [("page", &page), ("/report.json", &json), ("report", &text)] {
        for secret in ["pa55word", "t0ken-in-query", "relay-user"] {
            assert!(!out.contains(secret), "{name} shows {secret}: {out}");
        }
        assert!(out.contains(&shown), "{name} names the masked URL {shown}: {out}");
    }
}

/// Waits until `receiver` has accepted `n` requests (generous bound; fails after it).
fn wait_for_requests(receiver: &Server, n: usize) -> Vec<Received> {
    eventually(Duration::from_secs(30), &format!("{n} requests accepted"), || {
        let got = receiver.requests();
        if got.iter().filter(|r| r.status == Some(200)).count() >= n {
            Ok(got)
        } else {
            Err(got)
        }
    })
}

#[test]
fn each_support_request_is_posted_to_every_notify_url_and_retried() {
    let slack = receiver("127.0.0.1:0", &[503]);
    let other = receiver("127.0.0.1:0", &[]);
    let (slack_url, other_url) = (
        format!("{}/services/T000/B000/s3cret-hook", slack.url),
        format!("{}/support", other.url),
    );
    let c = Collector::start(&["--notify-support", &slack_url, "--notify-support", &other_url]);
    let p = facts("acme", "2.4.0", "ubuntu", "22.04");
    let support = common::with(
        p.clone(),
        json!({"step": "db", "message": "migrations hang", "email": "ops@example.com"}),
    );
    let events = json!([
        {"event": "Installation Started", "installation_id": "inst-7", "properties": p},
        {"event": "Installation Error", "installation_id": "inst-7", "properties": common::with(p.clone(), json!({"step": "db"}))},
        {"event": "Installation Support", "installation_id": "inst-7", "message_id": "m-support", "properties": support},
    ]);
    assert_eq!(c.post_json("/events", &[], &events).0, 200);

    let got = wait_for_requests(&slack, 1);
    assert_eq!(got.len(), 2, "one refused (503), then the same again: {got:#?}");
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[1].url, "/services/T000/B000/s3cret-hook");
    let body = &got[1].json();
    for (key, value) in [
        ("product", "acme"),
        ("version", "2.4.0"),
        ("step", "db"),
        ("message", "migrations hang"),
        ("email", "ops@example.com"),
        ("installation_id", "inst-7"),
        ("message_id", "m-support"),
    ] {
        assert_eq!(body[key], value, "{key}: {body:#}");
    }
    assert_eq!(
        body["text"],
        "Support request: acme 2.4.0, failed at step db\n> migrations hang\nemail: ops@example.com · installation ID: inst-7"
    );
    let also = wait_for_requests(&other, 1);
    assert_eq!(also.len(), 1, "only the support request is sent: {also:#?}");
    assert_eq!(also[0].url, "/support");
    assert_eq!(also[0].json(), *body);

    let (_, page) = c.get("/");
    assert!(page.contains("Emails are hidden"), "{page}");
    assert!(page.contains("--admin-token-file"), "{page}");
    assert!(
        !page.contains("s3cret-hook") && !page.contains("ops@example.com"),
        "{page}"
    );
    assert!(page.contains("1 forwarded"), "{page}");
}
