//! What the user reads when a call goes wrong, snapshotted whole, so any change of wording shows up
//! in review. Errors are `error: …` on one line, with `hint: …` on the next when the fix is separate.

use insta::assert_snapshot;

use crate::support::{Env, stderr};

/// Runs `args` (after `--product acme`) and returns the exit code and stderr, the temp HOME as `[HOME]`.
fn fails(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let out = env.cmd().args(args).output().unwrap();
    let home = env.home.path().to_string_lossy().into_owned();
    (out.status.code(), stderr(&out).replace(&home, "[HOME]"))
}

#[test]
fn usage_errors() {
    let env = Env::new();
    let out = env.bare().arg("started").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_snapshot!(stderr(&out), @r"
    error: missing --product NAME: say which product is being installed
    hint: pass --product NAME, or set INSTALL_BEACON_PRODUCT
    ");

    let (code, text) = fails(&env, &["--endpoint", "http://127.0.0.1:9", "--strict", "started"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r"
    error: missing --key KEY: the segment protocol needs the Segment write key
    hint: pass --key KEY, or set INSTALL_BEACON_KEY
    ");

    let (code, text) = fails(&env, &["--protocol", "json", "--strict", "success"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r"
    error: missing --endpoint URL: the json protocol has no default endpoint
    hint: pass --endpoint URL, or set INSTALL_BEACON_ENDPOINT
    ");

    let (code, text) = fails(&env, &["--dry-run", "support", "--email", "ada@localhost"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @"error: invalid --email 'ada@localhost': too few parts in the domain; give an address like name@example.com");

    let (code, text) = fails(&env, &["--dry-run", "track", " "]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r#"error: the event name is empty; use e.g. install-beacon track "Plugin Installed""#);

    let (code, text) = fails(&env, &["--dry-run", "track", "Signup", "--prop", "email=a@b.co"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @"error: --prop email=… holds an email address, which is not sent with custom events; use `install-beacon support --email ADDRESS`");

    let (code, text) = fails(
        &env,
        &[
            "--dry-run",
            "track",
            "Signup",
            "--prop",
            "plan=pro",
            "--prop",
            "contact=ada@example.com",
        ],
    );
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @"error: --prop contact=… holds an email address, which is not sent with custom events; use `install-beacon support --email ADDRESS`");

    for value in [
        "owner=mailto:ada@example.com",
        "owner=Ada <ada@example.com>",
        "note=ask ada@example.com.",
    ] {
        let (code, text) = fails(&env, &["--dry-run", "track", "Signup", "--prop", value]);
        assert_eq!(code, Some(2), "{value}");
        assert!(text.contains("holds an email address"), "{value}: {text}");
    }

    let long = "x".repeat(65_536);
    let (code, text) = fails(&env, &["--dry-run", "track", &long]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @"error: the event name is 65536 characters long; use at most 200");
    let (code, text) = fails(&env, &["--dry-run", "track", "Signup", "--prop", &format!("{long}=1")]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @"error: the property key is 65536 characters long; use at most 200");
    let (code, text) = fails(&env, &["--dry-run", "track", "beacon unavailable"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r#"error: the event name "beacon unavailable" is what fetch-beacon.sh sends when the beacon could not be fetched; use another name"#);
}

#[test]
fn track_refuses_checkpoint_names_and_the_beacons_own_properties() {
    let env = Env::new();
    let (code, text) = fails(&env, &["--dry-run", "track", "Installation Support"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r#"error: the event name "Installation Support" is a checkpoint of install-beacon, which `track` does not send; use `install-beacon support`, or another name"#);

    let (code, text) = fails(&env, &["--dry-run", "track", "instance active"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r#"error: the event name "instance active" is a checkpoint of install-beacon, which `track` does not send; use `install-beacon heartbeat`, or another name"#);

    let (code, text) = fails(
        &env,
        &[
            "--dry-run",
            "track",
            "Signup",
            "--prop",
            "plan=pro",
            "--prop",
            "os=plan9",
        ],
    );
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @"error: --prop os=… would overwrite a property install-beacon sends itself (os, os_version, arch, cpu_count, memory_mb, container, ci, context, product, product_version, beacon_version, step, exit_code, message, duration_ms, email, total_duration_ms, step_durations_ms, attempt, agent, install_method); use another key, e.g. --prop app_os=…");

    let (code, text) = fails(&env, &["--dry-run", "track", "Signup", "--prop", "Product=other"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @"error: --prop Product=… would overwrite a property install-beacon sends itself (os, os_version, arch, cpu_count, memory_mb, container, ci, context, product, product_version, beacon_version, step, exit_code, message, duration_ms, email, total_duration_ms, step_durations_ms, attempt, agent, install_method); use another key, e.g. --prop app_Product=…");
}

/// `enable`, `disable`, `id` and `log` need the state directory: one refused by the safety checks
/// is a failure (exit 1) naming why, not a missing setting (exit 2).
#[test]
fn commands_needing_a_refused_state_dir_fail_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let shared = env.home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let dir = shared.to_str().unwrap();
    let mut texts = Vec::new();
    for command in ["enable", "disable", "id", "log"] {
        let (code, text) = fails(&env, &["--quiet", "--state-dir", dir, command]);
        assert_eq!(code, Some(1), "{command}: {text}");
        texts.push(text);
    }
    assert_snapshot!(texts.concat(), @r"
    error: cannot save the choice: the state directory [HOME]/shared (not used: it is writable by group or others (mode 0777))
    error: cannot save the choice: the state directory [HOME]/shared (not used: it is writable by group or others (mode 0777))
    error: cannot keep the installation ID: the state directory [HOME]/shared (not used: it is writable by group or others (mode 0777))
    error: cannot read the audit log: the state directory [HOME]/shared (not used: it is writable by group or others (mode 0777))
    ");
}

/// A missing key or endpoint is the installer's configuration, not the user's input: an installer
/// under `set -e` goes on, told what is missing (exit 2 only with `--strict`, above).
#[test]
fn a_missing_key_or_endpoint_sends_nothing_and_exits_0() {
    let env = Env::new();
    let (code, text) = fails(&env, &["--endpoint", "http://127.0.0.1:9", "started"]);
    assert_eq!(code, Some(0));
    assert_snapshot!(text, @r"
    install-beacon: warning: missing --key KEY: the segment protocol needs the Segment write key; nothing was sent
    hint: pass --key KEY, or set INSTALL_BEACON_KEY
    ");

    let (code, text) = fails(&env, &["--protocol", "json", "flush"]);
    assert_eq!(code, Some(0));
    assert_snapshot!(text, @r"
    install-beacon: warning: missing --endpoint URL: the json protocol has no default endpoint; nothing was sent
    hint: pass --endpoint URL, or set INSTALL_BEACON_ENDPOINT
    ");

    let out = env
        .cmd()
        .args(["--protocol", "json", "--quiet", "error", "--step", "x"])
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), stderr(&out)),
        (Some(0), String::new()),
        "--quiet: silent"
    );
    assert!(
        !env.state_dir("acme").join("outbox.jsonl").exists(),
        "nothing queued: it could never go out"
    );
}

#[test]
fn bad_values_are_reported_by_the_parser() {
    let env = Env::new();
    let (code, text) = fails(&env, &["--protocol", "carrier-pigeon", "started"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r"
    error: invalid value 'carrier-pigeon' for '--protocol <PROTOCOL>'
      [possible values: segment, posthog, json, otlp]

    For more information, try '--help'.
    ");
}

#[test]
fn a_file_the_command_must_write_fails_with_exit_1() {
    let env = Env::new();
    let file = env.home.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let (code, text) = fails(&env, &["--state-dir", file.to_str().unwrap(), "disable"]);
    assert_eq!(code, Some(1));
    assert_snapshot!(text, @r"
    install-beacon: warning: cannot read [HOME]/not-a-dir/state.json: Not a directory (os error 20)
    error: cannot save the choice in [HOME]/not-a-dir: File exists (os error 17)
    ");
}

#[test]
fn a_hostile_state_dir_and_unrepresentable_durations() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let env = Env::new();
    let (code, text) = fails(&env, &["--timeout", "18446744073709551615", "--dry-run", "started"]);
    assert_eq!(code, Some(2));
    assert_snapshot!(text, @r"
    error: invalid value '18446744073709551615' for '--timeout <DURATION>': too long: at most 100 years; use e.g. 500ms, 3s, 2m, 12h

    For more information, try '--help'.
    ");

    let shared = env.home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (code, text) = fails(
        &env,
        &[
            "--state-dir",
            shared.to_str().unwrap(),
            "--key",
            "wk_1",
            "--dry-run",
            "started",
        ],
    );
    assert_eq!(code, Some(0));
    assert_snapshot!(text, @r"
    install-beacon: warning: not using the state directory [HOME]/shared: it is writable by group or others (mode 1777); nothing is saved and the installation ID is a one-time one
    hint: use a directory only you can write: --state-dir DIR, or fix its owner and mode
    ");

    // flush, at the end of an installer, must not fail it either.
    let shared_dir = shared.to_str().unwrap();
    let (code, text) = fails(
        &env,
        &[
            "--state-dir",
            shared_dir,
            "--protocol",
            "json",
            "--endpoint",
            "http://127.0.0.1:9",
            "flush",
        ],
    );
    assert_eq!(code, Some(0));
    assert_snapshot!(text, @r"
    install-beacon: warning: not using the state directory [HOME]/shared: it is writable by group or others (mode 1777); nothing is saved and the installation ID is a one-time one
    hint: use a directory only you can write: --state-dir DIR, or fix its owner and mode
    install-beacon: nothing to deliver: without a state directory there is no queue
    ");

    let dir = env.state_dir("acme");
    std::fs::create_dir_all(&dir).unwrap();
    symlink("/nonexistent", dir.join("installation_id")).unwrap();
    let (code, text) = fails(&env, &["id"]);
    assert_eq!(code, Some(1));
    assert_snapshot!(text, @r"
    error: cannot write the installation ID to [HOME]/.local/state/acme/installation_id: a symbolic link, not followed
    hint: remove the link [HOME]/.local/state/acme/installation_id, or point --id-file at a regular file
    ");
}

/// The first command a new user runs, `started --dry-run`, prints a full request; without a key the
/// same call without `--dry-run` would send nothing, and the dry run says so (on stderr, so the
/// request on stdout stays as it is). With a key, or a protocol that needs none, it says nothing.
#[test]
fn a_dry_run_without_a_key_says_the_real_call_would_send_nothing() {
    let env = Env::new();
    for args in [
        &["--dry-run", "started"][..],
        &[
            "--protocol",
            "posthog",
            "--endpoint",
            "https://eu.i.posthog.com",
            "--dry-run",
            "started",
        ],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(crate::support::stdout(&out).starts_with("POST https://"), "{out:?}");
        assert!(
            stderr(&out).starts_with("install-beacon: --dry-run: without it, nothing would be sent: missing --key KEY"),
            "{out:?}"
        );
    }
    let out = env.cmd().args(["--dry-run", "started"]).output().unwrap();
    assert_snapshot!(stderr(&out), @r"
    install-beacon: --dry-run: without it, nothing would be sent: missing --key KEY: the segment protocol needs the Segment write key
    hint: pass --key KEY, or set INSTALL_BEACON_KEY
    ");
    for args in [
        &["--key", "wk_1", "--dry-run", "started"][..],
        &[
            "--protocol",
            "json",
            "--endpoint",
            "http://127.0.0.1:9",
            "--dry-run",
            "started",
        ],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}
