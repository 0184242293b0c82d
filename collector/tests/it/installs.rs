//! Who installs and how often: install attempts (an installation's outcome is its latest
//! attempt's), agent installs counted apart like CI ones, install methods, and installers that
//! could not fetch the beacon (`Beacon Unavailable`), which are no installation at all.

use serde_json::{Value, json};

use crate::common::{Collector, facts, product, run_report, with};

/// A plain JSON event of product `acme` at minute `minute` of 2021-03-10 10:00 UTC.
pub fn event(name: &str, id: &str, minute: u32, extra: Value) -> Value {
    json!({
        "event": name,
        "installation_id": id,
        "message_id": format!("{id}-{name}-{minute}"),
        "timestamp": format!("2021-03-10T10:{minute:02}:00Z"),
        "properties": with(facts("acme", "1.0.0", "ubuntu", "22.04"), extra),
    })
}

/// `event` sent now (no timestamp: the collector uses the time it received it).
fn now(name: &str, id: &str, extra: Value) -> Value {
    let mut e = event(name, id, 0, extra);
    e.as_object_mut().map(|o| o.remove("timestamp"));
    e
}

fn post(c: &Collector, events: Vec<Value>) {
    let (status, answer) = c.post_json("/events", &[], &Value::Array(events));
    assert_eq!(status, 200, "{answer}");
}

pub const STARTED: &str = "Installation Started";
pub const SUCCESS: &str = "Installation Success";
pub const ERROR: &str = "Installation Error";

#[test]
fn the_latest_attempt_decides_and_recoveries_are_counted() {
    let c = Collector::start(&[]);
    let a = |n: u32| json!({"attempt": n});
    let failed_at = |n: u32| json!({"attempt": n, "step": "download", "exit_code": 6});
    post(
        &c,
        vec![
            // Failed, then re-run and succeeded: recovered.
            event(STARTED, "recovered", 0, a(1)),
            event(ERROR, "recovered", 1, failed_at(1)),
            event(STARTED, "recovered", 2, a(2)),
            event(SUCCESS, "recovered", 3, a(2)),
            // Succeeded, then a re-install failed: failed (its latest attempt).
            event(STARTED, "regressed", 0, a(1)),
            event(SUCCESS, "regressed", 1, a(1)),
            event(STARTED, "regressed", 2, a(2)),
            event(ERROR, "regressed", 3, failed_at(2)),
            // Failed, then re-run that reported nothing more: abandoned, not failed.
            event(STARTED, "retried", 0, a(1)),
            event(ERROR, "retried", 1, failed_at(1)),
            event(STARTED, "retried", 2, a(2)),
            // A late event of an earlier attempt does not change the outcome.
            event(STARTED, "late", 0, a(2)),
            event(SUCCESS, "late", 1, a(2)),
            event(ERROR, "late", 5, failed_at(1)),
            // An older beacon sends no attempt: one attempt, as before.
            event(STARTED, "old", 0, json!({})),
            event(SUCCESS, "old", 1, json!({})),
        ],
    );
    let report = c.report(&[]);
    let acme = product(&report, "acme");
    let i = &acme["installations"];
    assert_eq!(
        [
            &i["started"],
            &i["succeeded"],
            &i["failed"],
            &i["abandoned"],
            &i["recovered"]
        ],
        [5, 3, 1, 1, 1],
        "{acme:#}"
    );
    assert_eq!(acme["attempts"], json!({"started": 9, "succeeded": 4, "failed": 3}));
    assert_eq!(
        acme["failing_steps"][0]["count"], 4,
        "every Error event is still a failing step"
    );

    let text = run_report(&c.db, &[]).ok();
    assert!(
        text.contains("attempts: 9 started, 4 succeeded, 3 failed; 1 recovered after a failed attempt"),
        "{text}"
    );
    let (status, page) = c.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("9 started, 4 succeeded, 3 failed; 1 recovered after a failed attempt"));
    assert!(page.contains("<b>1</b><span>recovered after a failure</span>"));
}

