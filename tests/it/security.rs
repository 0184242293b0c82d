//! A hostile machine and a hostile server: whatever the state directory holds (held locks, FIFOs,
//! symlinks, someone else's files), whatever the server answers, whatever the environment says,
//! every call ends within its `--timeout`, writes nowhere it should not, honours the user's opt-out,
//! sends queued events only where they were meant to go, and never panics.

use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::time::{Duration, Instant};

use crate::support::{Env, Peer, RawPeer, Reply, Server, refused_url, stderr, stdout, tools};
use proptest::prelude::*;
use serde_json::Value;

/// Slack allowed past `--timeout` for process start-up on a loaded machine. The bug it guards
/// against is a hang: the commands are killed after `KILL_AFTER`.
const MARGIN: Duration = Duration::from_millis(1500);
const KILL_AFTER: Duration = Duration::from_secs(12);

/// Runs `cmd` and returns its output and how long it took.
fn timed(cmd: &mut assert_cmd::Command) -> (Output, Duration) {
    cmd.timeout(KILL_AFTER);
    let start = Instant::now();
    let out = cmd.output().expect("the binary runs");
    (out, start.elapsed())
}

fn assert_within(elapsed: Duration, timeout: Duration, what: &str, out: &Output) {
    assert!(
        elapsed < timeout + MARGIN,
        "{what} took {elapsed:?} with --timeout {timeout:?} (status {:?}, stderr: {})",
        out.status,
        stderr(out)
    );
}

fn mkfifo(path: &Path) {
    let status = StdCommand::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success());
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A recording server, a temp HOME, and its (existing) state directory for `acme`.
fn setup() -> (Server, Env, PathBuf) {
    let env = Env::new();
    let dir = env.state_dir("acme");
    fs::create_dir_all(&dir).unwrap();
    (Server::start(), env, dir)
}

// 1. No call outlives its --timeout, whatever the state directory holds.

#[test]
fn a_held_state_lock_does_not_keep_any_call_past_its_timeout() {
    let (server, env, dir) = setup();
    let lock = File::create(dir.join(".lock")).unwrap();
    lock.lock().unwrap();
    let timeout = Duration::from_secs(1);

    for args in [
        &["started"][..],
        &["heartbeat", "--every", "1h"],
        &["--once", "success"],
        &["enable"],
        &["id"],
        &["flush"],
        &["status"],
    ] {
        let (out, elapsed) = timed(env.json(&server.url).arg("--timeout=1s").args(args));
        assert_within(elapsed, timeout, &format!("{args:?}"), &out);
        assert_ne!(out.status.code(), None, "{args:?} was killed");
    }
    // The events were sent all the same, under one ID.
    let events = server.events();
    assert_eq!(
        names(&events),
        ["Installation Started", "Instance Active", "Installation Success"]
    );
    assert!(
        events
            .iter()
            .all(|e| e["installation_id"] == events[0]["installation_id"])
    );
    drop(lock);
}

#[test]
fn fifos_in_the_state_dir_are_warned_about_and_skipped() {
    let timeout = Duration::from_secs(1);
    for name in [
        "installation_id",
        "state.json",
        "outbox.jsonl",
        "audit.jsonl",
        ".lock",
        ".delivery.lock",
    ] {
        let (server, env, dir) = setup();
        mkfifo(&dir.join(name));
        for args in [&["started"][..], &["status"], &["enable"], &["flush"], &["id"]] {
            let (out, elapsed) = timed(env.json(&server.url).arg("--timeout=1s").args(args));
            assert_within(elapsed, timeout, &format!("{name}: {args:?}"), &out);
            assert_ne!(out.status.code(), None, "{name}: {args:?} was killed");
            assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        }
        let (out, _) = timed(env.json(&server.url).arg("--timeout=1s").arg("started"));
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        if !name.ends_with(".lock") {
            assert!(
                stderr(&out).contains("not a regular file"),
                "{name}: one warning names the problem: {}",
                stderr(&out)
            );
        }
        assert_eq!(
            names(&server.events()),
            ["Installation Started", "Installation Started"],
            "{name}"
        );
        assert!(
            fs::symlink_metadata(dir.join(name)).unwrap().file_type().is_fifo(),
            "{name} is left alone"
        );
    }
}

