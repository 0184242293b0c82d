//! Consent the way users asked for it: `--default-consent`, the machine-wide policy file, and
//! `consent --prompt` without a terminal.

use std::fs;

use crate::support::{Env, Server, stderr};

fn status(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.arg("status").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn default_consent_disabled_is_opt_in_and_undecided_waits() {
    let server = Server::start();
    for (value, sends) in [("disabled", false), ("undecided", false), ("enabled", true)] {
        let env = Env::new();
        env.json(&server.url)
            .args(["--default-consent", value, "started"])
            .assert()
            .success();
        let text = status(env.json(&server.url).env("INSTALL_BEACON_DEFAULT_CONSENT", value));
        assert!(text.starts_with(&format!("telemetry:  {value}\n")), "{text}");
        assert!(text.contains("decided by: default (--default-consent)"), "{text}");
        assert_eq!(env.state_dir("acme").exists(), sends, "{value}");
        // A saved yes beats the default.
        env.json(&server.url).arg("enable").assert().success();
        env.json(&server.url)
            .args(["--default-consent", value, "success"])
            .assert()
            .success();
    }
    let names: Vec<_> = server.events().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(
        names,
        [
            "Installation Success",
            "Installation Success",
            "Installation Started",
            "Installation Success"
        ]
    );
}

#[test]
fn policy_file_disables_every_product_even_against_the_flag() {
    let server = Server::start();
    let env = Env::new();
    let policy = env.home.path().join("policy");
    fs::write(&policy, "# set by the admin\ntelemetry=off\n").unwrap();
    env.json(&server.url)
        .env("INSTALL_BEACON_POLICY_FILE", &policy)
        .args(["--telemetry", "yes", "started"])
        .assert()
        .success();
    let text = status(env.json(&server.url).env("INSTALL_BEACON_POLICY_FILE", &policy));
    assert!(text.starts_with("telemetry:  disabled\n"), "{text}");
    assert!(
        text.contains(&format!("decided by: policy file {}\n", policy.display())),
        "{text}"
    );

    // `telemetry=on` leaves the decision to the others.
    fs::write(&policy, "telemetry=on\n").unwrap();
    env.json(&server.url)
        .env("INSTALL_BEACON_POLICY_FILE", &policy)
        .arg("started")
        .assert()
        .success();
    assert_eq!(server.events().len(), 1);

    // Garbage disables, with a warning that names the file.
    fs::write(&policy, "please no tracking\n").unwrap();
    let out = env
        .json(&server.url)
        .env("INSTALL_BEACON_POLICY_FILE", &policy)
        .arg("started")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("warning: ignoring unreadable lines in the policy file") && err.contains("please no tracking"),
        "{err}"
    );
    assert!(err.contains("hint: write `telemetry=off`"), "{err}");
    assert_eq!(server.events().len(), 1);
}

#[test]
fn enable_explains_that_the_policy_overrides_it() {
    let env = Env::new();
    let policy = env.home.path().join("policy");
    fs::write(&policy, "telemetry=off\n").unwrap();
    let out = env
        .cmd()
        .env("INSTALL_BEACON_POLICY_FILE", &policy)
        .arg("enable")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("overridden by the policy file"), "{err}");
}

#[test]
fn consent_prompt_without_a_terminal_keeps_the_default_and_saves_nothing() {
    let env = Env::new();
    let out = std::process::Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_install-beacon"))
        .args([
            "--product",
            "acme",
            "--default-consent",
            "disabled",
            "consent",
            "--prompt",
        ])
        .env_clear()
        .env("HOME", env.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = stderr(&out);
    assert_eq!(
        err,
        "install-beacon: no terminal to ask on (CI, container or cron): telemetry stays disabled (default)\n"
    );
    assert!(!env.state_dir("acme").join("state.json").exists());
    env.cmd()
        .args(["--default-consent", "disabled", "consent"])
        .assert()
        .success()
        .stdout("disabled: decided by default (--default-consent)\n");
}
