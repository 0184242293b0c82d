//! The HTML report page, `/report.json`, `/healthz`, and the `report` command's other formats.

use serde_json::{Value, json};

use crate::common::{self, Collector, facts, with};

fn seed_events(c: &Collector) {
    let p = facts("acme <server>", "1.4.2", "ubuntu", "22.04");
    let e = |name: &str, id: &str, ts: &str, extra: Value| json!({"event": name, "installation_id": id, "timestamp": ts, "properties": with(p.clone(), extra)});
    let body = json!([
        e("Installation Started", "a", "2021-03-10T10:00:00Z", json!({})),
        e("Installation Success", "a", "2021-03-10T10:00:42Z", json!({})),
        e("Installation Started", "b", "2021-03-11T10:00:00Z", json!({})),
        e(
            "Installation Error",
            "b",
            "2021-03-11T10:00:05Z",
            json!({"step": "configure", "exit_code": 2})
        ),
    ]);
    assert_eq!(c.post_json("/events", &[], &body).0, 200);
}

#[test]
fn page_has_the_svg_charts() {
    let c = Collector::start(&[]);
    let (status, empty) = c.get("/");
    assert_eq!(status, 200);
    assert!(empty.contains("No events yet"));

    seed_events(&c);
    let (status, html) = c.get("/");
    assert_eq!(status, 200);
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(html.matches("<svg").count(), 3, "funnel, failures by step, per day");
    for title in [
        "<title>Funnel</title>",
        "<title>Failures by step</title>",
        "<title>Per day: started vs succeeded vs failed</title>",
    ] {
        assert!(html.contains(title), "missing {title}");
    }
    assert!(html.contains("acme &lt;server&gt;"), "product names are escaped");
    assert!(html.contains("configure (exit 2)"));
    assert!(!html.contains("<script"), "no JS");
    assert!(!html.contains("https://"), "no external resources");

    let (status, json) = c.get("/report.json?since=3650d");
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["products"][0]["installations"]["started"], 2);
    assert_eq!(report["products"][0]["installations"]["median_duration_ms"], 42000);
    assert_eq!(c.get("/report.json?since=soon").0, 400);
    assert!(c.get("/report.json?product=other").1.contains("\"products\":[]"));
    assert_eq!(c.get("/healthz"), (200, "ok\n".into()));
}

#[test]
fn report_formats_and_filters() {
    let c = Collector::start(&[]);
    seed_events(&c);
    let run = |args: &[&str]| common::run_report(&c.db, args).ok();
    let table = run(&[]);
    assert!(table.contains("== acme <server> =="), "{table}");
    assert!(table.contains("installations"));
    assert!(table.contains("configure"));
    let csv = run(&["--format", "csv"]);
    assert!(csv.starts_with("section,product,key,subkey,started,"));
    assert!(
        csv.contains("installations,acme <server>,,,2,1,1,0,0,0.5,42000,42000,"),
        "{csv}"
    );
    assert!(
        csv.contains("failing_step,acme <server>,configure,2,,,,,,,,,1"),
        "{csv}"
    );

    assert_eq!(common::report(&c.db, &["--product", "nope"])["products"], json!([]));
    // The events are from March 2021; a 1 s window holds none of them.
    assert_eq!(common::report(&c.db, &["--since", "1s"])["products"], json!([]));
}

#[test]
fn report_on_a_missing_database_explains() {
    let out = common::run(["report", "--db", "/nonexistent/events.sqlite"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: database /nonexistent/events.sqlite does not exist\n\
         hint: pass the file given to `beacon-collector serve --db`\n"
    );
}

#[test]
fn a_window_too_long_to_count_back_is_refused_not_an_empty_report() {
    let c = Collector::start(&[]);
    seed_events(&c);
    let out = common::run_report(&c.db, &["--since", "500000000y"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with(
            "error: invalid value '500000000y' for '--since <DURATION>': \
             500000000y is too long a window; leave it out to report all time\n"
        ),
        "{}",
        out.stderr
    );
    let (status, body) = c.get("/report.json?since=500000000y");
    assert_eq!(status, 400, "{body}");
    // The longest window that fits still counts everything.
    let all = common::report(&c.db, &["--since", "200000000y"]);
    assert_eq!(all["products"][0]["installations"]["started"], 2);
}

#[test]
fn serve_explains_why_it_cannot_start() {
    let out = common::run([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        "/nonexistent/dir/events.sqlite",
    ]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: cannot open database /nonexistent/dir/events.sqlite: \
         No such file or directory (os error 2)\n\
         hint: check that the directory of --db exists and is writable\n"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.sqlite");
    let out = common::run(["serve", "--listen", &addr, "--db", db.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "error: cannot listen on {addr}: Address already in use (os error 98)\n\
             hint: pick another --listen address, or port 0 for any free port\n"
        )
    );
}