/// The network gets the call's budget less a reserve, so calls that all time out on a silent
/// server at once still queue their events, within the bound, despite waiting on one another's lock.
#[test]
fn calls_that_time_out_together_still_queue_in_time() {
    let peer = RawPeer::start(Peer::Silent);
    let env = std::sync::Arc::new(Env::new());
    env.json(&refused_url()).arg("id").assert().success();
    let timeout = Duration::from_secs(1);
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let (env, url) = (env.clone(), peer.url.clone());
            std::thread::spawn(move || {
                timed(
                    env.json(&url)
                        .args(["--timeout=1s", "track", "T", "--prop", &format!("n={i}")]),
                )
            })
        })
        .collect();
    for call in calls {
        let (out, elapsed) = call.join().unwrap();
        assert_within(elapsed, timeout, "a timed-out call", &out);
        assert!(out.status.success());
    }
    let queued = fs::read_to_string(env.state_dir("acme").join("outbox.jsonl")).unwrap();
    assert_eq!(queued.lines().count(), 6, "every event queued: {queued}");
}

// 2. A dangling symlink at the ID path.

#[test]
fn a_dangling_symlink_at_the_id_path_is_neither_followed_nor_retried_forever() {
    let (server, env, dir) = setup();
    symlink("/nonexistent/x", dir.join("installation_id")).unwrap();
    let (out, elapsed) = timed(env.json(&server.url).args(["--timeout=1s", "started"]));
    assert_within(elapsed, Duration::from_secs(1), "started", &out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr(&out).contains("symbolic link"),
        "the warning says why: {}",
        stderr(&out)
    );
    assert_eq!(names(&server.events()), ["Installation Started"]);

    let (out, elapsed) = timed(env.json(&server.url).args(["--timeout=1s", "id"]));
    assert_within(elapsed, Duration::from_secs(1), "id", &out);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));

    // A link to a missing file in a directory that exists is not written through either.
    let target = env.home.path().join("elsewhere");
    fs::create_dir(&target).unwrap();
    let link = env.home.path().join("id-link");
    symlink(target.join("id"), &link).unwrap();
    let id_file = link.to_str().unwrap();
    let (out, _) = timed(env.json(&server.url).args(["--id-file", id_file, "started"]));
    assert!(out.status.success(), "{out:?}");
    let (out, _) = timed(env.json(&server.url).args(["--id-file", id_file, "id"]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!target.join("id").exists(), "nothing written through the link");
}

// 3. Symlinks and other people's directories.

#[test]
fn symlinked_lock_and_state_files_are_not_followed() {
    let (server, env, dir) = setup();
    let victim = env.home.path().join("victim");
    fs::create_dir(&victim).unwrap();
    for name in [".lock", ".delivery.lock", "state.json", "outbox.jsonl", "audit.jsonl"] {
        symlink(victim.join(name), dir.join(name)).unwrap();
    }
    env.json(&server.url).arg("started").assert().success();
    env.json(&refused_url()).arg("success").assert().success();
    env.json(&server.url).arg("enable").output().unwrap();
    env.json(&server.url)
        .args(["--min-interval", "1h", "track", "X"])
        .assert()
        .success();
    env.json(&server.url).arg("flush").output().unwrap();
    assert!(
        listing(&victim).is_empty(),
        "written through a link: {:?}",
        listing(&victim)
    );
    assert_eq!(names(&server.events()), ["Installation Started", "X"]);
}

