//! The whole loop for real: the `install-beacon` binary of this workspace, in all three protocols and
//! driven by `scripts/install.sh`, reports to a running `beacon-collector`, whose report must show
//! exactly what happened. Needs the workspace built (`cargo test --workspace` does that).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{self, Collector, Run, product};

/// The install-beacon binary built next to beacon-collector.
pub fn beacon_bin() -> PathBuf {
    let bin = Path::new(common::BIN).with_file_name("install-beacon");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// One machine: its own HOME, so its own installation ID and state.
struct Machine {
    home: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        Machine {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd
    }

    /// `install-beacon --product acme <target args> <args>`; the call must succeed.
    fn beacon(&self, target: &[&str], args: &[&str]) -> Run {
        let out: Run = self
            .command(&beacon_bin())
            .args(["--product", "acme"])
            .args(target)
            .args(args)
            .output()
            .unwrap()
            .into();
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        out
    }

    /// `sh scripts/install.sh --prefix <home>/demo <args>` against the collector.
    fn install_sh(&self, base: &str, args: &[&str]) -> (Run, PathBuf) {
        let prefix = self.home.path().join("demo");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install.sh");
        let out = self
            .command(Path::new("sh"))
            .arg(script)
            .arg("--prefix")
            .arg(&prefix)
            .args(args)
            .env("INSTALL_BEACON_BIN", beacon_bin())
            .env("INSTALL_BEACON_ENDPOINT", base)
            .env("INSTALL_BEACON_KEY", "e2e-key")
            .output()
            .unwrap()
            .into();
        (out, prefix)
    }
}

fn counts(section: &Value) -> Value {
    json!([
        section["started"],
        section["succeeded"],
        section["failed"],
        section["abandoned"],
        section["running"]
    ])
}

#[test]
fn install_beacon_and_the_demo_installer_fill_the_report_exactly() {
    let collector = Collector::start(&[
        "--key",
        "e2e-key",
        "--latest-version",
        "1.5.0",
        "--notice",
        "1.4.1 fixes a security issue",
    ]);
    let base = collector.base.clone();
    let events = format!("{base}/events");
    let segment = [
        "--endpoint",
        base.as_str(),
        "--key",
        "e2e-key",
        "--product-version",
        "1.4.0",
    ];
    let posthog = [
        "--protocol",
        "posthog",
        "--endpoint",
        base.as_str(),
        "--key",
        "e2e-key",
        "--product-version",
        "1.4.0",
    ];
    let plain = [
        "--protocol",
        "json",
        "--endpoint",
        events.as_str(),
        "--key",
        "e2e-key",
        "--product-version",
        "1.3.0",
    ];

    // Segment: A succeeds and then heartbeats, B fails downloading.
    let a = Machine::new();
    let first = a.beacon(&segment, &["started"]);
    let later = a.beacon(&segment, &["success"]);
    a.beacon(&segment, &["heartbeat"]);
    let b = Machine::new();
    b.beacon(&segment, &["started"]);
    b.beacon(
        &segment,
        &[
            "error",
            "--step",
            "download",
            "--exit-code",
            "22",
            "--message",
            "HTTP 404",
        ],
    );
    // PostHog: C succeeds, D starts and is never heard of again.
    let c = Machine::new();
    c.beacon(&posthog, &["started"]);
    c.beacon(&posthog, &["success"]);
    let d = Machine::new();
    d.beacon(&posthog, &["started"]);
    // Plain JSON: E fails configuring and asks for help.
    let e = Machine::new();
    e.beacon(&plain, &["started"]);
    e.beacon(&plain, &["error", "--step", "configure", "--exit-code", "3"]);
    e.beacon(&plain, &["support", "--email", "ada@example.com"]);

    // The collector's answers reach the person running the installer, once per version.
    let first = first.stderr;
    assert!(
        first.contains("A newer version of acme is available: 1.5.0 (you have 1.4.0)")
            && first.contains("acme: 1.4.1 fixes a security issue"),
        "{first}"
    );
    let later = later.stderr;
    assert!(
        !later.contains("A newer version") && !later.contains("security"),
        "shown again: {later}"
    );

    // The demo installer: one good run, one that fails at `unpack`.
    let good = Machine::new();
    let (out, prefix) = good.install_sh(&base, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let installed: Run = Command::new(prefix.join("bin/demo")).output().unwrap().into();
    let product_says = installed.stdout;
    let bad = Machine::new();
    let (out, _) = bad.install_sh(&base, &["--fail-at", "unpack"]);
    assert_eq!(out.code, Some(3), "the installer fails with the step's exit code");

    let report = collector.report(&[]);
    let acme = product(&report, "acme");
    // Started A B C D E; succeeded A C; failed B E; D has no outcome: running (it just started),
    // abandoned once the running window is over.
    assert_eq!(counts(&acme["installations"]), json!([5, 2, 2, 0, 1]), "{acme:#}");
    let later = common::report(&collector.db, &["--running-window", "0s"]);
    assert_eq!(
        counts(&product(&later, "acme")["installations"]),
        json!([5, 2, 2, 1, 0])
    );
    assert_eq!(
        acme["failing_steps"],
        json!([
            {"step": "configure", "exit_code": 3, "count": 1, "installations": 1,
             "messages": [{"message": "", "count": 1}]},
            {"step": "download", "exit_code": 22, "count": 1, "installations": 1,
             "messages": [{"message": "HTTP 404", "count": 1}]}
        ])
    );
    assert_eq!(acme["support"]["count"], 1);
    assert_eq!(acme["active_24h"], 1);
    let versions: Vec<(Value, Value)> = acme["by_version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["value"].clone(), counts(v)))
        .collect();
    assert!(
        versions.contains(&(json!("1.3.0"), json!([1, 0, 1, 0, 0]))),
        "{versions:?}"
    );
    assert!(
        versions.contains(&(json!("1.4.0"), json!([4, 2, 1, 0, 1]))),
        "{versions:?}"
    );

    let demo = product(&report, "demo");
    assert_eq!(counts(&demo["installations"]), json!([2, 1, 1, 0, 0]), "{demo:#}");
    assert_eq!(demo["failing_steps"][0]["step"], "unpack");
    assert_eq!(demo["failing_steps"][0]["exit_code"], 3);
    assert!(demo["installations"]["median_duration_ms"].as_u64().is_some());

    // The installed product reads the same ID the good run reported.
    let reported = common::exported(&collector.db)
        .into_iter()
        .find(|e| e["product"] == "demo" && e["event"] == "Installation Success")
        .expect("the demo's success is stored")["installation_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(product_says.trim(), format!("demo 1.4.0, installation {reported}"));
}

#[test]
fn the_json_protocol_reaches_the_collector_at_its_base_url() {
    // As the README's fetch snippet configures it: `--endpoint https://collector… --protocol json`.
    let collector = Collector::start(&["--key", "e2e-key"]);
    let base = collector.base.clone();
    let target = [
        "--protocol",
        "json",
        "--endpoint",
        base.as_str(),
        "--key",
        "e2e-key",
        "--strict",
    ];
    let m = Machine::new();
    m.beacon(&target, &["started"]);
    m.beacon(&target, &["error", "--step", "download", "--exit-code", "22"]);
    let report = collector.report(&[]);
    let acme = product(&report, "acme");
    assert_eq!(counts(&acme["installations"]), json!([1, 0, 1, 0, 0]), "{acme:#}");
    assert_eq!(acme["failing_steps"][0]["step"], "download");
}
