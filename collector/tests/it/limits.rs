//! Bounds that keep the collector up under a flood: ingest answers 503 + Retry-After instead of
//! queueing without end, and the report stays small whatever was stored.

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::Collector;

/// Held by each test here: they load the machine, and the one with a time bound must not be
/// measured while the other runs.
static HEAVY: Mutex<()> = Mutex::new(());

/// The largest body the collector accepts, made of as many minimal events as fit, and how many.
fn maximal_batch(tag: usize) -> (Vec<u8>, i64) {
    let limit = 500 * 1024;
    let mut body = String::from("[");
    let mut count = 0;
    for n in 0.. {
        let event = format!(r#"{{"event":"Installation Started","installation_id":"b{tag}-{n}"}}"#);
        if body.len() + event.len() + 2 > limit {
            break;
        }
        if n > 0 {
            body.push(',');
        }
        body.push_str(&event);
        count += 1;
    }
    body.push(']');
    (body.into_bytes(), count)
}

#[test]
fn one_small_event_is_answered_within_a_second_while_100_maximal_batches_are_in_flight() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let c = Arc::new(Collector::start(&[]));
    let batches = 100;
    let start = Arc::new(Barrier::new(batches + 1));
    let senders: Vec<_> = (0..batches)
        .map(|tag| {
            let (c, start) = (Arc::clone(&c), Arc::clone(&start));
            std::thread::spawn(move || {
                let (body, events) = maximal_batch(tag);
                start.wait();
                let reply = c.request("/events", &[], Some(&body));
                (reply.status, reply.header("retry-after").map(String::from), events)
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_millis(200));

    let small = json!({"event": "Installation Started", "installation_id": "small", "properties": {"product": "acme"}});
    let sent = Instant::now();
    let (status, answer) = c.post_json("/events", &[], &small);
    let took = sent.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert!(took < Duration::from_secs(1), "the small event took {took:?}");

    let (mut stored_batches, mut acknowledged) = (0, 1);
    for sender in senders {
        match sender.join().unwrap() {
            (200, _, events) => {
                stored_batches += 1;
                acknowledged += events;
            }
            (503, retry_after, _) => assert_eq!(retry_after.as_deref(), Some("1")),
            other => panic!("a batch got {other:?}"),
        }
    }
    assert!(stored_batches >= 1, "some batches are stored");
    assert_eq!(c.stored(), acknowledged, "every 200 was stored, no 503 was");
}

/// Posts `batches` bodies of about 490 KB in which every event has its own product, OS and
/// version; returns how many events were sent.
fn flood(c: &Collector, batches: usize) -> u64 {
    let mut sent = 0;
    for b in 0..batches {
        let mut events = Vec::new();
        let mut size = 2;
        while size < 490 * 1024 {
            let n = sent + events.len() as u64;
            let event = json!({"event": "Installation Started", "installation_id": format!("i{n}"),
                "properties": {"product": format!("p{n}"), "os": format!("os{n}"), "product_version": format!("v{n}")}});
            size += event.to_string().len() + 1;
            events.push(event);
        }
        sent += events.len() as u64;
        let (status, answer) = c.post_json("/events", &[], &json!(events));
        assert_eq!(status, 200, "batch {b}: {answer}");
    }
    sent
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_flood_of_distinct_products_gives_a_bounded_report() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let c = Arc::new(Collector::start(&[]));
    let sent = flood(&c, 15);
    // One product with many OS versions and product versions.
    let many: Vec<_> = (0..60)
        .map(|n| json!({"event": "Installation Started", "installation_id": format!("m{n}"),
            "properties": {"product": "acme", "os": "linux", "os_version": format!("{n}"), "product_version": format!("1.{n}")}}))
        .collect();
    assert_eq!(c.post_json("/events", &[], &json!(many)).0, 200);

    let loads: Vec<_> = (0..6)
        .map(|n| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || c.get(if n % 2 == 0 { "/" } else { "/report.json" }))
        })
        .collect();
    for load in loads {
        let (status, body) = load.join().unwrap();
        assert!(status == 200 || status == 503, "{status}");
        assert!(body.len() < 1024 * 1024, "{} bytes", body.len());
    }
    let (status, json) = c.get("/report.json");
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let products = report["products"].as_array().unwrap();
    assert_eq!(products.len(), 25);
    assert_eq!(products[0]["product"], "acme", "most installations first");
    let acme = &products[0];
    assert_eq!(acme["by_os"].as_array().unwrap().len(), 26);
    assert_eq!(acme["by_os"][25]["os"], "(other)");
    assert_eq!(acme["by_os"][25]["started"], 35);
    assert_eq!(acme["by_version"][25]["value"], "(other)");
    let listed: u64 = products
        .iter()
        .map(|p| p["installations"]["started"].as_u64().unwrap())
        .sum();
    let other = &report["other_products"];
    assert_eq!(other["products"].as_u64().unwrap(), sent + 1 - 25);
    assert_eq!(listed + other["installations"]["started"].as_u64().unwrap(), sent + 60);

    let csv = crate::common::run_report(&c.db, &["--format", "csv"]).ok();
    assert!(
        csv.ends_with(&format!(",{},,,\n", sent + 1 - 25)),
        "{}",
        &csv[csv.len() - 200..]
    );
    assert!(csv.lines().count() < 400);
    let peak = peak_rss_kib(c.pid());
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
}