/// Sends `started` with `--state-dir state_dir`, asserts exit 0, and returns what it printed.
fn started_in(env: &Env, url: &str, state_dir: &str) -> String {
    let out = env
        .json(url)
        .args(["--state-dir", state_dir, "started"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    stderr(&out)
}

/// A state directory another user can write to (or swap) is not used: the event is still sent,
/// with a one-time ID, one warning says why, and nothing is created there or through its links.
#[test]
fn a_state_dir_others_can_write_is_not_used() {
    let server = Server::start();
    let env = Env::new();
    let victim = env.home.path().join("victim");
    fs::create_dir(&victim).unwrap();

    let world_writable = env.home.path().join("shared");
    fs::create_dir(&world_writable).unwrap();
    fs::set_permissions(&world_writable, fs::Permissions::from_mode(0o1777)).unwrap();
    let real = env.home.path().join("real");
    fs::create_dir(&real).unwrap();
    let symlinked = env.home.path().join("link");
    symlink(&real, &symlinked).unwrap();

    for (dir, why) in [(&world_writable, "writable by"), (&symlinked, "symbolic link")] {
        for name in [".lock", "installation_id", "state.json"] {
            let _ = symlink(victim.join(name), real.join(name));
            let _ = symlink(victim.join(name), world_writable.join(name));
        }
        let before = listing(dir);
        let state_dir = dir.to_str().unwrap();
        let err = started_in(&env, &server.url, state_dir);
        assert_eq!(err.matches(state_dir).count(), 1, "one warning: {err}");
        assert!(err.contains(why), "{err}");
        assert_eq!(listing(dir), before);
        assert!(listing(&victim).is_empty(), "{:?}", listing(&victim));
        let status = stdout(
            &env.json(&server.url)
                .args(["--state-dir", state_dir, "status"])
                .output()
                .unwrap(),
        );
        assert!(status.contains("not used"), "{status}");

        // An explicit --id-file still works.
        let id_file = env.home.path().join(format!("id-{}", why.len()));
        env.json(&server.url)
            .args([
                "--state-dir",
                state_dir,
                "--id-file",
                id_file.to_str().unwrap(),
                "started",
            ])
            .assert()
            .success();
        let id = fs::read_to_string(&id_file).unwrap();
        assert_eq!(fs::metadata(&id_file).unwrap().mode() & 0o777, 0o644);
        assert_eq!(
            server.events().last().unwrap()["installation_id"].as_str(),
            Some(id.trim())
        );
    }
    assert_eq!(server.events().len(), 4);
}

/// `--state-dir /tmp/shared/acme` where another user made `/tmp/shared` a link to a directory of
/// root's: root must not create its state there (needs root to give the link to another user).
#[test]
fn a_parent_link_planted_by_another_user_is_not_followed() {
    if !fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        tools::cannot_run("needs root to give a symbolic link to another user");
        return;
    }
    let server = Server::start();
    let env = Env::new();
    let victim = env.home.path().join("victim");
    fs::create_dir(&victim).unwrap();
    let sticky = env.home.path().join("tmp");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = sticky.join("shared");
    symlink(&victim, &planted).unwrap();
    std::os::unix::fs::lchown(&planted, Some(65534), Some(65534)).unwrap();

    let err = started_in(&env, &server.url, planted.join("acme").to_str().unwrap());
    assert!(err.contains("is a symbolic link owned by uid 65534"), "{err}");
    assert!(listing(&victim).is_empty(), "{:?}", listing(&victim));
    assert_eq!(server.events().len(), 1, "the event is still sent");
}

#[test]
fn root_does_not_use_a_state_dir_owned_by_another_user() {
    if !fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        tools::cannot_run("needs root to give a directory to another user");
        return;
    }
    let server = Server::start();
    let env = Env::new();
    // The other user must reach the directory through the temp home.
    fs::set_permissions(env.home.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let victim = env.home.path().join("root-only");
    fs::create_dir(&victim).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o700)).unwrap();
    // Another user's directory with links planted where root would write.
    let shared = env.home.path().join("shared");
    fs::create_dir(&shared).unwrap();
    for name in [".lock", "installation_id", "state.json", "outbox.jsonl"] {
        symlink(victim.join(name), shared.join(name)).unwrap();
        std::os::unix::fs::lchown(shared.join(name), Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::chown(&shared, Some(65534), Some(65534)).unwrap();
    let state_dir = shared.to_str().unwrap();
    for args in [&["started"][..], &["--once", "success"], &["enable"], &["id"]] {
        let out = env
            .json(&refused_url())
            .args(["--timeout=500ms", "--state-dir", state_dir])
            .args(args)
            .output()
            .unwrap();
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    let err = started_in(&env, &server.url, state_dir);
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert_eq!(err.matches("warning:").count(), 1, "one warning: {err}");
    assert!(
        listing(&victim).is_empty(),
        "root wrote through links: {:?}",
        listing(&victim)
    );
    assert_eq!(names(&server.events()), ["Installation Started"]);

    // The same directory is fine for its owner.
    let owner = StdCommand::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_install-beacon"))
        .args(["--product", "acme", "--protocol", "json", "--endpoint", &server.url])
        .args(["--state-dir", state_dir, "status"])
        .env_clear()
        .env("HOME", "/nonexistent")
        .output()
        .expect("setpriv runs");
    assert!(owner.status.success(), "{owner:?}");
    assert!(
        stdout(&owner).contains(&format!("state dir:  {state_dir}\n")),
        "{owner:?}"
    );
}

// 4. The user's opt-out always wins.

#[test]
fn every_opt_out_beats_every_opt_in() {
    let server = Server::start();
    let env = Env::new();
    let exe = env.home.path().join("acme-donottrack");
    fs::copy(env!("CARGO_BIN_EXE_install-beacon"), &exe).unwrap();
    let policy = env.home.path().join("policy");
    fs::write(&policy, "telemetry=off\n").unwrap();

    /// What it is called, flags, environment variables.
    type OptIn<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let opt_ins: [OptIn; 3] = [
        ("--telemetry on", &["--telemetry", "on"], &[]),
        ("--telemetry=opt-in", &["--telemetry=opt-in"], &[]),
        ("INSTALL_BEACON_TELEMETRY", &[], &[("INSTALL_BEACON_TELEMETRY", "yes")]),
    ];
    enum OptOut {
        Var(&'static str, &'static str),
        Saved,
        Policy,
        Renamed,
    }
    use OptOut::*;
    let opt_outs = [
        Var("DO_NOT_TRACK", "1"),
        Var("ACME_DISABLE_TELEMETRY", "true"),
        Var("ACME_TELEMETRY_DISABLE", "1"),
        Var("ACME_TELEMETRY_DISABLED", "yes"),
        Saved,
        Policy,
        Renamed,
    ];
    for opt_out in &opt_outs {
        let source = match opt_out {
            Var(name, _) => format!("environment variable {name}"),
            Saved => "saved choice".into(),
            Policy => format!("policy file {}", policy.display()),
            Renamed => "executable name".into(),
        };
        for (opt_in, flags, opt_in_env) in opt_ins {
            let env = Env::new();
            let call = |args: &[&str], with_opt_in: bool| {
                let mut cmd = if matches!(opt_out, Renamed) {
                    env.bin(&exe)
                } else {
                    env.bare()
                };
                cmd.args(["--product", "acme", "--protocol", "json", "--endpoint", &server.url]);
                match opt_out {
                    Var(name, value) => cmd.env(name, value),
                    Policy => cmd.env("INSTALL_BEACON_POLICY_FILE", &policy),
                    Saved | Renamed => &mut cmd,
                };
                if with_opt_in {
                    cmd.args(flags).envs(opt_in_env.iter().copied());
                }
                cmd.args(args);
                cmd
            };
            if matches!(opt_out, Saved) {
                call(&["disable"], false).assert().success();
            }
            call(&["started"], true).assert().success();
            let status = stdout(&call(&["status"], true).output().unwrap());
            assert!(
                status.starts_with(&format!("telemetry:  disabled\ndecided by: {source}")),
                "{source} against {opt_in}:\n{status}"
            );
        }
    }
    assert_eq!(server.events(), Vec::<Value>::new(), "an opt-out was overridden");

    // An opt-in still beats the default and a saved choice of nothing.
    env.json(&server.url)
        .args(["--default-consent", "disabled", "--telemetry", "on", "started"])
        .assert()
        .success();
    assert_eq!(names(&server.events()), ["Installation Started"]);
}

/// An opt-out variable whose value is not valid UTF-8 is set all the same.
#[test]
fn an_opt_out_variable_that_is_not_utf8_still_opts_out() {
    use std::os::unix::ffi::OsStrExt;
    let server = Server::start();
    let env = Env::new();
    let value = std::ffi::OsStr::from_bytes(b"\xff");
    env.json(&server.url)
        .env("DO_NOT_TRACK", value)
        .arg("started")
        .assert()
        .success();
    let status = stdout(
        &env.json(&server.url)
            .env("DO_NOT_TRACK", value)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert!(
        status.starts_with("telemetry:  disabled\ndecided by: environment variable DO_NOT_TRACK"),
        "{status}"
    );
    assert_eq!(server.events(), Vec::<Value>::new());
}

/// INSTALL_BEACON_POLICY_FILE, which an installer can export, cannot hide the administrator's
/// /etc/install-beacon/policy (made in a private mount namespace over a copy of /etc; needs root).
#[test]
fn the_machine_policy_file_counts_whatever_installer_policy_file_is_set() {
    if !crate::support::net::namespace("-m", "mount") {
        return;
    }
    let server = Server::start();
    let env = Env::new();
    let etc = env.home.path().join("etc");
    let lenient = env.home.path().join("lenient");
    fs::write(&lenient, "telemetry=on\n").unwrap();
    let script = format!(
        "cp -a /etc/. '{etc}' && mkdir -p '{etc}/install-beacon' && echo telemetry=off > '{etc}/install-beacon/policy' \
         && mount --bind '{etc}' /etc && exec '{bin}' --product acme --protocol json --endpoint {url} started",
        etc = etc.display(),
        bin = env!("CARGO_BIN_EXE_install-beacon"),
        url = server.url
    );
    for added in ["/nonexistent/policy", &lenient.to_string_lossy()] {
        let out = StdCommand::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .env_clear()
            .env("HOME", env.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("INSTALL_BEACON_POLICY_FILE", added)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(server.events(), Vec::<Value>::new(), "the machine policy was bypassed");
}

// 5. Queued events keep their destination.

#[test]
fn queued_events_go_only_to_the_destination_they_were_queued_for() {
    let first = Server::with_plan(vec![Reply::Hang]);
    let other = Server::start();
    let env = Env::new();
    let with = |url: &str, protocol: &str, key: &str| {
        let mut cmd = env.cmd();
        cmd.args(["--protocol", protocol, "--endpoint", url, "--key", key]);
        cmd
    };
    with(&first.url, "json", "key-one")
        .args([
            "--timeout=300ms",
            "support",
            "--email",
            "ada@example.com",
            "--message",
            "help",
        ])
        .assert()
        .success();
    let outbox = env.state_dir("acme").join("outbox.jsonl");
    let queued = fs::read_to_string(&outbox).unwrap();
    assert!(!queued.contains("key-one"), "the key is not stored in clear: {queued}");

    // Another endpoint, protocol or key never gets it.
    with(&other.url, "segment", "key-two")
        .arg("heartbeat")
        .assert()
        .success();
    with(&other.url, "json", "key-one").arg("flush").assert().success();
    with(&first.url, "json", "key-two").arg("flush").assert().success();
    with(&first.url, "posthog", "key-one").arg("flush").assert().success();
    assert_eq!(names(&other.events()), ["Instance Active"]);
    assert_eq!(first.requests().len(), 1, "only the first, hung request");
    assert_eq!(fs::read_to_string(&outbox).unwrap(), queued, "still queued, unchanged");
    let status = stdout(&with(&other.url, "json", "key-one").arg("status").output().unwrap());
    assert!(
        status.contains("queued:     0 event(s), 1 for another destination"),
        "{status}"
    );

    // Its own destination does.
    with(&first.url, "json", "key-one")
        .arg("flush")
        .assert()
        .success()
        .stdout("sent 1 event(s), 0 left in the queue\n");
    let support = &first.accepted()[0];
    assert_eq!(support["event"], "Installation Support");
    assert_eq!(support["properties"]["email"], "ada@example.com");
    assert!(!outbox.exists());
}

#[test]
fn events_queued_for_another_destination_age_out_after_seven_days() {
    let server = Server::start();
    let env = Env::new();
    env.cmd()
        .args(["--protocol", "json", "--endpoint", &refused_url(), "started"])
        .assert()
        .success();
    let outbox = env.state_dir("acme").join("outbox.jsonl");
    let line: Value = serde_json::from_str(fs::read_to_string(&outbox).unwrap().trim()).unwrap();
    let mut old = line.clone();
    old["timestamp"] = "2020-01-01T00:00:00.000Z".into();
    old["message_id"] = "old".into();
    let mut recent = line;
    recent["message_id"] = "recent".into();
    fs::write(&outbox, format!("{old}\n{recent}\n")).unwrap();

    let out = env.json(&server.url).arg("success").output().unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("dropped 1 event(s) queued more than 7 days ago for another destination"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(&server.events()), ["Installation Success"]);
    let left: Vec<Value> = fs::read_to_string(&outbox)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["message_id"], "recent");
}

// 6. Server text reaches the terminal only as plain, bounded text.

#[test]
fn control_characters_from_the_server_never_reach_the_terminal() {
    let evil = "\u{1b}[2K\r\u{1b}[32m✓ Verified\u{1b}[0m run: curl x | sudo sh\u{7}\u{9b}31m\u{202e}";
    let long = "n".repeat(5000);
    let body = serde_json::json!({
        "latest_version": format!("9.9.9{evil}"),
        "notices": [format!("security notice{evil}"), long],
    })
    .to_string();
    let server = Server::with_plan(vec![Reply::Body(200, body), Reply::Body(400, format!("bad{evil}"))]);
    let env = Env::new();
    let mut all = String::new();
    for event in ["started", "success"] {
        let out = env
            .json(&server.url)
            .args(["--product-version", "1.0.0", event])
            .output()
            .unwrap();
        assert!(out.status.success());
        all.push_str(&stderr(&out));
    }
    assert!(
        !all.contains("newer version"),
        "a version that is not a version is not announced: {all}"
    );
    assert!(all.contains("security notice"), "{all}");
    assert!(all.contains("HTTP 400: bad"), "{all}");
    for c in all.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "control character {c:?} in: {all:?}"
        );
    }
    assert!(all.lines().all(|l| l.chars().count() <= 600), "unbounded line: {all}");
}

// 7. Durations and arbitrary input never panic.

#[test]
fn durations_that_cannot_be_represented_exit_2() {
    let env = Env::new();
    let huge = [
        "18446744073709551615",
        "18446744073709551615ms",
        "600000000y",
        "99999999999999999999999",
    ];
    for value in huge {
        /// Arguments, an environment variable, what the message must name.
        type Case<'a> = (Vec<&'a str>, Option<(&'a str, &'a str)>, &'a str);
        let cases: [Case; 5] = [
            (vec!["--timeout", value, "started"], None, "--timeout"),
            (vec!["--min-interval", value, "started"], None, "--min-interval"),
            (vec!["heartbeat", "--every", value], None, "--every"),
            (vec!["started"], Some(("INSTALL_BEACON_TIMEOUT", value)), "--timeout"),
            (
                vec!["started"],
                Some(("INSTALL_BEACON_PROMPT_TIMEOUT", value)),
                "INSTALL_BEACON_PROMPT_TIMEOUT",
            ),
        ];
        for (args, var, named) in cases {
            let mut cmd = env.json(&refused_url());
            cmd.arg("--dry-run").args(&args);
            if let Some((k, v)) = var {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} {var:?}: {err}");
            assert!(err.contains(named) && err.contains(value), "{args:?} {var:?}: {err}");
            assert_eq!(
                err.trim_end().lines().filter(|l| l.starts_with("error")).count(),
                1,
                "{err}"
            );
        }
    }
}

const VARS: &[&str] = &[
    "INSTALL_BEACON_PRODUCT",
    "INSTALL_BEACON_PRODUCT_VERSION",
    "INSTALL_BEACON_ENDPOINT",
    "INSTALL_BEACON_KEY",
    "INSTALL_BEACON_PROTOCOL",
    "INSTALL_BEACON_ID_FILE",
    "INSTALL_BEACON_STATE_DIR",
    "INSTALL_BEACON_TELEMETRY",
    "INSTALL_BEACON_TIMEOUT",
    "INSTALL_BEACON_STRICT",
    "INSTALL_BEACON_QUIET",
    "INSTALL_BEACON_DRY_RUN",
    "INSTALL_BEACON_DEFAULT_CONSENT",
    "INSTALL_BEACON_DEBUG",
    "INSTALL_BEACON_CONTEXT",
    "INSTALL_BEACON_PROMPT_TIMEOUT",
    "INSTALL_BEACON_POLICY_FILE",
    "DO_NOT_TRACK",
    "ACME_DISABLE_TELEMETRY",
    "HOME",
    "XDG_STATE_HOME",
];

/// Option and environment values; never an absolute path, so no case can touch files outside its
/// temp directory.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        "[0-9]{1,25}(ms|s|m|h|d|y)?",
        "[1-9][0-9]{18,24}",
        Just("on".to_owned()),
        Just("off".to_owned()),
        Just(String::new()),
        "\\PC{0,12}",
    ]
    .prop_map(|v| if v.starts_with('/') { format!(".{v}") } else { v })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary environment values and option values reach the parser and the settings through
    /// the real binary: it answers with an exit code, never a panic. Every request goes to a
    /// refused proxy, so nothing leaves the machine and nothing waits.
    #[test]
    fn arbitrary_environment_and_arguments_never_panic(
        vars in proptest::collection::vec((proptest::sample::select(VARS), value()), 0..8),
        args in proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(&["--timeout", "--min-interval", "--telemetry", "--endpoint",
                    "--state-dir", "--id-file", "--protocol", "--dry-run", "--once", "--every", "--key",
                    "--default-consent", "-q"][..]).prop_map(str::to_owned),
                value(),
            ],
            0..6,
        ),
        command in proptest::sample::select(&["started", "status", "heartbeat", "id", "flush", "consent", "shell-init"][..]),
    ) {
        let env = Env::new();
        let proxy = refused_url();
        let mut cmd = env.cmd();
        cmd.current_dir(env.home.path())
            .env("HTTPS_PROXY", &proxy)
            .env("HTTP_PROXY", &proxy)
            .env("INSTALL_BEACON_ENDPOINT", &proxy)
            .env("INSTALL_BEACON_KEY", "k")
            .env("INSTALL_BEACON_TIMEOUT", "1s")
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .arg(command)
            .args(&args)
            .timeout(KILL_AFTER);
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        prop_assert!(!err.contains("panicked"), "{vars:?} {args:?}: {err}");
        prop_assert!(matches!(out.status.code(), Some(0..=2)), "{vars:?} {args:?}: {:?} {err}", out.status);
    }
}

