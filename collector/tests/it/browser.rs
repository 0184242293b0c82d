//! The report page in a real headless browser (Debian's chromium, which `.ci/run` installs): the
//! DOM it renders holds the three charts and the numbers, attempts and unavailable beacons among
//! them, and a screenshot comes out as a real PNG. Without chromium it fails under `CI=true` and
//! skips with a line on stderr elsewhere.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{self, Collector, Run};
use crate::installs::{ERROR, STARTED, SUCCESS, event};

fn chromium(profile: &Path, args: &[&str]) -> Run {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
        .into()
}

/// Whether chromium runs; if not, the loud skip, or the failure under `CI=true`.
fn have_chromium() -> bool {
    crate::tools::have("chromium", &["--version"], "chromium")
}

/// The text a reader sees in a dumped DOM: each tag as a space, runs of white space as one.
fn rendered_text(dom: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A temporary database of 3,000 seeded events over `days`, or `None` (after the loud skip, or the
/// failure under `CI=true`) when chromium is missing.
fn seeded(days: &str, seed: &str) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    if !have_chromium() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seed.sqlite");
    let db_arg = db.to_str().expect("UTF-8 temp path");
    common::run([
        "seed", "--events", "3000", "--days", days, "--seed", seed, "--db", db_arg,
    ])
    .ok();
    Some((dir, db))
}

#[test]
fn the_public_page_renders_without_ids_or_emails_in_chromium() {
    let Some((dir, db)) = seeded("60", "5") else {
        return;
    };
    let collector = Collector::start_with_db(&db, &["--public"]);
    let dom = chromium(
        &dir.path().join("p1"),
        &["--dump-dom", &format!("{}/public", collector.base)],
    )
    .stdout;
    assert!(dom.contains("<h2>acme-server</h2>"), "{dom}");
    assert!(
        dom.matches("<svg").count() >= 8,
        "per week, OS, versions and failures, for both products: {dom}"
    );
    assert!(!dom.contains('@'), "no emails: {dom}");
    let ids: std::collections::BTreeSet<String> = common::exported(&db)
        .iter()
        .map(|e| e["installation_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() > 500);
    assert!(ids.iter().all(|id| !dom.contains(id.as_str())), "no installation IDs");
    assert!(!dom.contains("install-packages failed"), "no error messages");
}

#[test]
fn the_page_renders_its_charts_in_chromium() {
    let Some((dir, db)) = seeded("14", "3") else {
        return;
    };
    let collector = Collector::start_with_db(&db, &[]);
    let url = format!("{}/", collector.base);

    let dom = chromium(&dir.path().join("p1"), &["--dump-dom", &url]);
    let dom = dom.stdout;
    let report = collector.report(&[]);
    for product in report["products"].as_array().unwrap() {
        let name = product["product"].as_str().unwrap();
        let started = product["installations"]["started"].to_string();
        assert!(
            dom.contains(name) && dom.contains(&started),
            "{name} {started} missing from the rendered page"
        );
    }
    assert!(
        dom.matches("<svg").count() >= 3,
        "funnel, failures and per-day charts: {dom}"
    );
    for drill_down in [
        "Why installations fail",
        "install-packages failed",
        "By architecture",
        "By container",
        "Support requests",
        "<form class=\"picker\"",
    ] {
        assert!(dom.contains(drill_down), "{drill_down} missing from the rendered page");
    }
    assert!(!dom.contains("@example.com"), "support emails are never on the page");

    let png = dir.path().join("page.png");
    let shot = chromium(
        &dir.path().join("p2"),
        &[
            "--hide-scrollbars",
            "--window-size=1200,1600",
            &format!("--screenshot={}", png.display()),
            &url,
        ],
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot ({e}): {}", shot.stderr));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
}

/// Posted attempts and unavailable beacons, as the rendered page states them: 4 installations in
/// 5 attempts (one failed, then succeeded on its second: recovered; one failed for good) and 6
/// installers that could not fetch the beacon, each number distinct so none passes for another.
#[test]
fn the_page_shows_attempts_and_unavailable_beacons_in_chromium() {
    if !have_chromium() {
        return;
    }
    let c = Collector::start(&[]);
    let a = |n: u32| json!({"attempt": n});
    let failed_at = |n: u32| json!({"attempt": n, "step": "download", "exit_code": 6});
    let mut events = vec![
        event(STARTED, "recovered", 0, a(1)),
        event(ERROR, "recovered", 1, failed_at(1)),
        event(STARTED, "recovered", 2, a(2)),
        event(SUCCESS, "recovered", 3, a(2)),
        event(STARTED, "failed", 0, a(1)),
        event(ERROR, "failed", 1, failed_at(1)),
        event(STARTED, "ok-1", 0, a(1)),
        event(SUCCESS, "ok-1", 1, a(1)),
        event(STARTED, "ok-2", 0, a(1)),
        event(SUCCESS, "ok-2", 1, a(1)),
    ];
    for n in 1..=6 {
        let reason = json!({"step": "beacon-download", "exit_code": 22, "message": "curl: (22) 404"});
        events.push(event("Beacon Unavailable", &format!("unavailable-{n}"), 0, reason));
    }
    let (status, answer) = c.post_json("/events", &[], &Value::Array(events));
    assert_eq!(status, 200, "{answer}");

    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(profile.path(), &["--dump-dom", &format!("{}/", c.base)]);
    let text = rendered_text(&dom.stdout);
    for shown in [
        "Attempts: 5 started, 3 succeeded, 2 failed; 1 recovered after a failed attempt.",
        "Beacon unavailable: 6 installers could not fetch the beacon (not counted as installations).",
        " 4 installations ",
        " 5 install attempts ",
        " 1 recovered after a failure ",
        " 6 beacon unavailable ",
    ] {
        assert!(
            text.contains(shown),
            "{shown:?} missing from the rendered page: {text}\n{}",
            dom.stderr
        );
    }
}
