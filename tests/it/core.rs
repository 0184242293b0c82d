//! The binary end to end against a real 127.0.0.1 server: wire formats, identity, consent, dry run,
//! usage errors and unreachable endpoints.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::{Env, Peer, RawPeer, Reply, Server, stderr, stdout, target};
use serde_json::{Value, json};

const UUID_LEN: usize = 36;

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == UUID_LEN && uuid_like(s))
}

fn uuid_like(s: &str) -> bool {
    s.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
}

fn is_rfc3339_millis(v: &Value) -> bool {
    // 2026-11-23T18:58:36.123Z
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[test]
fn segment_started_request_is_exactly_what_segment_expects() {
    let server = Server::start();
    let env = Env::new();
    env.segment(&server.url)
        .args(["--product-version", "1.2.3", "started"])
        .assert()
        .success();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "/v1/batch");
    // base64("wk_test_123456:")
    assert_eq!(req.header("Authorization"), Some("Basic d2tfdGVzdF8xMjM0NTY6"));
    assert_eq!(req.header("Content-Type"), Some("application/json"));
    assert_eq!(
        req.header("User-Agent"),
        Some(concat!("install-beacon/", env!("CARGO_PKG_VERSION")))
    );

    let body = req.json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["batch", "sentAt"]);
    assert!(is_rfc3339_millis(&body["sentAt"]));
    let e = &body["batch"][0];
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "anonymousId",
            "context",
            "event",
            "messageId",
            "properties",
            "timestamp",
            "type"
        ]
    );
    assert_eq!(e["type"], "track");
    assert_eq!(e["event"], "Installation Started");
    assert!(is_uuid(&e["anonymousId"]) && is_uuid(&e["messageId"]));
    assert!(is_rfc3339_millis(&e["timestamp"]));
    let id = fs::read_to_string(env.id_file("acme")).unwrap();
    assert_eq!(id, format!("{}\n", e["anonymousId"].as_str().unwrap()));

    let p = &e["properties"];
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    let mut expected = vec![
        "arch",
        "attempt",
        "beacon_version",
        "ci",
        "container",
        "cpu_count",
        "memory_mb",
        "os",
        "os_version",
        "product",
        "product_version",
    ];
    if !p.as_object().unwrap().contains_key("memory_mb") {
        expected.retain(|k| *k != "memory_mb");
    }
    assert_eq!(keys, expected);
    assert_eq!(p["product"], "acme");
    assert_eq!(p["product_version"], "1.2.3");
    assert_eq!(p["beacon_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["arch"], target::arch());
    assert_eq!(p["ci"], false);
    assert_eq!(p["attempt"], 1);
    assert!(p["cpu_count"].as_u64().is_some_and(|n| n >= 1));
    assert!(["docker", "podman", "kubernetes", "none"].contains(&p["container"].as_str().unwrap()));
    assert_eq!(
        e["context"],
        json!({"ip": "0.0.0.0", "library": {"name": "install-beacon", "version": env!("CARGO_PKG_VERSION")},
               "os": {"name": p["os"], "version": p["os_version"]}})
    );
}

#[test]
fn posthog_batch_matches_the_capture_api() {
    let server = Server::start();
    let env = Env::new();
    env.cmd()
        .args([
            "--protocol",
            "posthog",
            "--endpoint",
            &server.url,
            "--key",
            "phc_project_key",
        ])
        .arg("success")
        .assert()
        .success();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url, "/batch/");
    assert_eq!(reqs[0].header("Authorization"), None);
    let body = reqs[0].json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["api_key", "batch", "sent_at"]);
    assert_eq!(body["api_key"], "phc_project_key");
    let e = &body["batch"][0];
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["distinct_id", "event", "properties", "timestamp", "uuid"]);
    assert_eq!(e["event"], "Installation Success");
    assert!(is_uuid(&e["distinct_id"]) && is_uuid(&e["uuid"]));
    let p = &e["properties"];
    assert_eq!(p["$lib"], "install-beacon");
    assert_eq!(p["$lib_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["$os"], p["os"]);
    assert_eq!(p["$os_version"], p["os_version"]);
    assert_eq!(p["$process_person_profile"], false);
    assert_eq!(
        p.get("$ip"),
        Some(&Value::Null),
        "the key keeps PostHog from recording the address"
    );
    assert_eq!(p["$geoip_disable"], true);
}

#[test]
fn json_protocol_posts_one_plain_object() {
    let server = Server::start();
    let env = Env::new();
    let url = format!("{}/events", server.url);
    env.cmd()
        .args(["--protocol", "json", "--endpoint", &url, "started"])
        .assert()
        .success();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url, "/events");
    let body = reqs[0].json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["event", "installation_id", "message_id", "properties", "timestamp"]
    );
    assert_eq!(body["event"], "Installation Started");
}