#[test]
fn agent_installs_are_counted_apart_unless_included() {
    let c = Collector::start(&[]);
    let agent = json!({"agent": "claude-code", "install_method": "curl-sh"});
    post(
        &c,
        vec![
            event(STARTED, "human", 0, json!({"install_method": "curl-sh"})),
            event(SUCCESS, "human", 1, json!({"install_method": "curl-sh"})),
            event(STARTED, "docker", 0, json!({"install_method": "docker"})),
            event(ERROR, "docker", 1, json!({"install_method": "docker", "step": "pull"})),
            event(STARTED, "bot", 0, agent.clone()),
            event(ERROR, "bot", 1, with(agent, json!({"step": "verify"}))),
            event(STARTED, "ci", 0, json!({"ci": true})),
            event(SUCCESS, "ci", 1, json!({"ci": true})),
        ],
    );
    let counts = |f: &Value| json!([f["started"], f["succeeded"], f["failed"]]);
    let methods = |p: &Value| -> Vec<(String, u64)> {
        p["by_install_method"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["value"].as_str().unwrap().to_string(), r["started"].as_u64().unwrap()))
            .collect()
    };

    let report = c.report(&[]);
    let acme = product(&report, "acme");
    assert_eq!(report["agents_included"], false);
    assert_eq!(counts(&acme["installations"]), json!([2, 1, 1]), "{acme:#}");
    assert_eq!(acme["installations"]["success_rate"], 0.5);
    assert_eq!(counts(&acme["agents"]), json!([1, 0, 1]));
    assert_eq!(counts(&acme["ci"]), json!([1, 1, 0]));
    assert_eq!(methods(acme), [("curl-sh".to_string(), 1), ("docker".to_string(), 1)]);

    let report = c.report(&["--include-agents"]);
    let acme = product(&report, "acme");
    assert_eq!(report["agents_included"], true);
    assert_eq!(counts(&acme["installations"]), json!([3, 1, 2]));
    assert_eq!(acme["installations"]["success_rate"], 0.3333);
    assert_eq!(counts(&acme["agents"]), json!([1, 0, 1]), "still shown apart");
    assert_eq!(methods(acme), [("curl-sh".to_string(), 2), ("docker".to_string(), 1)]);

    let (_, json) = c.get("/report.json?include_agents=1");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(product(&report, "acme")["installations"]["started"], 3);
    let text = run_report(&c.db, &[]).ok();
    assert!(text.contains("by install method"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("agents ") && l.contains(" 1 ")),
        "{text}"
    );
}

#[test]
fn an_unavailable_beacon_is_counted_but_is_no_installation() {
    let c = Collector::start(&["--public", "--public-k", "2"]);
    let unavailable = |id: &str| {
        now(
            "Beacon Unavailable",
            id,
            json!({"step": "beacon-download", "exit_code": 22, "message": "curl: (22) 404"}),
        )
    };
    post(
        &c,
        vec![
            unavailable("u1"),
            unavailable("u2"),
            now(STARTED, "i1", json!({})),
            now(SUCCESS, "i1", json!({})),
            now(STARTED, "i2", json!({})),
            now(SUCCESS, "i2", json!({})),
        ],
    );
    let report = c.report(&[]);
    let acme = product(&report, "acme");
    assert_eq!(acme["beacon_unavailable"], 2);
    assert_eq!(acme["installations"]["started"], 2);
    assert_eq!(acme["installations"]["success_rate"], 1.0);
    assert_eq!(acme["failing_steps"], json!([]));
    assert_eq!(acme["daily"][0]["started"], 2);

    let text = run_report(&c.db, &[]).ok();
    assert!(
        text.contains("beacon unavailable: 2 installers could not fetch the beacon"),
        "{text}"
    );
    let (_, page) = c.get("/");
    assert!(page.contains("<b>2</b><span>beacon unavailable</span>"));
    let (status, public) = c.get("/public.json");
    assert_eq!(status, 200);
    assert!(
        !public.contains("unavailable") && !public.contains("beacon-download"),
        "{public}"
    );
    let public: Value = serde_json::from_str(&public).unwrap();
    assert_eq!(public["products"][0]["installations"], 2);
    assert_eq!(public["products"][0]["failure_steps"], json!([]));
    assert!(
        !c.stderr().contains("Beacon Unavailable"),
        "not noted as an unknown event name: {}",
        c.stderr()
    );
}

/// The real fetch snippet, as the README pastes it (`--protocol json` to the collector's base
/// URL), where the beacon cannot be downloaded: the installer goes on, and the collector counts
/// one unavailable beacon and no installation.
#[test]
fn the_fetch_snippet_reports_an_unavailable_beacon_the_collector_counts_apart() {
    let c = Collector::start(&[]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-beacon.sh");
    let home = tempfile::tempdir().unwrap();
    let installer = format!(
        "set -eu\n. '{}'\nbeacon_fetch --product acme --product-version 1.2.3 --endpoint {} --protocol json\n\
         beacon_started\nbeacon_run unpack -- true\nbeacon_success\necho installed\n",
        script.display(),
        c.base
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &installer])
        .env_clear()
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BEACON_BASE_URL", format!("{}/no-such-release", c.base))
        .env("BEACON_VERSION", "0.0.1")
        .env(
            "BEACON_SHA256SUMS",
            "0000  install-beacon-0.0.1-x86_64-unknown-linux-musl.tar.gz",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("installed"), "{out:?}");
    let report = c.report(&[]);
    let acme = product(&report, "acme");
    assert_eq!(acme["beacon_unavailable"], 1, "{acme:#}");
    assert_eq!(acme["installations"]["started"], 0);
    assert_eq!(acme["failing_steps"], json!([]));
}
