//! The errors-only consent level: `--telemetry errors`, `INSTALL_BEACON_TELEMETRY=errors`, a policy
//! file saying `telemetry=errors` and the answer `e` to `consent --prompt`. Every command is run,
//! and the receiver must get only the failures and the support request; no usage record is kept.

use std::fs;
use std::process::Output;

use serde_json::{Value, json};

use crate::prompt::answer_prompt;
use crate::support::{Env, Server, stderr, stdout};

/// Every reporting command, with what it would send when everything is on.
const COMMANDS: &[&[&str]] = &[
    &["started"],
    &["run", "--step", "fetch", "--", "true"],
    &["heartbeat", "--every", "1h"],
    &["track", "Plugin Added", "--prop", "plugin=x"],
    &["--min-interval", "1h", "success"],
    &["run", "--step", "unpack", "--", "sh", "-c", "exit 3"],
    &["error", "--step", "configure", "--exit-code", "2"],
    &["support", "--email", "me@example.com"],
    &["flush"],
];

/// What a test adds to every call: variables, arguments before the command.
type Setup<'a> = &'a dyn Fn(&mut assert_cmd::Command);

/// Runs every command in `env` with `setup` applied, and returns what the receiver got.
fn run_every_command(env: &Env, setup: impl Fn(&mut assert_cmd::Command)) -> Vec<Value> {
    let server = Server::start();
    for args in COMMANDS {
        let mut cmd = env.json(&server.url);
        setup(&mut cmd);
        let out = cmd.args(*args).output().unwrap();
        let expected = if args[0] == "run" && args.contains(&"exit 3") {
            3
        } else {
            0
        };
        assert_eq!(out.status.code(), Some(expected), "{args:?}: {}", stderr(&out));
    }
    server.accepted()
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event"].as_str().unwrap()).collect()
}

/// `status` in `env` with `setup` applied: the first two lines.
fn status(env: &Env, setup: impl Fn(&mut assert_cmd::Command)) -> String {
    let mut cmd = env.cmd();
    setup(&mut cmd);
    let out = cmd.arg("status").output().unwrap();
    stdout(&out).lines().take(2).collect::<Vec<_>>().join("\n")
}

/// The state file, as JSON (null when none was written).
fn state(env: &Env) -> Value {
    fs::read(env.state_dir("acme").join("state.json")).map_or(Value::Null, |b| serde_json::from_slice(&b).unwrap())
}

/// The receiver gets the two failures and the support request, with the machine facts; no step
/// times, heartbeat or `--min-interval` record is written.
fn assert_errors_only(events: &[Value], env: &Env, label: &str) {
    assert_eq!(
        names(events),
        ["Installation Error", "Installation Error", "Installation Support"],
        "{label}"
    );
    assert_eq!(events[0]["properties"]["step"], "unpack", "{label}");
    assert_eq!(events[0]["properties"]["exit_code"], 3, "{label}");
    assert_eq!(events[1]["properties"]["step"], "configure", "{label}");
    assert_eq!(events[2]["properties"]["email"], "me@example.com", "{label}");
    assert_eq!(
        events[2]["properties"]["step"], "configure",
        "{label}: the failed step is remembered"
    );
    assert!(
        events[0]["properties"]["os"].is_string(),
        "{label}: errors carry the machine facts"
    );
    let state = state(env);
    for record in ["steps", "last_sent", "sent_once"] {
        let empty = state.get(record).is_none_or(|r| *r == json!([]) || *r == json!({}));
        assert!(empty, "{label}: {record} recorded: {state}");
    }
}

