//! Each client's wire format, sent to the real binary, ends up in exact report numbers.

use serde_json::{Value, json};

use crate::common::{Collector, basic, facts, gzip, product, with};

const KEYS: [&str; 4] = ["--key", "wk", "--key", "phc_key"];

fn seg(event: &str, id: &str, mid: &str, ts: &str, props: Value) -> Value {
    json!({
        "type": "track", "event": event, "anonymousId": id, "messageId": mid, "timestamp": ts,
        "properties": props,
        "context": {"ip": "0.0.0.0", "library": {"name": "install-beacon", "version": "0.1.0"},
                    "os": {"name": props["os"], "version": props["os_version"]}}
    })
}

fn ph(event: &str, id: &str, uuid: &str, ts: &str, props: Value) -> Value {
    let extra = json!({"$lib": "install-beacon", "$lib_version": "0.1.0", "$os": props["os"],
                       "$os_version": props["os_version"], "$process_person_profile": false,
                       "$ip": null, "$geoip_disable": true});
    json!({"event": event, "distinct_id": id, "uuid": uuid, "timestamp": ts, "properties": with(props, extra)})
}

fn js(event: &str, id: &str, mid: &str, ts: &str, props: Value) -> Value {
    json!({"event": event, "installation_id": id, "message_id": mid, "timestamp": ts, "properties": props})
}

/// Sends the whole scenario (8 installations over every format); see the assertions for the story.
fn send_scenario(c: &Collector) {
    let ubuntu = facts("acme", "1.4.2", "ubuntu", "22.04");
    let debian = facts("acme", "1.4.1", "debian", "12");
    let alpine = facts("acme", "1.4.2", "alpine", "3.20");

    // install-beacon over Segment: A succeeds (duration_ms 58 s), B fails at install-packages.
    let body = json!({"batch": [
        seg("Installation Started", "inst-a", "a1", "2026-11-20T10:00:00.000Z", ubuntu.clone()),
        seg("Installation Success", "inst-a", "a2", "2026-11-20T10:01:00.000Z",
            with(ubuntu.clone(), json!({"duration_ms": 58000, "step_durations_ms": {"download": 1000}}))),
        seg("Installation Started", "inst-b", "b1", "2026-11-20T10:00:00.000Z", ubuntu.clone()),
        seg("Installation Error", "inst-b", "b2", "2026-11-20T10:00:30.000Z",
            with(ubuntu.clone(), json!({"step": "install-packages", "exit_code": 100, "message": "apt failed"}))),
    ], "sentAt": "2026-11-20T10:01:01.000Z"});
    let auth = basic("wk");
    let (status, answer) = c.post_json("/v1/batch", &[("Authorization", &auth)], &body);
    assert_eq!((status, answer), (200, json!({"success": true})));

    // install-beacon over PostHog: C succeeds (no duration: 2 min from timestamps), D is abandoned.
    let body = json!({"api_key": "phc_key", "batch": [
        ph("Installation Started", "inst-c", "c1", "2026-11-20T11:00:00.000Z", debian.clone()),
        ph("Installation Success", "inst-c", "c2", "2026-11-20T11:02:00.000Z", debian.clone()),
        ph("Installation Started", "inst-d", "d1", "2026-11-20T11:00:00.000Z", debian.clone()),
    ], "sent_at": "2026-11-20T11:02:01.000Z"});
    let (status, answer) = c.post_json("/batch/", &[], &body);
    assert_eq!((status, answer), (200, json!({"status": 1})));

    // install-beacon over plain JSON: E fails, then succeeds (total_duration_ms 5 min); F fails
    // and asks for support.
    let body = json!([
        js(
            "Installation Started",
            "inst-e",
            "e1",
            "2026-11-20T12:00:00.000Z",
            alpine.clone()
        ),
        js(
            "Installation Error",
            "inst-e",
            "e2",
            "2026-11-20T12:00:10.000Z",
            with(alpine.clone(), json!({"step": "download", "exit_code": 6}))
        ),
        js(
            "Installation Success",
            "inst-e",
            "e3",
            "2026-11-20T12:05:00.000Z",
            with(alpine.clone(), json!({"total_duration_ms": 300000}))
        ),
        js(
            "Installation Started",
            "inst-f",
            "f1",
            "2026-11-20T12:00:00.000Z",
            alpine.clone()
        ),
        js(
            "Installation Error",
            "inst-f",
            "f2",
            "2026-11-20T12:01:00.000Z",
            with(alpine.clone(), json!({"step": "install-packages", "exit_code": 100}))
        ),
    ]);
    let (status, answer) = c.post_json("/events", &[("Authorization", "Bearer wk")], &body);
    assert_eq!((status, answer), (200, json!({"success": true})));
    let support = js(
        "Installation Support",
        "inst-f",
        "f3",
        "2026-11-20T12:02:00.000Z",
        with(alpine, json!({"email": "ops@example.com", "step": "install-packages"})),
    );
    let body = with(support, json!({"api_key": "wk"}));
    assert_eq!(c.post_json("/events", &[], &body).0, 200);
}