#[test]
fn one_installation_id_across_calls_and_fresh_message_ids() {
    let server = Server::start();
    let env = Env::new();
    for cmd in ["started", "success"] {
        env.segment(&server.url).arg(cmd).assert().success();
    }
    let events = server.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["anonymousId"], events[1]["anonymousId"]);
    assert_ne!(events[0]["messageId"], events[1]["messageId"]);
    let printed = env.cmd().arg("id").assert().success().get_output().stdout.clone();
    assert_eq!(
        String::from_utf8(printed).unwrap().trim(),
        events[0]["anonymousId"].as_str().unwrap()
    );
}

#[test]
fn error_and_support_fields() {
    let server = Server::start();
    let env = Env::new();
    let long = "x".repeat(700);
    env.segment(&server.url)
        .args(["error", "--step", "download", "--exit-code", "22", "--message", &long])
        .assert()
        .success();
    env.segment(&server.url)
        .args(["support", "--email", "ada@example.com", "--message", "it broke"])
        .assert()
        .success();
    let events = server.events();
    let error = &events[0]["properties"];
    assert_eq!(events[0]["event"], "Installation Error");
    assert_eq!(error["step"], "download");
    assert_eq!(error["exit_code"], 22);
    assert_eq!(error["message"].as_str().unwrap().len(), 500);
    assert!(error.get("email").is_none());
    assert_eq!(events[1]["event"], "Installation Support");
    assert_eq!(events[1]["properties"]["email"], "ada@example.com");
    assert_eq!(events[1]["properties"]["message"], "it broke");
}

