//! The drill-down a release manager needs on a bad day, through the real binary: failures by step
//! with their messages and by OS / version / arch / container, the support request list (emails
//! only with `--show-emails`, never on the page), CI installations apart, running vs abandoned, a
//! date range and product picker, in `report --format json|csv|table` and on the page.

use crate::common::{self, Collector, facts, product, with};
use serde_json::{Value, json};

fn event(name: &str, id: &str, ts: &str, props: Value) -> Value {
    json!({"event": name, "installation_id": id, "timestamp": ts, "properties": props})
}

/// acme 2.4.0: a (ubuntu, x86_64, host) succeeds; b (alpine, arm64, docker) fails at db twice
/// with "disk full" and once at download; c (ubuntu, CI) succeeds; d (alpine, docker) fails at db
/// with "disk full" and asks for support. beta: one installation on another day.
pub fn scenario(c: &Collector) {
    let host = facts("acme", "2.4.0", "ubuntu", "22.04");
    let docker = with(
        facts("acme", "2.4.0", "alpine", "3.20"),
        json!({"arch": "arm64", "container": "docker"}),
    );
    let ci = with(host.clone(), json!({"ci": true}));
    let fail = |p: &Value, step: &str, code: i64, msg: &str| {
        with(p.clone(), json!({"step": step, "exit_code": code, "message": msg}))
    };
    let body = json!([
        event("Installation Started", "a", "2026-11-10T10:00:00Z", host.clone()),
        event(
            "Installation Success",
            "a",
            "2026-11-10T10:01:00Z",
            with(host.clone(), json!({"duration_ms": 60000}))
        ),
        event("Installation Started", "b", "2026-11-11T10:00:00Z", docker.clone()),
        event(
            "Installation Error",
            "b",
            "2026-11-11T10:00:10Z",
            fail(&docker, "db", 5, "disk full")
        ),
        event(
            "Installation Error",
            "b",
            "2026-11-11T10:00:20Z",
            fail(&docker, "db", 5, "disk full")
        ),
        event(
            "Installation Error",
            "b",
            "2026-11-11T10:00:30Z",
            fail(&docker, "download", 22, "HTTP 404")
        ),
        event("Installation Started", "c", "2026-11-11T11:00:00Z", ci.clone()),
        event(
            "Installation Success",
            "c",
            "2026-11-11T11:00:30Z",
            with(ci, json!({"duration_ms": 30000}))
        ),
        event("Installation Started", "d", "2026-11-12T10:00:00Z", docker.clone()),
        event(
            "Installation Error",
            "d",
            "2026-11-12T10:00:10Z",
            fail(&docker, "db", 5, "disk full")
        ),
        event(
            "Installation Support",
            "d",
            "2026-11-12T10:05:00Z",
            with(
                docker.clone(),
                json!({"step": "db", "email": "ops@example.com", "message": "help"})
            )
        ),
        event(
            "Installation Started",
            "e",
            "2026-11-20T10:00:00Z",
            facts("beta", "0.1.0", "debian", "12")
        ),
    ]);
    assert_eq!(c.post_json("/events", &[], &body).0, 200);
}

fn run(c: &Collector, args: &[&str]) -> String {
    common::run_report(&c.db, args).ok()
}

fn counts(f: &Value) -> [u64; 5] {
    ["started", "succeeded", "failed", "abandoned", "running"].map(|k| f[k].as_u64().unwrap())
}

#[test]
fn report_json_answers_why_installs_fail() {
    let c = Collector::start(&[]);
    scenario(&c);
    let report = c.report(&[]);
    assert_eq!(report["ci_included"], false);
    let acme = product(&report, "acme");
    assert_eq!(
        counts(&acme["installations"]),
        [3, 1, 2, 0, 0],
        "CI installs apart: {acme:#}"
    );
    assert_eq!(acme["installations"]["success_rate"], 0.3333);
    assert_eq!(counts(&acme["ci"]), [1, 1, 0, 0, 0]);
    assert_eq!(
        acme["failing_steps"],
        json!([
            {"step": "db", "exit_code": 5, "count": 3, "installations": 2,
             "messages": [{"message": "disk full", "count": 3}]},
            {"step": "download", "exit_code": 22, "count": 1, "installations": 1,
             "messages": [{"message": "HTTP 404", "count": 1}]},
        ])
    );
    let by = |key: &str| -> Vec<(String, [u64; 5])> {
        acme[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["value"].as_str().unwrap().to_string(), counts(r)))
            .collect()
    };
    assert_eq!(
        by("by_arch"),
        [("arm64".into(), [2, 0, 2, 0, 0]), ("x86_64".into(), [1, 1, 0, 0, 0])]
    );
    assert_eq!(
        by("by_container"),
        [("docker".into(), [2, 0, 2, 0, 0]), ("none".into(), [1, 1, 0, 0, 0])]
    );
    assert_eq!(by("by_version"), [("2.4.0".into(), [3, 1, 2, 0, 0])]);
    assert_eq!(acme["by_os"][0]["os"], "alpine");
    assert_eq!(counts(&acme["by_os"][0]), [2, 0, 2, 0, 0]);
    assert_eq!(
        acme["support"]["requests"],
        json!([{"time": "2026-11-12T10:05:00Z", "product_version": "2.4.0", "step": "db", "installation_id": "d"}])
    );

    let with_ci = c.report(&["--include-ci"]);
    let acme = product(&with_ci, "acme");
    assert_eq!(counts(&acme["installations"]), [4, 2, 2, 0, 0]);
    assert_eq!(acme["installations"]["success_rate"], 0.5);

    let emails = c.report(&["--show-emails"]);
    assert_eq!(
        product(&emails, "acme")["support"]["requests"][0]["email"],
        "ops@example.com"
    );

    // A date range: only installations first seen (and events sent) from 11 to 11 November.
    let day = c.report(&["--from", "2026-11-11", "--to", "2026-11-11"]);
    assert_eq!(day["since"], "2026-11-11 – 2026-11-11");
    let acme = product(&day, "acme");
    assert_eq!(counts(&acme["installations"]), [1, 0, 1, 0, 0]);
    assert_eq!(acme["failing_steps"][0]["count"], 2);
    assert_eq!(acme["support"]["count"], 0);
    assert!(
        day["products"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["product"] != "beta")
    );
}