/// What analytics-python (Segment's official client) sends with `gzip=True`: userId, an identify
/// message, `writeKey` in the body as well as Basic auth, `+00:00` timestamps.
fn send_analytics_python(c: &Collector) {
    let rhel = facts("acme", "1.4.2", "rhel", "9");
    let ctx = json!({"library": {"name": "analytics-python", "version": "2.3.3"}});
    let body = json!({
        "batch": [
            {"type": "identify", "userId": "inst-g", "traits": {"plan": "self-hosted"}, "context": ctx,
             "timestamp": "2026-11-20T13:00:00+00:00", "messageId": "g0", "integrations": {}},
            {"type": "track", "event": "Installation Started", "userId": "inst-g", "anonymousId": null,
             "properties": rhel, "context": ctx, "timestamp": "2026-11-20T13:00:00.000000+00:00",
             "messageId": "g1", "integrations": {}},
            {"type": "track", "event": "Installation Success", "userId": "inst-g",
             "properties": with(rhel.clone(), json!({"duration_ms": 30000})), "context": ctx,
             "timestamp": "2026-11-20T13:00:30.000000+00:00", "messageId": "g2", "integrations": {}}
        ],
        "sentAt": "2026-11-20T13:00:31.123456+00:00",
        "writeKey": "wk"
    });
    let auth = basic("wk");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Encoding", "gzip"),
        ("User-Agent", "analytics-python/2.3.3"),
    ];
    let (status, answer) = c.post("/v1/batch", &headers, &gzip(body.to_string().as_bytes()));
    assert_eq!((status, answer), (200, json!({"success": true})));
}

/// What posthog-python sends to `/batch/` with `gzip=True`: `type`, `library`, `sentAt`.
fn send_posthog_python(c: &Collector) {
    let mac = facts("acme", "1.4.2", "macos", "14");
    let lib = json!({"$lib": "posthog-python", "$lib_version": "3.7.0", "$geoip_disable": true});
    let event = |name: &str, uuid: &str, ts: &str| {
        json!({"event": name, "distinct_id": "inst-h", "properties": with(mac.clone(), lib.clone()),
               "timestamp": ts, "uuid": uuid, "type": "capture",
               "library": "posthog-python", "library_version": "3.7.0"})
    };
    let body = json!({"api_key": "phc_key", "batch": [
        event("Installation Started", "h1", "2026-11-21T09:00:00.000000+00:00"),
        event("Installation Success", "h2", "2026-11-21T09:01:30.000000+00:00"),
    ], "sentAt": "2026-11-21T09:01:31.000000+00:00"});
    let headers = [("Content-Encoding", "gzip"), ("User-Agent", "posthog-python/3.7.0")];
    let (status, answer) = c.post("/batch/", &headers, &gzip(body.to_string().as_bytes()));
    assert_eq!((status, answer), (200, json!({"status": 1})));
}

/// Single-event PostHog forms; no timestamp, so they count as received now (active in 24 h).
fn send_active(c: &Collector) {
    let body = json!({"api_key": "phc_key", "event": "Instance Active", "distinct_id": "inst-a",
                      "properties": {"product": "acme"}});
    assert_eq!(c.post_json("/i/v0/e/", &[], &body).0, 200);
    let body = json!({"api_key": "phc_key", "event": "Instance Active",
                      "properties": {"distinct_id": "inst-c", "product": "acme"}});
    assert_eq!(c.post_json("/capture/", &[], &body).0, 200);
}