#[test]
fn errors_only_from_the_flag_the_variable_or_the_policy_file_sends_failures_and_support_only() {
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("policy");
    fs::write(&policy, "telemetry=errors\n").unwrap();
    let flag = |cmd: &mut assert_cmd::Command| {
        cmd.args(["--telemetry", "errors"]);
    };
    let variable = |cmd: &mut assert_cmd::Command| {
        cmd.env("INSTALL_BEACON_TELEMETRY", "errors");
    };
    // The policy caps an installer's `--telemetry on`.
    let policy_file = |cmd: &mut assert_cmd::Command| {
        cmd.env("INSTALL_BEACON_POLICY_FILE", &policy)
            .args(["--telemetry", "on"]);
    };
    let sources: [(&str, Setup, String); 3] = [
        ("flag", &flag, "--telemetry flag".into()),
        (
            "variable",
            &variable,
            "environment variable INSTALL_BEACON_TELEMETRY".into(),
        ),
        ("policy", &policy_file, format!("policy file {}", policy.display())),
    ];
    for (label, setup, source) in sources {
        let env = Env::new();
        let events = run_every_command(&env, setup);
        assert_errors_only(&events, &env, label);
        assert_eq!(
            status(&env, setup),
            format!("telemetry:  errors only\ndecided by: {source}"),
            "{label}"
        );
    }
}

#[test]
fn opt_outs_beat_errors_only() {
    let env = Env::new();
    let events = run_every_command(&env, |cmd| {
        cmd.args(["--telemetry", "errors"]).env("DO_NOT_TRACK", "1");
    });
    // Only the support request, which the user asked for, goes out: the address and the step.
    assert_eq!(names(&events), ["Installation Support"]);
    assert!(events[0]["properties"].get("os").is_none(), "{}", events[0]);
    let text = status(&env, |cmd| {
        cmd.args(["--telemetry", "errors"]).env("DO_NOT_TRACK", "1");
    });
    assert_eq!(
        text,
        "telemetry:  disabled\ndecided by: environment variable DO_NOT_TRACK"
    );
}

/// `args` at errors only (`--telemetry errors`), with nowhere to send to.
fn at_errors_only(env: &Env, args: &[&str]) -> Output {
    let mut cmd = env.json("http://127.0.0.1:9");
    cmd.args(["--telemetry", "errors"]).args(args).output().unwrap()
}

#[test]
fn errors_only_says_what_it_holds_back_on_a_dry_run() {
    let env = Env::new();
    let out = at_errors_only(&env, &["--dry-run", "started"]);
    assert!(out.status.success());
    assert_eq!(
        stderr(&out),
        "install-beacon: telemetry is errors only (--telemetry flag): 'Installation Started' is not sent\n"
    );
    assert_eq!(stdout(&out), "");
    let text = stdout(&at_errors_only(&env, &["--dry-run", "error", "--step", "x"]));
    assert!(text.contains("\"event\": \"Installation Error\""), "{text}");
}

#[test]
fn shell_init_passes_errors_only_to_the_hooks() {
    let text = stdout(&at_errors_only(&Env::new(), &["shell-init"]));
    assert!(text.contains("INSTALL_BEACON_TELEMETRY='errors'"), "{text}");
}

#[test]
fn consent_prompt_offers_errors_only_and_saves_it() {
    let env = Env::new();
    let question = "Share anonymous installation statistics? [Y/n]";
    let Some((asked, done)) = answer_prompt(&env, &Server::start(), "consent --prompt", question, "e") else {
        return;
    };
    assert!(
        asked.contains("Answer e to share only failures and requests for help."),
        "{asked}"
    );
    assert!(done.contains("telemetry set to errors only for acme"), "{done}");
    let saved = state(&env);
    // An older beacon reads this as `disable`.
    assert_eq!(
        (saved["consent"].clone(), saved["errors_only"].clone()),
        (false.into(), true.into())
    );
    let events = run_every_command(&env, |_| {});
    assert_errors_only(&events, &env, "saved");
    assert_eq!(
        status(&env, |_| {}),
        "telemetry:  errors only\ndecided by: saved choice (install-beacon enable/disable)"
    );
    // `enable` replaces it.
    env.cmd().arg("enable").assert().success();
    assert_eq!(state(&env).get("errors_only"), None);
}