#[test]
fn bad_email_exits_2_and_sends_nothing() {
    let server = Server::start();
    let env = Env::new();
    let out = env
        .segment(&server.url)
        .args(["support", "--email", "ada@localhost"])
        .assert()
        .code(2);
    let stderr = stderr(out.get_output());
    assert!(stderr.starts_with("error: invalid --email 'ada@localhost'"), "{stderr}");
    assert!(stderr.contains("name@example.com"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(server.requests().is_empty());
    assert!(!env.id_file("acme").exists());
}

#[test]
fn track_sends_typed_props() {
    let server = Server::start();
    let env = Env::new();
    env.segment(&server.url)
        .args([
            "track",
            "Plugin Installed",
            "--prop",
            "name=pg",
            "--prop",
            "count=3",
            "--prop",
            "ratio=0.5",
        ])
        .args(["--prop", "ok=true", "--prop", "ver=1.2.3"])
        .assert()
        .success();
    let e = &server.events()[0];
    assert_eq!(e["event"], "Plugin Installed");
    let p = &e["properties"];
    assert_eq!(
        (&p["name"], &p["count"], &p["ratio"], &p["ok"], &p["ver"]),
        (&json!("pg"), &json!(3), &json!(0.5), &json!(true), &json!("1.2.3"))
    );
}

#[test]
fn id_reset_and_path() {
    let env = Env::new();
    let path = env
        .cmd()
        .args(["id", "--path"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        String::from_utf8(path).unwrap().trim(),
        env.id_file("acme").to_str().unwrap()
    );
    let first = env.cmd().arg("id").output().unwrap().stdout;
    let again = env.cmd().arg("id").output().unwrap().stdout;
    assert_eq!(first, again);
    let reset = env.cmd().args(["id", "--reset"]).output().unwrap().stdout;
    assert_ne!(first, reset);
    assert_eq!(fs::read(env.id_file("acme")).unwrap(), reset);
    let mode = fs::metadata(env.id_file("acme")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "the installed product must be able to read it");

    let custom = env.home.path().join("etc/acme/id");
    let id = env
        .cmd()
        .arg("--id-file")
        .arg(&custom)
        .arg("id")
        .output()
        .unwrap()
        .stdout;
    assert_eq!(fs::read(&custom).unwrap(), id);
}

/// `--dry-run` writes no file: `id` says what it would create or replace, and prints an ID only
/// when one exists.
#[test]
fn id_dry_run_writes_no_file() {
    let env = Env::new();
    let path = env.id_file("acme");
    for args in [&["--dry-run", "id"][..], &["--dry-run", "id", "--reset"]] {
        let out = env.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            stdout(&out),
            format!(
                "--dry-run: would create {} with a new installation ID\n",
                path.display()
            )
        );
        assert!(!env.state_dir("acme").exists(), "{args:?} created the state dir");
    }
    let id = stdout(&env.cmd().arg("id").output().unwrap());
    assert_eq!(stdout(&env.cmd().args(["--dry-run", "id"]).output().unwrap()), id);
    let out = env.cmd().args(["--dry-run", "id", "--reset"]).output().unwrap();
    assert_eq!(
        stdout(&out),
        format!(
            "--dry-run: would replace {} with a new installation ID\n",
            path.display()
        )
    );
    fs::write(&path, "garbage").unwrap();
    let out = env.cmd().args(["--dry-run", "id"]).output().unwrap();
    assert_eq!(
        stdout(&out),
        format!(
            "--dry-run: {} holds no valid ID: it would be left untouched (id --reset replaces it)\n",
            path.display()
        )
    );
    let out = env.cmd().args(["--dry-run", "id", "--reset"]).output().unwrap();
    assert_eq!(
        stdout(&out),
        format!(
            "--dry-run: would replace {}, which holds no valid ID, with a new installation ID\n",
            path.display()
        )
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "garbage");
}

/// `--id-file` pointed at a file that holds something else (a config file, a binary): a warning, a
/// one-time ID for this call, and the file untouched, byte for byte. Only a missing (or empty) file
/// is created.
#[test]
fn an_id_file_that_holds_something_else_is_refused_and_left_untouched() {
    let server = Server::start();
    let env = Env::new();
    let config = env.home.path().join("acme.conf");
    let content = b"[server]\nlisten = 127.0.0.1:8080\n\xff\x00binary\n";
    fs::write(&config, content).unwrap();
    for _ in 0..2 {
        let out = env
            .segment(&server.url)
            .arg("--id-file")
            .arg(&config)
            .arg("started")
            .assert()
            .success();
        let stderr = stderr(out.get_output());
        assert_eq!(
            stderr.lines().next().unwrap_or_default(),
            format!(
                "install-beacon: warning: cannot keep the installation ID in {}: it holds something other than an installation ID (left untouched); using a one-time ID",
                config.display()
            ),
            "{stderr}"
        );
    }
    assert_eq!(fs::read(&config).unwrap(), content);
    let events = server.events();
    assert_ne!(events[0]["anonymousId"], events[1]["anonymousId"], "one-time IDs");
}

/// Every opt-out source: the call exits 0, opens no connection and creates no ID file, and
/// `status` names the source.
#[test]
fn every_opt_out_source_sends_nothing_and_is_explained() {
    let peer = RawPeer::start(Peer::Silent);
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--telemetry=no"], vec![], "--telemetry flag"),
        (vec!["--telemetry", "OPT-OUT"], vec![], "--telemetry flag"),
        (
            vec![],
            vec![("INSTALL_BEACON_TELEMETRY", "disable")],
            "environment variable INSTALL_BEACON_TELEMETRY",
        ),
        (vec![], vec![("DO_NOT_TRACK", "1")], "environment variable DO_NOT_TRACK"),
        (
            vec![],
            vec![("ACME_DISABLE_TELEMETRY", "true")],
            "environment variable ACME_DISABLE_TELEMETRY",
        ),
        (
            vec![],
            vec![("ACME_TELEMETRY_DISABLE", "yes")],
            "environment variable ACME_TELEMETRY_DISABLE",
        ),
        (
            vec![],
            vec![("ACME_TELEMETRY_DISABLED", "1")],
            "environment variable ACME_TELEMETRY_DISABLED",
        ),
    ];
    for (args, vars, source) in cases {
        let env = Env::new();
        let mut cmd = env.segment(&peer.url);
        cmd.args(&args).envs(vars.iter().copied());
        cmd.arg("started").assert().success().stdout("");
        let mut status = env.cmd();
        status.args(&args).envs(vars.iter().copied());
        let out = status.arg("status").output().unwrap();
        let text = stdout(&out);
        assert!(text.contains("telemetry:  disabled"), "{args:?} {vars:?}: {text}");
        assert!(
            text.contains(&format!("decided by: {source}")),
            "{args:?} {vars:?}: {text}"
        );
        assert!(!env.id_file("acme").exists(), "{args:?} {vars:?}");
    }
    assert_eq!(peer.connections(), 0);
}

#[test]
fn saved_choice_and_flag_override() {
    let server = Server::start();
    let env = Env::new();
    env.cmd().arg("disable").assert().success();
    let mode = fs::metadata(env.state_dir("acme").join("state.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    env.segment(&server.url).arg("started").assert().success();
    assert!(server.requests().is_empty());
    let status = env.cmd().arg("status").output().unwrap().stdout;
    assert!(String::from_utf8_lossy(&status).contains("decided by: saved choice"));
    // The user's saved `disable` wins over an installer's flag...
    env.segment(&server.url)
        .args(["started", "--telemetry", "yes"])
        .assert()
        .success();
    assert!(server.requests().is_empty());
    env.cmd().arg("enable").assert().success();
    env.segment(&server.url).arg("success").assert().success();
    assert_eq!(server.requests().len(), 1);
    // ...but an explicit `--telemetry off` wins over a saved `enable`.
    env.segment(&server.url)
        .args(["started", "--telemetry", "no"])
        .assert()
        .success();
    assert_eq!(server.requests().len(), 1);
}

/// A `disable` saved in the default state directory counts when an installer keeps its state
/// elsewhere (`--state-dir`, `INSTALL_BEACON_STATE_DIR`); a saved `enable` there opts nothing in.
#[test]
fn a_disable_saved_in_the_default_state_dir_counts_in_any_other() {
    let server = Server::start();
    let env = Env::new();
    let other = env.home.path().join("installer-state");
    let other = other.to_str().unwrap();
    env.cmd().arg("disable").assert().success();
    env.segment(&server.url)
        .args(["--state-dir", other, "started"])
        .assert()
        .success();
    env.segment(&server.url)
        .env("INSTALL_BEACON_STATE_DIR", other)
        .args(["started", "--telemetry", "on"])
        .assert()
        .success();
    assert!(server.requests().is_empty());
    let status = stdout(&env.cmd().args(["--state-dir", other, "status"]).output().unwrap());
    assert!(status.contains("decided by: saved choice"), "{status}");

    let out = env.cmd().args(["--state-dir", other, "enable"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let default = env.state_dir("acme");
    assert_eq!(
        stderr(&out).lines().last(),
        Some(
            format!(
                "install-beacon: warning: this choice is overridden by the disable saved in {}; withdraw it with: install-beacon --state-dir {} enable",
                default.display(),
                default.display()
            )
            .as_str()
        )
    );
    env.segment(&server.url)
        .args(["--state-dir", other, "started"])
        .assert()
        .success();
    assert!(server.requests().is_empty());

    env.cmd().arg("enable").assert().success();
    env.cmd().args(["--state-dir", other, "disable"]).assert().success();
    env.segment(&server.url)
        .args(["--state-dir", other, "started"])
        .assert()
        .success();
    assert!(
        server.requests().is_empty(),
        "an enable saved elsewhere opts nothing in"
    );
    env.segment(&server.url).arg("started").assert().success();
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn donottrack_executable_cannot_be_turned_back_on() {
    let peer = RawPeer::start(Peer::Silent);
    let env = Env::new();
    let renamed = env.home.path().join("acme-DoNotTrack");
    // A symlink, not a copy: exec of a freshly written copy races other tests' forks (ETXTBSY).
    std::os::unix::fs::symlink(target::beacon(), &renamed).unwrap();
    env.bin(&renamed)
        .args([
            "--product",
            "acme",
            "--endpoint",
            &peer.url,
            "--key",
            "k",
            "--telemetry",
            "yes",
            "started",
        ])
        .assert()
        .success();
    let out = env
        .bin(&renamed)
        .args(["--product", "acme", "--telemetry", "yes", "status"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("decided by: executable name 'acme-DoNotTrack' contains 'donottrack'"),
        "{text}"
    );
    assert_eq!(peer.connections(), 0);
}

#[test]
fn dry_run_prints_the_request_and_sends_nothing() {
    let peer = RawPeer::start(Peer::Silent);
    let env = Env::new();
    let out = env
        .cmd()
        .args([
            "--endpoint",
            &peer.url,
            "--key",
            "wk_secret_value",
            "started",
            "--dry-run",
        ])
        .assert()
        .success();
    let stdout = stdout(out.get_output());
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(format!("POST {}/v1/batch", peer.url).as_str()));
    assert_eq!(lines.next(), Some("Content-Type: application/json"));
    assert_eq!(lines.next(), Some("Authorization: Basic base64(\"wk_s****:\")"));
    assert!(!stdout.contains("secret_value"));
    let body: Value = serde_json::from_str(&stdout[stdout.find("\n{").unwrap()..]).unwrap();
    assert_eq!(body["batch"][0]["event"], "Installation Started");
    assert_eq!(peer.connections(), 0);
    assert!(!env.id_file("acme").exists(), "a dry run writes nothing");
}

#[test]
fn debug_prints_to_stderr_and_still_sends() {
    let server = Server::start();
    let env = Env::new();
    let out = env
        .segment(&server.url)
        .env("INSTALL_BEACON_DEBUG", "1")
        .arg("started")
        .assert()
        .success();
    let stderr = stderr(out.get_output());
    assert!(stderr.contains(&format!("POST {}/v1/batch", server.url)), "{stderr}");
    assert!(stderr.contains("\"event\": \"Installation Started\""), "{stderr}");
    assert!(out.get_output().stdout.is_empty());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn first_run_notice_is_shown_once_and_quiet_hides_it() {
    let server = Server::start();
    let env = Env::new();
    let first = env.segment(&server.url).arg("started").output().unwrap();
    let text = stderr(&first);
    assert!(text.contains("anonymous installation statistics"), "{text}");
    assert!(
        text.ends_with(" Opt out with DO_NOT_TRACK=1 or ACME_DISABLE_TELEMETRY=1 in the environment.\n"),
        "only what the user has after curl | sh: {text}"
    );
    let second = env.segment(&server.url).arg("success").output().unwrap();
    assert!(second.stderr.is_empty(), "{}", stderr(&second));

    let quiet = Env::new();
    let out = quiet
        .segment(&server.url)
        .args(["started", "--quiet"])
        .output()
        .unwrap();
    assert!(out.stderr.is_empty());
}

/// The installer names the product's own opt-out and privacy policy (through shell-init, too).
#[test]
fn first_run_notice_names_the_products_opt_out_and_privacy_url() {
    let server = Server::start();
    let env = Env::new();
    let out = env
        .segment(&server.url)
        .args(["--opt-out-hint", "run `acme telemetry off`"])
        .env("INSTALL_BEACON_PRIVACY_URL", "https://acme.example/privacy")
        .arg("started")
        .output()
        .unwrap();
    let text = stderr(&out);
    assert!(
        text.ends_with(
            " Opt out with DO_NOT_TRACK=1 or ACME_DISABLE_TELEMETRY=1 in the environment, or run `acme \
             telemetry off`. Privacy policy: https://acme.example/privacy\n"
        ),
        "{text}"
    );
    let init = env
        .cmd()
        .args(["--opt-out-hint", "run `acme telemetry off`", "shell-init"])
        .output()
        .unwrap();
    assert!(
        stdout(&init).contains("export INSTALL_BEACON_OPT_OUT_HINT='run `acme telemetry off`'"),
        "{}",
        stdout(&init)
    );
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let env = Env::new();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--telemetry=maybe", "started"],
            "invalid value 'maybe' for '--telemetry <VALUE>'",
        ),
        (
            vec!["--timeout", "soon", "started"],
            "invalid value 'soon' for '--timeout <DURATION>'",
        ),
        (
            vec!["--endpoint", "ftp://x.example", "started"],
            "must start with http:// or https://",
        ),
        (
            vec!["--endpoint", "not a url", "started"],
            "invalid value 'not a url' for '--endpoint <URL>'",
        ),
        (
            vec!["--protocol", "carrier-pigeon", "started"],
            "invalid value 'carrier-pigeon'",
        ),
        (
            vec!["--strict", "--protocol", "posthog", "--key", "k", "started"],
            "missing --endpoint URL",
        ),
        (
            vec!["--strict", "--endpoint", "http://127.0.0.1:9", "started"],
            "missing --key KEY",
        ),
        (vec!["track", "  "], "the event name is empty"),
        (
            vec!["track", "Signup", "--prop", "Email=a@b.co"],
            "use `install-beacon support --email ADDRESS`",
        ),
    ];
    for (args, expected) in cases {
        let out = env.cmd().args(&args).output().unwrap();
        let stderr = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            stderr.lines().next().unwrap().starts_with("error: "),
            "{args:?}: {stderr}"
        );
    }
    let out = env.bare().arg("started").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing --product NAME"));
}

#[test]
fn global_options_work_after_the_subcommand_and_from_env() {
    let server = Server::start();
    let env = Env::new();
    env.bare()
        .args(["started", "--quiet", "--telemetry=no", "--product", "acme"])
        .assert()
        .success()
        .stderr("");
    env.bare()
        .env("INSTALL_BEACON_PRODUCT", "acme")
        .env("INSTALL_BEACON_ENDPOINT", &server.url)
        .env("INSTALL_BEACON_KEY", "k")
        .env("INSTALL_BEACON_QUIET", "1")
        .arg("started")
        .assert()
        .success()
        .stderr("");
    assert_eq!(server.events().len(), 1);
}

#[test]
fn unreachable_endpoints_return_within_the_timeout_with_exit_0() {
    let silent = RawPeer::start(Peer::Silent);
    let env = Env::new();
    // assert_cmd kills the process after 30 s; --timeout 1s must end it long before.
    let out = env
        .segment(&silent.url)
        .args(["--timeout", "1s", "started"])
        .assert()
        .success();
    let text = stderr(out.get_output());
    assert!(
        text.contains("could not send 'Installation Started'") && text.contains("no answer within"),
        "{text}"
    );

    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", refused.local_addr().unwrap());
    drop(refused);
    let out = env.segment(&url).arg("started").assert().success();
    assert!(stderr(out.get_output()).contains("connection refused"));
    env.segment(&url).args(["started", "--strict"]).assert().code(1);
}

#[test]
fn rejected_event_warns_and_strict_exits_1() {
    let server = Server::with_plan(vec![Reply::Body(400, "{\"error\":\"bad write key\"}".into())]);
    let env = Env::new();
    let out = env.segment(&server.url).args(["--strict", "started"]).assert().code(1);
    let stderr = stderr(out.get_output());
    assert!(
        stderr.contains("HTTP 400") && stderr.contains("bad write key"),
        "{stderr}"
    );
}

#[test]
fn no_hostname_username_or_home_path_is_sent() {
    let server = Server::start();
    let env = Env::new();
    env.segment(&server.url).arg("started").assert().success();
    env.segment(&server.url)
        .args(["error", "--step", "s", "--exit-code", "1"])
        .assert()
        .success();
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let home = env.home.path().to_str().unwrap().to_owned();
    for req in server.requests() {
        let body = req.body_text();
        for secret in [hostname.trim(), user.as_str(), home.as_str(), "/tmp", "/home/"] {
            if secret.len() >= 3 {
                assert!(!body.contains(secret), "{secret:?} leaked in {body}");
            }
        }
    }
}
