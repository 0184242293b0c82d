//! `run` through the real binary: exit codes, output pass-through and logs, the reported fields
//! (never the command or its output), step durations in `success`, and signal forwarding.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Env, Reply, Server, stderr, stdout, target};
use serde_json::Value;

/// `--protocol json` to the server, so each event is one request.
fn props(event: &Value) -> &serde_json::Map<String, Value> {
    event["properties"].as_object().expect("properties")
}

#[test]
fn success_passes_output_through_and_sends_nothing() {
    let server = Server::start();
    let env = Env::new();
    let out = env
        .json(&server.url)
        .args(["run", "--step", "build", "--label", "Building", "--"])
        .args(["sh", "-c", "echo to-stdout; echo to-stderr >&2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "to-stdout\n");
    let err = stderr(&out);
    assert!(
        err.starts_with("==> Building\nto-stderr\n==> Building: done in "),
        "{err}"
    );
    assert!(server.events().is_empty());
}

#[test]
fn failure_keeps_the_exit_code_and_reports_only_step_code_and_duration() {
    let server = Server::start();
    let env = Env::new();
    env.json(&server.url)
        .args(["run", "--step", "unpack", "--"])
        .args(["sh", "-c", "echo secret-output-4711; exit 7"])
        .assert()
        .code(7)
        .stdout("secret-output-4711\n");
    let events = server.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["event"], "Installation Error");
    let p = props(e);
    assert_eq!(p["step"], "unpack");
    assert_eq!(p["exit_code"], 7);
    assert!(p["duration_ms"].as_u64().is_some());
    assert!(!p.contains_key("message"));
    let body = server.requests()[0].body_text();
    assert!(
        !body.contains("secret-output") && !body.contains("sh -c") && !body.contains("exit 7"),
        "{body}"
    );

    // The failed step is remembered for a later support request.
    env.json(&server.url)
        .args(["support", "--email", "ada@example.com"])
        .assert()
        .success();
    let support = &server.events()[1];
    assert_eq!(support["event"], "Installation Support");
    assert_eq!(props(support)["step"], "unpack");
}

#[test]
fn success_reports_recorded_step_durations_then_forgets_them() {
    let server = Server::start();
    let env = Env::new();
    for step in ["prepare", "install"] {
        env.json(&server.url)
            .args(["run", "--step", step, "--", "true"])
            .assert()
            .success();
    }
    env.json(&server.url).arg("success").assert().success();
    env.json(&server.url).arg("success").assert().success();
    let events = server.events();
    assert_eq!(events.len(), 2);
    let p = props(&events[0]);
    let steps = p["step_durations_ms"].as_object().expect("step_durations_ms");
    let keys: Vec<&String> = steps.keys().collect();
    assert_eq!(keys, ["install", "prepare"]);
    let sum: u64 = steps.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(p["total_duration_ms"].as_u64(), Some(sum));
    assert!(
        !props(&events[1]).contains_key("step_durations_ms"),
        "cleared after success"
    );
}

#[test]
fn log_captures_both_streams_and_shows_the_tail_on_failure() {
    let server = Server::start();
    let env = Env::new();
    let log = env.home.path().join("install.log");
    fs::write(&log, "earlier step\n").unwrap();
    let out = env
        .json(&server.url)
        .args(["run", "--step", "compile", "--log"])
        .arg(&log)
        .args([
            "--",
            "sh",
            "-c",
            "i=1; while [ $i -le 20 ]; do echo line$i; i=$((i+1)); done; echo oops >&2; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("==> last lines of {}:\n", log.display())),
        "{err}"
    );
    assert!(err.contains("    line12\n") && err.contains("    oops\n"), "{err}");
    assert!(!err.contains("line11\n"), "only the last 10 lines: {err}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("earlier step\nline1\n") && text.ends_with("line20\noops\n"),
        "{text}"
    );
    assert_eq!(props(&server.events()[0])["exit_code"], 3);
}

#[test]
fn missing_command_exits_127_and_is_reported() {
    let server = Server::start();
    let env = Env::new();
    let out = env
        .json(&server.url)
        .args(["run", "--step", "fetch", "--", "no-such-command-xyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("cannot run 'no-such-command-xyz'"));
    assert_eq!(props(&server.events()[0])["exit_code"], 127);
}

#[test]
fn quiet_prints_nothing_extra() {
    let server = Server::start();
    let env = Env::new();
    env.json(&server.url)
        .args([
            "--quiet",
            "run",
            "--step",
            "a",
            "--",
            "sh",
            "-c",
            "echo only-this >&2; exit 4",
        ])
        .assert()
        .code(4)
        .stdout("")
        .stderr("only-this\n");
}

#[test]
fn the_command_exit_code_wins_over_a_hanging_or_missing_endpoint() {
    let server = Server::with_plan(vec![Reply::Hang]);
    let env = Env::new();
    env.json(&server.url)
        .args([
            "--timeout",
            "300ms",
            "--strict",
            "run",
            "--step",
            "s",
            "--",
            "sh",
            "-c",
            "exit 5",
        ])
        .assert()
        .code(5);
    // A usage error in the report (segment without a key) still leaves the command's code.
    env.cmd()
        .args([
            "--endpoint",
            &server.url,
            "run",
            "--step",
            "s",
            "--",
            "sh",
            "-c",
            "exit 6",
        ])
        .assert()
        .code(6);
}

#[test]
fn opted_out_runs_the_command_and_records_nothing() {
    let server = Server::start();
    let env = Env::new();
    env.json(&server.url)
        .env("DO_NOT_TRACK", "1")
        .args(["run", "--step", "s", "--", "sh", "-c", "exit 9"])
        .assert()
        .code(9);
    env.json(&server.url)
        .env("DO_NOT_TRACK", "1")
        .args(["run", "--step", "s", "--", "true"])
        .assert()
        .success();
    assert!(server.events().is_empty());
    assert!(!env.state_dir("acme").exists(), "a disabled beacon creates nothing");
}

/// Starts `run` on a child that announces itself, sends `signal` to `run` (not the child), and
/// returns run's exit code once the child died of the forwarded signal.
fn signal_run(signal: libc::c_int) -> (i32, Vec<Value>) {
    let server = Server::start();
    let env = Env::new();
    let marker = env.home.path().join("child-started");
    let mut cmd = Command::new(target::beacon());
    cmd.env_clear()
        .env("HOME", env.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MARKER", &marker)
        .args(["--product", "acme", "--protocol", "json", "--endpoint", &server.url])
        .args([
            "run",
            "--step",
            "wait",
            "--",
            "sh",
            "-c",
            "touch \"$MARKER\"; exec sleep 60",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The test harness may have been started with SIGINT ignored (a background job); give the
    // binary default dispositions, as an installer run from a terminal has.
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let give_up = Instant::now() + Duration::from_secs(30);
    while !marker_exists(&marker) {
        assert!(Instant::now() < give_up, "the step never started");
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let status = child.wait().unwrap();
    (status.code().expect("run exits, it is not killed"), server.events())
}

fn marker_exists(path: &Path) -> bool {
    path.exists()
}

#[test]
fn sigterm_is_forwarded_and_reported_as_143() {
    let (code, events) = signal_run(libc::SIGTERM);
    assert_eq!(code, 143);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["properties"]["exit_code"], 143);
    assert_eq!(events[0]["properties"]["step"], "wait");
}

#[test]
fn sigint_is_forwarded_and_reported_as_130() {
    let (code, events) = signal_run(libc::SIGINT);
    assert_eq!(code, 130);
    assert_eq!(events[0]["properties"]["exit_code"], 130);
}