#[test]
fn every_client_format_lands_in_the_report() {
    let c = Collector::start(&KEYS);
    send_scenario(&c);
    send_analytics_python(&c);
    send_posthog_python(&c);
    send_active(&c);
    assert_eq!(c.stored(), 19, "identify is acknowledged, not stored");

    let report = c.report(&[]);
    let acme = product(&report, "acme");
    assert_eq!(
        acme["installations"],
        json!({"started": 8, "succeeded": 5, "failed": 2, "abandoned": 1, "running": 0, "recovered": 0, "success_rate": 0.625,
               "median_duration_ms": 90000, "p90_duration_ms": 300000})
    );
    let os: Vec<(String, String, u64, u64, u64, u64)> = acme["by_os"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["os"].as_str().unwrap().into(),
                r["os_version"].as_str().unwrap().into(),
                r["started"].as_u64().unwrap(),
                r["succeeded"].as_u64().unwrap(),
                r["failed"].as_u64().unwrap(),
                r["abandoned"].as_u64().unwrap(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, n: [u64; 4]| (a.to_string(), b.to_string(), n[0], n[1], n[2], n[3]);
    assert_eq!(
        os,
        vec![
            s("alpine", "3.20", [2, 1, 1, 0]),
            s("debian", "12", [2, 1, 0, 1]),
            s("ubuntu", "22.04", [2, 1, 1, 0]),
            s("macos", "14", [1, 1, 0, 0]),
            s("rhel", "9", [1, 1, 0, 0]),
        ]
    );
    assert_eq!(acme["by_version"][0]["value"], "1.4.2");
    assert_eq!(acme["by_version"][0]["started"], 6);
    assert_eq!(acme["by_version"][0]["failed"], 2);
    assert_eq!(acme["by_version"][1]["value"], "1.4.1");
    assert_eq!(acme["by_version"][1]["abandoned"], 1);
    assert_eq!(
        acme["failing_steps"],
        json!([{"step": "install-packages", "exit_code": 100, "count": 2, "installations": 2,
                "messages": [{"message": "", "count": 1}, {"message": "apt failed", "count": 1}]},
               {"step": "download", "exit_code": 6, "count": 1, "installations": 1,
                "messages": [{"message": "", "count": 1}]}])
    );
    let request = json!({"time": "2026-11-20T12:02:00Z", "product_version": "1.4.2", "step": "install-packages",
                         "installation_id": "inst-f"});
    assert_eq!(
        acme["support"],
        json!({"count": 1, "requests": [request]}),
        "emails only with --show-emails"
    );
    assert_eq!(acme["active_24h"], 2);
    assert_eq!(
        acme["daily"],
        json!([{"date": "2026-11-20", "started": 7, "succeeded": 4, "failed": 2},
               {"date": "2026-11-21", "started": 1, "succeeded": 1, "failed": 0}])
    );

    let with_emails = c.report(&["--show-emails"]);
    assert_eq!(
        product(&with_emails, "acme")["support"],
        json!({"count": 1, "emails": ["ops@example.com"],
               "requests": [with(request, json!({"email": "ops@example.com"}))]})
    );
}

#[test]
fn version_notices_ride_on_every_accepted_response() {
    let c = Collector::start(&[
        "--latest-version",
        "1.4.2",
        "--notice",
        "1.4.0 has a known bug",
        "--notice",
        "second",
    ]);
    let event = json!({"event": "X", "installation_id": "i", "properties": {}});
    let (status, answer) = c.post_json("/events", &[], &event);
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"success": true, "latest_version": "1.4.2", "notices": ["1.4.0 has a known bug", "second"]})
    );
    let (_, answer) = c.post_json(
        "/batch/",
        &[],
        &json!({"api_key": "any", "batch": [{"event": "X", "distinct_id": "i"}]}),
    );
    assert_eq!(
        answer,
        json!({"status": 1, "latest_version": "1.4.2", "notices": ["1.4.0 has a known bug", "second"]})
    );
    let (_, answer) = c.post_json("/v1/track", &[], &json!({"event": "X", "anonymousId": "i"}));
    assert_eq!(answer["latest_version"], "1.4.2");
    // Refusals carry no notices.
    let (status, answer) = c.post("/events", &[], b"{");
    assert_eq!(status, 400);
    assert!(answer.get("latest_version").is_none());
}

#[test]
fn without_keys_any_key_or_none_is_accepted() {
    let c = Collector::start(&[]);
    let body = json!({"batch": [{"type": "track", "event": "X", "anonymousId": "i"}]});
    assert_eq!(c.post_json("/v1/batch", &[], &body).0, 200);
    let auth = basic("whatever");
    assert_eq!(c.post_json("/v1/batch", &[("Authorization", &auth)], &body).0, 200);
    assert_eq!(c.stored(), 2, "no messageId: each is its own event");
}
