//! `shell-init` evaluated by real shells (sh, dash, bash, zsh) under
//! `set -eu`: the EXIT trap reports the failed step once, success disarms it, options carry over
//! with safe quoting, and a missing install-beacon never breaks the script.

use std::process::{Command, Output};

use crate::support::{Env, Server, shells, stderr, stdout, target};
use serde_json::Value;

/// Runs `body` after the hooks, in `shell`, with options given to shell-init only.
fn run(shell: &str, env: &Env, server: &Server, init_args: &str, body: &str) -> Output {
    let script = format!(
        "set -eu\neval \"$(\"$BIN\" --product acme --protocol json --endpoint \"$URL\" {init_args} shell-init)\"\n{body}\n"
    );
    Command::new(shell)
        .args(["-c", &script])
        .env_clear()
        .env("HOME", env.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BIN", target::beacon())
        .env("URL", &server.url)
        .output()
        .expect("run shell")
}

fn events(server: &Server) -> Vec<Value> {
    server.events()
}

#[test]
fn failing_script_reports_the_current_step_and_keeps_its_exit_status() {
    for shell in shells() {
        let server = Server::start();
        let env = Env::new();
        let out = run(
            shell,
            &env,
            &server,
            "",
            "beacon_started\nbeacon_step configure\nsh -c 'exit 5'\necho unreachable",
        );
        assert_eq!(out.status.code(), Some(5), "{shell}: {}", stderr(&out));
        assert!(!stdout(&out).contains("unreachable"));
        let e = events(&server);
        assert_eq!(e.len(), 2, "{shell}");
        assert_eq!(e[1]["event"], "Installation Error");
        assert_eq!(e[1]["properties"]["step"], "configure", "{shell}");
        assert_eq!(e[1]["properties"]["exit_code"], 5, "{shell}");
    }
}

#[test]
fn beacon_run_failure_is_reported_once_by_run_not_again_by_the_trap() {
    for shell in shells() {
        let server = Server::start();
        let env = Env::new();
        let out = run(shell, &env, &server, "", "beacon_run unpack -- sh -c 'exit 6'");
        assert_eq!(out.status.code(), Some(6), "{shell}");
        let e = events(&server);
        assert_eq!(e.len(), 1, "{shell}: {e:?}");
        assert_eq!(e[0]["properties"]["step"], "unpack");
        assert!(e[0]["properties"]["duration_ms"].is_u64());
    }
}

#[test]
fn success_disarms_the_trap() {
    for shell in shells() {
        let server = Server::start();
        let env = Env::new();
        let out = run(shell, &env, &server, "", "beacon_run a -- true\nbeacon_success\nexit 3");
        assert_eq!(out.status.code(), Some(3), "{shell}");
        let e = events(&server);
        assert_eq!(e.len(), 1, "{shell}");
        assert_eq!(e[0]["event"], "Installation Success");
        assert!(e[0]["properties"]["step_durations_ms"]["a"].is_u64());
    }
}

#[test]
fn options_given_to_shell_init_reach_every_call_with_safe_quoting() {
    for shell in shells() {
        let server = Server::start();
        let env = Env::new();
        let state = env.home.path().join("state dir with 'quotes' and $dollar");
        let init = format!(
            "--product-version '1.0 \"beta\"' --state-dir '{}'",
            state.to_string_lossy().replace('\'', r"'\''")
        );
        let out = run(shell, &env, &server, &init, "beacon_started");
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let e = events(&server);
        assert_eq!(e[0]["properties"]["product_version"], "1.0 \"beta\"", "{shell}");
        assert!(state.join("installation_id").exists(), "{shell}");
    }
}

#[test]
fn a_missing_install_beacon_never_fails_the_script() {
    for shell in shells() {
        let env = Env::new();
        let server = Server::start();
        let script = "set -eu\neval \"$(\"$BIN\" --product acme shell-init)\"\n__beacon_bin=/nonexistent/install-beacon\n\
             beacon_started\nbeacon_run s -- sh -c 'echo ran'\nbeacon_success\necho done";
        let out = Command::new(shell)
            .args(["-c", script])
            .env_clear()
            .env("HOME", env.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BIN", target::beacon())
            .env("INSTALL_BEACON_PROTOCOL", "json")
            .env("INSTALL_BEACON_ENDPOINT", &server.url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert_eq!(stdout(&out), "ran\ndone\n", "{shell}");
        // The hooks were set up for this server; with the binary gone, nothing reaches it.
        assert!(server.events().is_empty());
    }
}

/// Runs `body` after the hooks in `shell` against a fresh receiver: the script's result and the events.
fn events_of(shell: &str, body: &str) -> (Output, Vec<Value>) {
    let server = Server::start();
    let out = run(shell, &Env::new(), &server, "", body);
    (out, events(&server))
}

/// `beacon_error TEXT` attaches the installer's words to the failure: the EXIT path sends exactly
/// one `Installation Error` with the step, the exit code and the text; after a failed `beacon_run`
/// it also carries the step's duration.
#[test]
fn beacon_error_text_goes_with_the_one_error_the_exit_path_sends() {
    for shell in shells() {
        let (out, e) = events_of(
            shell,
            "beacon_started\nbeacon_step configure\nbeacon_error 'port 8080 is taken'\nexit 4",
        );
        assert_eq!(out.status.code(), Some(4), "{shell}: {}", stderr(&out));
        let names: Vec<&Value> = e.iter().map(|e| &e["event"]).collect();
        assert_eq!(names, ["Installation Started", "Installation Error"], "{shell}");
        assert_eq!(e[1]["properties"]["step"], "configure", "{shell}");
        assert_eq!(e[1]["properties"]["exit_code"], 4, "{shell}");
        assert_eq!(e[1]["properties"]["message"], "port 8080 is taken", "{shell}");

        let (out, e) = events_of(
            shell,
            "beacon_run download -- sh -c 'exit 22' || { beacon_error 'mirror unreachable'; exit 22; }",
        );
        assert_eq!(out.status.code(), Some(22), "{shell}: {}", stderr(&out));
        assert_eq!(e.len(), 1, "{shell}: exactly one error: {e:?}");
        assert_eq!(e[0]["properties"]["step"], "download", "{shell}");
        assert_eq!(e[0]["properties"]["exit_code"], 22, "{shell}");
        assert_eq!(e[0]["properties"]["message"], "mirror unreachable", "{shell}");
        assert!(e[0]["properties"]["duration_ms"].is_u64(), "{shell}: {e:?}");
    }
}

/// `beacon_run STEP -- FUNCTION` runs a shell function in the installer's own shell: what it sets
/// survives, and its failure is reported with its step.
#[test]
fn beacon_run_runs_shell_functions_in_the_installers_shell() {
    for shell in shells() {
        let body = "download_and_extract() { ARCHIVE=acme.tgz; echo \"args: $*\"; }\n\
                    beacon_run download --label Downloading -- download_and_extract a 'b c'\n\
                    echo \"ARCHIVE=$ARCHIVE\"\n\
                    check() { return 3; }\n\
                    beacon_run check -- check\necho unreachable";
        let (out, e) = events_of(shell, body);
        assert_eq!(out.status.code(), Some(3), "{shell}: {}", stderr(&out));
        assert_eq!(stdout(&out), "args: a b c\nARCHIVE=acme.tgz\n", "{shell}");
        assert_eq!(e.len(), 1, "{shell}: {e:?}");
        assert_eq!(e[0]["properties"]["step"], "check", "{shell}");
        assert_eq!(e[0]["properties"]["exit_code"], 3, "{shell}");
    }
}

/// A re-run after a failure is a new attempt: each `started` begins one, and every event carries
/// the number of its attempt (per installation ID, kept in the state directory); a dry run shows
/// the next number without using it up.
#[test]
fn every_event_carries_its_install_attempt() {
    let server = Server::start();
    let env = Env::new();
    let calls: [&[&str]; 6] = [
        &["started"],
        &["error", "--step", "download", "--exit-code", "22"],
        &["started"],
        &["track", "Plugin Installed"],
        &["success"],
        &["heartbeat"],
    ];
    for args in calls {
        env.json(&server.url).args(args).assert().success();
    }
    let dry = env.json(&server.url).args(["--dry-run", "started"]).output().unwrap();
    assert!(stdout(&dry).contains("\"attempt\": 3"), "{}", stdout(&dry));
    let e = events(&server);
    let attempts: Vec<(&Value, &Value)> = e.iter().map(|e| (&e["event"], &e["properties"]["attempt"])).collect();
    assert_eq!(
        attempts,
        [
            (&Value::from("Installation Started"), &Value::from(1)),
            (&Value::from("Installation Error"), &Value::from(1)),
            (&Value::from("Installation Started"), &Value::from(2)),
            (&Value::from("Plugin Installed"), &Value::from(2)),
            (&Value::from("Installation Success"), &Value::from(2)),
            (&Value::from("Instance Active"), &Value::from(2)),
        ]
    );
    // Another installation ID (a reset) starts counting again.
    env.json(&server.url).args(["id", "--reset"]).assert().success();
    env.json(&server.url).arg("started").assert().success();
    assert_eq!(events(&server)[6]["properties"]["attempt"], 1);
}