#[test]
fn csv_and_table_carry_the_same_drill_down() {
    let c = Collector::start(&[]);
    scenario(&c);
    let csv = run(&c, &["--format", "csv", "--product", "acme", "--show-emails"]);
    let lines: Vec<&str> = csv.lines().collect();
    let columns = lines[0].split(',').count();
    assert_eq!(columns, 16);
    for line in &lines {
        assert_eq!(line.split(',').count(), columns, "{line}");
    }
    for expected in [
        "installations,acme,,,3,1,2,0,0,0.3333,60000,60000,,,,",
        "ci,acme,,,1,1,0,0,0,1,30000,30000,,,,",
        "arch,acme,arm64,,2,0,2,0,0,0,,,,,,",
        "container,acme,docker,,2,0,2,0,0,0,,,,,,",
        "failing_step,acme,db,5,,,,,,,,,3,,,",
        "error_message,acme,db,disk full,,,,,,,,,3,,,",
        "support_request,acme,2.4.0,db,,,,,,,,,1,2026-11-12T10:05:00Z,d,ops@example.com",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{csv}");
    }

    let table = run(&c, &["--product", "acme"]);
    for expected in [
        "CI installations shown apart",
        "by architecture",
        "by container",
        "disk full (3)",
        "latest support requests",
        "2026-11-12T10:05:00Z",
    ] {
        assert!(table.contains(expected), "missing {expected:?} in\n{table}");
    }
    assert!(!table.contains("ops@example.com"), "emails only with --show-emails");
}

#[test]
fn the_page_drills_down_and_keeps_the_choice_in_the_url() {
    let c = Collector::start(&[]);
    scenario(&c);
    let (status, html) = c.get("/?product=acme&from=2026-11-01&to=2026-11-30&include_ci=1");
    assert_eq!(status, 200);
    assert!(html.contains("<form class=\"picker\" method=\"get\" action=\"/\">"));
    assert!(html.contains("<option value=\"acme\" selected>acme</option>"));
    assert!(
        html.contains("<option value=\"beta\">beta</option>"),
        "every product is offered"
    );
    assert!(html.contains("name=\"from\" value=\"2026-11-01\""));
    assert!(html.contains("name=\"include_ci\" value=\"1\" checked"));
    assert!(html.contains("2026-11-01 – 2026-11-30"));
    for expected in [
        "Why installations fail",
        "disk full <span class=\"n\">×3</span>",
        "By architecture",
        "arm64",
        "By container",
        "docker",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
    assert!(
        html.contains("<code>d</code>"),
        "support request with its installation ID"
    );
    assert!(!html.contains("ops@example.com"), "no emails on the page");
    assert!(!html.contains("<h2>beta</h2>"));

    assert_eq!(c.get("/?from=2026-13-01").0, 400);
    let (_, json) = c.get("/report.json?include_ci=1&product=acme");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["products"][0]["installations"]["started"], 4);
}

#[test]
fn installs_without_an_outcome_are_running_then_abandoned() {
    let c = Collector::start(&[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let p = facts("acme", "2.4.0", "ubuntu", "22.04");
    let body = json!([
        {"event": "Installation Started", "installation_id": "old", "timestamp": "2026-11-01T10:00:00Z", "properties": p},
        {"event": "Installation Started", "installation_id": "new", "properties": p},
    ]);
    assert_eq!(c.post_json("/events", &[], &body).0, 200);
    let report = c.report(&[]);
    let acme = product(&report, "acme");
    assert_eq!(counts(&acme["installations"]), [2, 0, 0, 1, 1], "at {now}");
    assert_eq!(acme["installations"]["success_rate"], 0.0);
    let report = c.report(&["--running-window", "0s"]);
    assert_eq!(counts(&product(&report, "acme")["installations"]), [2, 0, 0, 2, 0]);
}

#[test]
fn bad_windows_are_usage_errors() {
    for args in [
        &["--since", "500000000y"][..],
        &["--from", "yesterday"],
        &["--since", "1d", "--from", "2026-11-01"],
    ] {
        let run = common::run_report(std::path::Path::new("x.sqlite"), args);
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(!run.stderr.is_empty());
    }
}

#[test]
fn support_emails_reach_only_the_admin() {
    let c = Collector::start(&["--admin-token", "s3cret-admin"]);
    scenario(&c);
    let admin = [("Authorization", "Bearer s3cret-admin")];
    let page = c.request("/?product=acme", &admin, None);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<th class=\"l\">email</th>"), "{}", page.text);
    assert!(page.text.contains("ops@example.com"));
    let json: Value = serde_json::from_str(&c.request("/report.json", &admin, None).text).unwrap();
    assert_eq!(
        product(&json, "acme")["support"]["requests"][0]["email"],
        "ops@example.com"
    );
    assert_eq!(c.request("/", &[], None).status, 401, "no page without the token");

    // Without a token (loopback only), the page has the list but no emails.
    let open = Collector::start(&[]);
    scenario(&open);
    let (_, html) = open.get("/?product=acme");
    assert!(
        html.contains("<code>d</code>") && !html.contains("ops@example.com"),
        "{html}"
    );
}
