//! Bad input gets the right status, and the collector keeps serving with its data intact.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Collector, basic, product};

fn batch(ids: &[&str]) -> Value {
    let batch: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"type": "track", "event": "Installation Started", "anonymousId": id,
                         "messageId": format!("m-{id}"), "properties": {"product": "acme"}})
        })
        .collect();
    json!({ "batch": batch })
}

fn started(c: &Collector) -> Value {
    product(&c.report(&[]), "acme")["installations"]["started"].clone()
}

#[test]
fn refusals_have_the_right_status_and_store_nothing() {
    let c = Collector::start(&["--key", "wk"]);
    let auth = basic("wk");
    let ok = [("Authorization", auth.as_str())];
    assert_eq!(c.post_json("/v1/batch", &ok, &batch(&["a", "b"])).0, 200);

    // Bad JSON: 400 naming the problem.
    let (status, answer) = c.post("/v1/batch", &ok, br#"{"batch": [{"type": "track",}]}"#);
    assert_eq!(status, 400);
    let msg = answer["error"].as_str().unwrap();
    assert!(
        msg.starts_with("invalid JSON: ") && msg.contains("line 1 column"),
        "{msg}"
    );
    assert!(answer["hint"].is_string());
    let (status, answer) = c.post("/events", &[], b"");
    assert_eq!((status, answer["error"].clone()), (400, json!("request body is empty")));

    // Wrong or missing key: 401, whatever the body.
    let wrong = basic("nope");
    let (status, answer) = c.post_json("/v1/batch", &[("Authorization", &wrong)], &batch(&["x"]));
    assert_eq!(status, 401);
    assert_eq!(answer["error"], "unknown write key \"nope\"");
    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["x"])).0, 401);
    assert_eq!(
        c.post("/v1/batch", &[("Authorization", &wrong)], b"{").0,
        401,
        "header key first"
    );
    let (status, _) = c.post_json(
        "/batch/",
        &[],
        &json!({"api_key": "nope", "batch": [{"event": "E", "distinct_id": "x"}]}),
    );
    assert_eq!(status, 401);

    // Missing fields: 400, and the valid events of the same request are not stored either.
    let mut body = batch(&["y"]);
    body["batch"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "track", "anonymousId": "z"}));
    let (status, answer) = c.post_json("/v1/batch", &ok, &body);
    assert_eq!(
        (status, answer["error"].clone()),
        (400, json!("event 1 is missing event"))
    );
    let (status, answer) = c.post_json("/events", &ok, &json!({"event": "Installation Started"}));
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("installation_id"));

    // Oversized: 413 for the request (over 500 KB) and for one event (over 32 KB).
    let big = vec![b' '; 600 * 1024];
    let (status, answer) = c.post("/v1/batch", &ok, &big);
    assert_eq!(status, 413);
    assert!(answer["error"].as_str().unwrap().contains("limit"));
    let mut body = batch(&["w"]);
    body["batch"][0]["properties"]["message"] = json!("x".repeat(40 * 1024));
    let (status, answer) = c.post_json("/v1/batch", &ok, &body);
    assert_eq!(
        (status, answer["error"].as_str().unwrap().starts_with("event 0 is")),
        (413, true)
    );

    // Unsupported encoding.
    assert_eq!(c.post("/v1/batch", &[ok[0], ("Content-Encoding", "br")], b"{}").0, 400);

    assert_eq!(c.stored(), 2);
    assert_eq!(started(&c), 2);
}

#[test]
fn duplicate_message_ids_are_acknowledged_and_stored_once() {
    let c = Collector::start(&[]);
    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["a", "b"])).0, 200);
    let (status, answer) = c.post_json("/v1/batch", &[], &batch(&["a", "b", "c"]));
    assert_eq!((status, answer), (200, json!({"success": true})));
    let ph = json!({"api_key": "k", "batch": [{"event": "E", "distinct_id": "d", "uuid": "u-1"}]});
    assert_eq!(c.post_json("/batch/", &[], &ph).0, 200);
    assert_eq!(c.post_json("/batch/", &[], &ph).0, 200);
    let js = json!({"event": "E", "installation_id": "d", "messageId": "j-1"});
    assert_eq!(c.post_json("/events", &[], &js).0, 200);
    assert_eq!(c.post_json("/events", &[], &json!([js])).0, 200);
    assert_eq!(c.stored(), 5);
    assert_eq!(started(&c), 3);
}

#[test]
fn dropped_and_slow_connections_do_not_stop_the_collector() {
    let c = Collector::start(&[]);
    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["a"])).0, 200);

    // A client that stalls halfway through its headers stays open while others are served.
    let mut slow = TcpStream::connect(c.addr()).unwrap();
    slow.write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Le")
        .unwrap();

    // A client that promises 1000 bytes, sends 40, and hangs up.
    let mut dropped = TcpStream::connect(c.addr()).unwrap();
    let head = "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    dropped.write_all(head.as_bytes()).unwrap();
    dropped.write_all(br#"{"batch":[{"type":"track","event":"Ins"#).unwrap();
    drop(dropped);

    // Garbage that is not HTTP at all.
    let mut garbage = TcpStream::connect(c.addr()).unwrap();
    garbage.write_all(b"\x00\x01\x02 not http\r\n\r\n").unwrap();
    garbage.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = Vec::new();
    let _ = garbage.read_to_end(&mut sink);

    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["b"])).0, 200);
    assert_eq!(c.get("/healthz"), (200, "ok\n".to_string()));
    drop(slow);
    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["c"])).0, 200);
    assert_eq!(c.stored(), 3);
    assert_eq!(started(&c), 3);
}

#[test]
fn a_locked_database_answers_503_and_recovers() {
    let c = Collector::start(&["--busy-timeout", "100ms"]);
    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["a"])).0, 200);

    let mut other = rusqlite::Connection::open(&c.db).unwrap();
    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let (status, answer) = c.post_json("/v1/batch", &[], &batch(&["b"]));
    assert_eq!(status, 503);
    assert_eq!(answer["error"], "database is locked by another writer");
    tx.rollback().unwrap();

    // The client retries the same batch: stored once.
    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["b"])).0, 200);
    assert_eq!(c.stored(), 2);
}

#[test]
fn unknown_paths_and_methods() {
    let c = Collector::start(&[]);
    assert_eq!(c.post("/nope", &[], b"{}").0, 404);
    assert_eq!(c.post("/v1/nope", &[], b"{}").0, 404);
    assert_eq!(c.get("/v1/batch").0, 405);
    // identify/page etc. are acknowledged without being stored.
    assert_eq!(
        c.post_json("/v1/identify", &[], &json!({"userId": "u", "traits": {}}))
            .0,
        200
    );
    assert_eq!(c.stored(), 0);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let c = Collector::start(&["--header-timeout", "1s"]);
    let mut slow = TcpStream::connect(c.addr()).unwrap();
    slow.write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Generous bound: the collector closes it after about 1 s; this only guards against a hang.
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let read = slow.read_to_end(&mut answer);
    assert!(read.is_ok(), "connection was not closed: {read:?}");
    assert_eq!(c.post_json("/v1/batch", &[], &batch(&["a"])).0, 200);
}