// 8. Credentials in the endpoint, and a relative HOME.

#[test]
fn credentials_in_the_endpoint_url_are_masked_everywhere() {
    let env = Env::new();
    let refused = refused_url();
    let endpoint = refused.replace("http://", "http://ada:s3cr3tpassw0rd@");
    let mut seen = everything_shown(
        &env,
        &endpoint,
        &[
            &["status"],
            &["started"],
            &["--dry-run", "started"],
            &["success"],
            &["flush"],
            &["log"],
        ],
    );
    seen.push_str(&stored(&env));
    assert!(!seen.contains("s3cr3t"), "{seen}");
    assert!(seen.contains(&refused.replace("http://", "http://ada:****@")), "{seen}");
    assert!(
        seen.contains("\"outcome\":\"queued\""),
        "the audit log was read: {seen}"
    );
}

/// Every file in the state directory (outbox, audit log, state.json), as text.
fn stored(env: &Env) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(env.state_dir("acme")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

/// stdout and stderr of each call to `endpoint`, every call with `INSTALL_BEACON_DEBUG` on (the
/// debug print shows the request as sent).
fn everything_shown(env: &Env, endpoint: &str, calls: &[&[&str]]) -> String {
    let mut seen = String::new();
    for args in calls {
        let out = env
            .json(endpoint)
            .env("INSTALL_BEACON_DEBUG", "1")
            .args(*args)
            .output()
            .unwrap();
        seen.push_str(&stdout(&out));
        seen.push_str(&stderr(&out));
    }
    seen
}

#[test]
fn secrets_in_the_endpoint_query_are_masked_everywhere_and_never_stored() {
    let env = Env::new();
    let refused = refused_url();
    let endpoint = format!("{refused}/in?token=s3cr3tt0ken&v");
    let mut seen = everything_shown(
        &env,
        &endpoint,
        &[
            &["status"],
            &["started"],
            &["--dry-run", "started"],
            &["success"],
            &["status"],
            &["flush"],
        ],
    );
    seen.push_str(&stored(&env));
    assert!(!seen.contains("s3cr3t"), "{seen}");
    assert!(seen.contains(&format!("{refused}/in?token=****&****")), "{seen}");
    assert!(
        seen.contains("queued:     2"),
        "status counts the events queued for it: {seen}"
    );
}

#[test]
fn a_relative_home_never_puts_the_state_dir_under_the_working_directory() {
    let env = Env::new();
    let cwd = tempfile::tempdir().unwrap();
    for home in ["relative/home", ".", "~"] {
        let out = env
            .cmd()
            .current_dir(cwd.path())
            .env("HOME", home)
            .args(["--protocol", "json", "--endpoint", &refused_url(), "status"])
            .output()
            .unwrap();
        let status = stdout(&out);
        let dir = status
            .lines()
            .find_map(|l| l.strip_prefix("state dir:  "))
            .expect("a state dir row");
        assert!(dir == "(none)" || Path::new(dir).is_absolute(), "HOME={home}: {status}");
        let out = env
            .cmd()
            .current_dir(cwd.path())
            .env("HOME", home)
            .args(["id", "--path"])
            .output()
            .unwrap();
        let path = PathBuf::from(stdout(&out).trim());
        assert!(!out.status.success() || path.is_absolute(), "HOME={home}: {path:?}");
    }
    assert!(listing(cwd.path()).is_empty());
}

/// The `--background` child closes every descriptor it inherited above 2: a pipe the installer
/// handed down (`3>&1` into `| cat`) reaches end-of-file when the caller returns, not when the
/// child's delivery gives up 20 s later; the event still goes out from the child.
#[test]
fn the_background_child_keeps_no_inherited_descriptor_open() {
    let env = Env::new();
    let silent = RawPeer::start(Peer::Silent);
    let script = r#"( "$BIN" --product acme --protocol json --endpoint "$URL" --timeout 20s started --background 3>&1 >/dev/null ) | cat; echo piped"#;
    let started = Instant::now();
    let out = env
        .bin(Path::new("sh"))
        .args(["-c", script])
        .env("BIN", env!("CARGO_BIN_EXE_install-beacon"))
        .env("URL", &silent.url)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(stdout(&out), "piped\n", "{out:?}");
    assert!(took < Duration::from_secs(10), "the pipe stayed open for {took:?}");
    // The child is still at work: it connected and waits for the silent endpoint.
    let deadline = Instant::now() + Duration::from_secs(5);
    while silent.connections() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(silent.connections(), 1);
}

/// `error --message` (and `support --message`) is free text from the installer: an address in it,
/// however wrapped, and a URL's password are masked before it is sent or written to the audit log;
/// bytes that are not UTF-8 are sent as U+FFFD instead of failing the report.
#[test]
fn messages_lose_addresses_and_url_passwords_and_non_utf8_is_sent_lossily() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let server = Server::start();
    let env = Env::new();
    let mut message = b"fetch https://deploy:s3cr3t@dl.example.com/a.tgz failed; mail mailto:ada@example.com or <bob@example.org>; caf\xe9".to_vec();
    message.extend_from_slice(b" done");
    env.json(&server.url)
        .args(["error", "--step", "download", "--message"])
        .arg(OsStr::from_bytes(&message))
        .assert()
        .success();
    let want =
        "fetch https://deploy:***@dl.example.com/a.tgz failed; mail mailto:***@*** or <***@***>; caf\u{fffd} done";
    assert_eq!(server.events()[0]["properties"]["message"], want);
    let audit = fs::read_to_string(env.state_dir("acme").join("audit.jsonl")).unwrap();
    for secret in ["s3cr3t", "ada@", "bob@"] {
        assert!(!audit.contains(secret), "{secret} in the audit log: {audit}");
    }
    assert!(audit.contains("deploy:***@dl.example.com"), "{audit}");
}
