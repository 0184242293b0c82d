//! `scripts/fetch-beacon.sh` sourced by real shells (sh, dash, bash, zsh) under `set -eu`, against a
//! loopback server that hosts a release directory and receives events: a good asset is verified,
//! unpacked and run; a tampered one is never executed; a 404, a dead server or an unknown platform
//! leave no-op hooks, report one `Beacon Unavailable` unless opted out, and the installer goes on
//! with exit 0. An opt-out downloads nothing; the download goes into a private directory, is capped
//! at 16 MiB and is gone when the installer exits.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{Env, Peer, RawPeer, Server, release_dist, shells, target};
use serde_json::Value;

const VERSION: &str = "9.9.9";

/// The release target `fetch-beacon.sh` picks on this machine.
fn this_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// A release directory as `scripts/release.sh` lays it out, holding `binary` as this machine's
/// asset, and the `SHA256SUMS` text to pin.
struct Release {
    dir: tempfile::TempDir,
    sums: String,
}

impl Release {
    fn with(binary: &Path) -> Release {
        let dir = tempfile::tempdir().unwrap();
        let stage = tempfile::tempdir().unwrap();
        fs::copy(binary, stage.path().join("install-beacon")).unwrap();
        let asset = format!("install-beacon-{VERSION}-{}.tar.gz", this_target());
        let tar = Command::new("tar")
            .arg("-czf")
            .arg(dir.path().join(&asset))
            .arg("-C")
            .arg(stage.path())
            .arg("install-beacon")
            .status()
            .unwrap();
        assert!(tar.success());
        let sums = sha256_line(&dir.path().join(&asset), &asset);
        fs::write(dir.path().join("SHA256SUMS"), &sums).unwrap();
        Release { dir, sums }
    }

    /// The binary under test, stripped as a release's is: the debug info of a debug build alone
    /// would take its archive past the snippet's 16 MiB cap. A release binary (`BEACON_TARGET`) is
    /// packed as it is, under emulation as its qemu wrapper, which the snippet can execute where
    /// the foreign binary itself would need binfmt_misc.
    fn real() -> Release {
        let debug_build = Path::new(env!("CARGO_BIN_EXE_install-beacon"));
        if target::beacon() != debug_build {
            return Release::with(target::beacon());
        }
        let stage = tempfile::tempdir().unwrap();
        let binary = stage.path().join("install-beacon");
        fs::copy(debug_build, &binary).unwrap();
        let stripped = Command::new("strip").arg(&binary).status();
        assert!(stripped.is_ok_and(|s| s.success()), "strip (binutils) failed");
        Release::with(&binary)
    }
}

fn sha256_line(file: &Path, name: &str) -> String {
    let out = Command::new("sha256sum").arg(file).output().expect("sha256sum");
    let text = String::from_utf8(out.stdout).unwrap();
    format!("{}  {name}\n", text.split_whitespace().next().unwrap())
}

/// One installer run: the snippet, then hooks, then a marker line.
struct Run<'a> {
    shell: &'a str,
    env: &'a Env,
    base_url: String,
    sums: String,
    fetch_args: String,
    extra_env: Vec<(&'a str, String)>,
    path: Option<String>,
    version: String,
    /// How the script sets BEACON_DIR (or not).
    dir_line: String,
}

impl<'a> Run<'a> {
    fn new(shell: &'a str, env: &'a Env, base_url: &str, sums: &str, events_url: &str) -> Run<'a> {
        Run {
            shell,
            env,
            base_url: base_url.to_owned(),
            sums: sums.to_owned(),
            fetch_args: format!("--product acme --product-version 1.2.3 --protocol json --endpoint {events_url}"),
            extra_env: Vec::new(),
            path: None,
            version: VERSION.to_owned(),
            dir_line: "BEACON_DIR=$HOME/beacon".to_owned(),
        }
    }

    /// A run against `server` as both the release host and the receiver (at `/events`).
    fn hosted(shell: &'a str, env: &'a Env, server: &Server, sums: &str) -> Run<'a> {
        Run::new(shell, env, &server.url, sums, &format!("{}/events", server.url))
    }

    fn output(&self) -> Output {
        let script = format!(
            r#"set -eu
BEACON_BASE_URL=$BASE BEACON_VERSION=$VERSION BEACON_SHA256SUMS=$SUMS {dir}
. "$SNIPPET"
beacon_fetch {args}
echo "BEACON=[$BEACON]"
[ -z "$BEACON" ] || echo "version=$("$BEACON" --version | cut -d' ' -f2) dir=$(ls -ldn "${{BEACON%/*}}" | cut -d' ' -f1)"
beacon_started
beacon_run unpack --label Unpacking -- echo step-ran
beacon_step configure
${{FAIL_AT_CONFIGURE:+false}}
beacon_success
echo installer-done
"#,
            args = self.fetch_args,
            dir = self.dir_line
        );
        let snippet = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-beacon.sh");
        let mut cmd = Command::new(self.shell);
        cmd.args(["-c", &script])
            .env_clear()
            .env("HOME", self.env.home.path())
            .env(
                "PATH",
                self.path
                    .clone()
                    .unwrap_or_else(|| std::env::var("PATH").unwrap_or_default()),
            )
            .env("SNIPPET", snippet)
            .env("BASE", &self.base_url)
            .env("SUMS", &self.sums)
            .env("VERSION", &self.version)
            .env("INSTALL_BEACON_POLICY_FILE", self.env.home.path().join("no-policy"));
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.output().expect("run shell")
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the installer ran to its end with exit 0 and the steps ran; returns `BEACON`.
fn installer_finished(shell: &str, out: &Output) -> String {
    let text = stdout(out);
    assert!(
        out.status.success() && text.contains("step-ran\n") && text.ends_with("installer-done\n"),
        "{shell}: the installer did not finish: {out:?}"
    );
    let line = text.lines().find(|l| l.starts_with("BEACON=[")).unwrap();
    line["BEACON=[".len()..line.len() - 1].to_owned()
}

/// A directory holding a fake `name` (a sh script running `body`), and a PATH that finds it first.
fn faked(name: &str, body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join(name);
    fs::write(&tool, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    (dir, path)
}

/// The one `Beacon Unavailable` the snippet reports, with its fixed properties checked.
fn download_error(shell: &str, server: &Server) -> Value {
    let events = server.events();
    assert_eq!(events.len(), 1, "{shell}: expected exactly one event, got {events:?}");
    let event = &events[0];
    assert_eq!(event["event"], beacon_wire::event::BEACON_UNAVAILABLE, "{shell}");
    let props = &event["properties"];
    assert_eq!(props.get("step"), None, "{shell}: not a step of the installation");
    assert_eq!(props["product"], "acme", "{shell}");
    assert_eq!(props["product_version"], "1.2.3", "{shell}");
    assert_eq!(props["beacon_version"], VERSION, "{shell}");
    assert_eq!(props["os"], "linux", "{shell}");
    assert_eq!(props["arch"], std::env::consts::ARCH, "{shell}");
    assert_eq!(event["installation_id"].as_str().map(str::len), Some(36), "{shell}");
    event.clone()
}

#[test]
fn a_good_asset_is_verified_unpacked_and_its_hooks_report() {
    let release = Release::real();
    for shell in shells() {
        let env = Env::new();
        let server = Server::serving(release.dir.path());
        let run = Run::hosted(shell, &env, &server, &release.sums);
        let out = run.output();
        let beacon = installer_finished(shell, &out);
        assert_eq!(
            beacon,
            env.home.path().join("beacon/install-beacon").to_str().unwrap(),
            "{shell}"
        );
        assert!(
            stdout(&out).contains(&format!("version={} ", env!("CARGO_PKG_VERSION"))),
            "{shell}: the unpacked binary is the released one: {out:?}"
        );
        assert!(
            !env.home.path().join("beacon").exists(),
            "{shell}: the binary and its directory are removed at exit"
        );
        assert_eq!(
            server.downloads(),
            [format!("/install-beacon-{VERSION}-{}.tar.gz", this_target())],
            "{shell}"
        );
        let names: Vec<Value> = server.events().iter().map(|e| e["event"].clone()).collect();
        assert_eq!(
            names,
            ["Installation Started", "Installation Success"],
            "{shell}: {out:?}"
        );
        assert_eq!(server.events()[0]["properties"]["product_version"], "1.2.3", "{shell}");
        for event in server.events() {
            assert_eq!(event["properties"]["install_method"], "curl-sh", "{shell}: {event}");
        }
    }
}

#[test]
fn after_a_good_fetch_a_failing_installer_reports_its_step_from_the_exit_trap() {
    let release = Release::real();
    for shell in shells() {
        let env = Env::new();
        let server = Server::serving(release.dir.path());
        let mut run = Run::hosted(shell, &env, &server, &release.sums);
        run.extra_env.push(("FAIL_AT_CONFIGURE", "1".into()));
        let out = run.output();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{shell}: the installer's own failure stands: {out:?}"
        );
        let events = server.events();
        let names: Vec<&Value> = events.iter().map(|e| &e["event"]).collect();
        assert_eq!(names, ["Installation Started", "Installation Error"], "{shell}");
        assert_eq!(events[1]["properties"]["step"], "configure", "{shell}");
    }
}

#[test]
fn a_tampered_asset_is_never_executed() {
    let good = Release::real();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("executed");
    let evil = marker_dir.path().join("evil");
    fs::write(&evil, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tampered = Release::with(&evil);
    for shell in shells() {
        let env = Env::new();
        let server = Server::serving(tampered.dir.path());
        // The vendor pinned the good release's sums; the host serves something else.
        let run = Run::hosted(shell, &env, &server, &good.sums);
        let out = run.output();
        assert_eq!(installer_finished(shell, &out), "", "{shell}");
        assert!(!marker.exists(), "{shell}: the tampered binary ran");
        assert!(
            !env.home.path().join("beacon/install-beacon").exists(),
            "{shell}: it was even unpacked"
        );
        let event = download_error(shell, &server);
        assert_eq!(
            event["properties"]["message"],
            format!(
                "checksum mismatch for install-beacon-{VERSION}-{}.tar.gz",
                this_target()
            ),
            "{shell}"
        );
    }
}

#[test]
fn a_missing_asset_leaves_no_op_hooks_and_reports_why() {
    let release = Release::real();
    let empty = tempfile::tempdir().unwrap();
    for shell in shells() {
        let env = Env::new();
        let server = Server::serving(empty.path());
        let out = Run::hosted(shell, &env, &server, &release.sums).output();
        assert_eq!(installer_finished(shell, &out), "", "{shell}");
        assert_eq!(server.downloads().len(), 1, "{shell}: one try, no retry loop");
        let event = download_error(shell, &server);
        assert_eq!(
            event["properties"]["message"],
            format!("download of install-beacon-{VERSION}-{}.tar.gz failed", this_target()),
            "{shell}"
        );
        let req = &server.requests()[0];
        assert_eq!(req.url, "/events");
        assert_eq!(req.header("Content-Type"), Some("application/json"));
    }
}

#[test]
fn a_dead_release_host_costs_at_most_the_fetch_timeout() {
    let release = Release::real();
    let silent = RawPeer::start(Peer::Silent);
    for shell in shells() {
        let env = Env::new();
        let receiver = Server::start();
        let mut run = Run::new(shell, &env, &silent.url, &release.sums, &receiver.url);
        run.extra_env.push(("BEACON_FETCH_TIMEOUT", "1".into()));
        let started = Instant::now();
        let out = run.output();
        let took = started.elapsed();
        assert_eq!(installer_finished(shell, &out), "", "{shell}");
        // 1 s for the download, the report is bounded by 3 s; generous margin for a busy machine.
        assert!(took < Duration::from_secs(8), "{shell}: took {took:?}");
        download_error(shell, &receiver);
    }
    // A refused port fails at once, the same way.
    let env = Env::new();
    let receiver = Server::start();
    let out = Run::new("sh", &env, "http://127.0.0.1:9", &release.sums, &receiver.url).output();
    assert_eq!(installer_finished("sh", &out), "");
    download_error("sh", &receiver);
}

#[test]
fn opted_out_nothing_is_reported() {
    let release = Release::real();
    let empty = tempfile::tempdir().unwrap();
    for shell in shells() {
        for (name, value) in [
            ("DO_NOT_TRACK", "1"),
            ("ACME_DISABLE_TELEMETRY", "true"),
            ("INSTALL_BEACON_TELEMETRY", "off"),
        ] {
            let env = Env::new();
            let server = Server::serving(empty.path());
            let mut run = Run::hosted(shell, &env, &server, &release.sums);
            run.extra_env.push((name, value.into()));
            let out = run.output();
            assert_eq!(installer_finished(shell, &out), "", "{shell} {name}");
            assert_eq!(server.requests().len(), 0, "{shell} {name}: {:?}", server.requests());
        }
        // The saved choice of `install-beacon disable`, and opt-in defaults, count as well.
        let env = Env::new();
        fs::create_dir_all(env.state_dir("acme")).unwrap();
        fs::write(env.state_dir("acme").join("state.json"), "{\"consent\": false}").unwrap();
        let server = Server::serving(empty.path());
        let out = Run::hosted(shell, &env, &server, &release.sums).output();
        installer_finished(shell, &out);
        assert_eq!(server.requests().len(), 0, "{shell}: saved choice");
        let mut run = Run::hosted(shell, &env, &server, &release.sums);
        run.fetch_args
            .push_str(" --default-consent disabled --state-dir /nonexistent");
        installer_finished(shell, &run.output());
        assert_eq!(server.requests().len(), 0, "{shell}: opt-in default");
    }
}

/// An opt-out the shell can see means no connection at all: not even the download of the beacon.
#[test]
fn an_opt_out_downloads_nothing() {
    let release = Release::real();
    for shell in shells() {
        for (name, value) in [
            ("DO_NOT_TRACK", "1"),
            ("ACME_TELEMETRY_DISABLED", "yes"),
            ("OTEL_SDK_DISABLED", "true"),
            ("INSTALL_BEACON_TELEMETRY", "off"),
            ("INSTALL_BEACON_DEFAULT_CONSENT", "disabled"),
        ] {
            let env = Env::new();
            let server = Server::serving(release.dir.path());
            let mut run = Run::hosted(shell, &env, &server, &release.sums);
            run.extra_env.push((name, value.into()));
            assert_eq!(installer_finished(shell, &run.output()), "", "{shell} {name}");
            assert_eq!(server.downloads(), Vec::<String>::new(), "{shell} {name}");
            assert_eq!(server.requests().len(), 0, "{shell} {name}");
            assert!(!env.home.path().join("beacon").exists(), "{shell} {name}");
        }
    }
}

/// The fetched binary and its directory are gone when the installer exits, whether it succeeded or
/// failed, and with or without mktemp: nothing is left in TMPDIR. The directory was private (0700).
#[test]
fn nothing_is_left_in_tmpdir() {
    let release = Release::real();
    let (_no_mktemp, path) = faked("mktemp", "exit 1");
    for shell in shells() {
        for (fail, mktemp) in [(false, true), (true, true), (false, false)] {
            let env = Env::new();
            let tmp = tempfile::tempdir().unwrap();
            let server = Server::serving(release.dir.path());
            let mut run = Run::hosted(shell, &env, &server, &release.sums);
            run.dir_line = String::new();
            run.extra_env.push(("TMPDIR", tmp.path().display().to_string()));
            if fail {
                run.extra_env.push(("FAIL_AT_CONFIGURE", "1".into()));
            }
            if !mktemp {
                run.path = Some(path.clone());
            }
            let out = run.output();
            let case = format!("{shell}, failing: {fail}, mktemp: {mktemp}");
            assert_eq!(out.status.code(), Some(i32::from(fail)), "{case}: {out:?}");
            let text = stdout(&out);
            let beacon = text.lines().find_map(|l| l.strip_prefix("BEACON=[")).unwrap();
            let dir = Path::new(beacon.trim_end_matches(']')).parent().unwrap();
            assert_eq!(dir.parent(), Some(tmp.path()), "{case}: {text}");
            assert!(
                dir.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("install-beacon."),
                "{case}: {text}"
            );
            assert!(text.contains("dir=drwx------"), "{case}: private: {text}");
            let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
            assert!(left.is_empty(), "{case}: left in TMPDIR: {left:?}");
            let names: Vec<Value> = server.events().iter().map(|e| e["event"].clone()).collect();
            let last = if fail {
                "Installation Error"
            } else {
                "Installation Success"
            };
            assert_eq!(names, ["Installation Started", last], "{case}");
        }
    }
}

/// A BEACON_DIR that someone else could write to (mode 0777, or another user's even at 0700) is
/// refused before anything is downloaded; the installer goes on without the beacon.
#[test]
fn a_directory_someone_else_controls_is_refused() {
    let release = Release::real();
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    for shell in shells() {
        let mut cases = vec![("mode 0777", 0o777, None)];
        if root {
            cases.push(("owned by uid 1000", 0o700, Some(1000)));
        }
        for (case, mode, owner) in cases {
            let env = Env::new();
            let dir = env.home.path().join("beacon");
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&dir, owner, None).unwrap();
            let server = Server::serving(release.dir.path());
            let out = Run::hosted(shell, &env, &server, &release.sums).output();
            assert_eq!(installer_finished(shell, &out), "", "{shell}, {case}");
            assert!(server.downloads().is_empty(), "{shell}, {case}: downloaded into it");
            assert_eq!(
                download_error(shell, &server)["properties"]["message"],
                "the download directory is not a private directory of this user (mode 0700, owned by it, not a link)",
                "{shell}, {case}: the reason names no path"
            );
            assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "{shell}, {case}");
        }
    }
    if !root {
        crate::support::tools::cannot_run("not root: the case of another user's directory needs chown");
    }
}

/// A mirror that sends without end: the snippet writes 16 MiB and stops, and says so.
#[test]
fn a_download_is_capped_at_16_mib() {
    let release = Release::real();
    let endless = RawPeer::start(Peer::Endless);
    for shell in shells() {
        let env = Env::new();
        let receiver = Server::start();
        let mut run = Run::new(shell, &env, &endless.url, &release.sums, &receiver.url);
        run.extra_env.push(("BEACON_FETCH_TIMEOUT", "60".into()));
        assert_eq!(installer_finished(shell, &run.output()), "", "{shell}");
        assert_eq!(
            download_error(shell, &receiver)["properties"]["message"],
            format!(
                "download of install-beacon-{VERSION}-{}.tar.gz failed: larger than 16 MiB",
                this_target()
            ),
            "{shell}"
        );
        assert!(!env.home.path().join("beacon").exists(), "{shell}");
    }
}

/// `uname -m` picks the asset of its target; a machine without one downloads nothing. (The mapping
/// is a `case` that every shell runs alike: `sh` is enough here.)
#[test]
fn each_machine_gets_the_asset_of_its_target() {
    let targets = [
        ("x86_64", "x86_64-unknown-linux-musl"),
        ("amd64", "x86_64-unknown-linux-musl"),
        ("aarch64", "aarch64-unknown-linux-musl"),
        ("arm64", "aarch64-unknown-linux-musl"),
        ("armv7l", "armv7-unknown-linux-musleabihf"),
        ("armv8l", "armv7-unknown-linux-musleabihf"),
        ("riscv64", "riscv64gc-unknown-linux-musl"),
    ];
    // One release directory with every Linux asset (each holding this machine's binary, which the
    // fake uname does not change).
    let release = Release::real();
    let mut sums = release.sums.clone();
    for (_, target) in targets {
        let asset = format!("install-beacon-{VERSION}-{target}.tar.gz");
        let from = release
            .dir
            .path()
            .join(format!("install-beacon-{VERSION}-{}.tar.gz", this_target()));
        if !release.dir.path().join(&asset).exists() {
            fs::copy(&from, release.dir.path().join(&asset)).unwrap();
            sums.push_str(&sha256_line(&release.dir.path().join(&asset), &asset));
        }
    }
    let machines = targets
        .iter()
        .map(|(m, t)| (*m, Some(*t)))
        .chain([("armv6l", None), ("mips", None)]);
    for (machine, target) in machines {
        let (_fake, path) = faked(
            "uname",
            &format!("case $1 in -m) echo {machine} ;; *) echo Linux ;; esac"),
        );
        let env = Env::new();
        let server = Server::serving(release.dir.path());
        let mut run = Run::hosted("sh", &env, &server, &sums);
        run.path = Some(path.clone());
        let beacon = installer_finished("sh", &run.output());
        let want: Vec<String> = target
            .map(|t| format!("/install-beacon-{VERSION}-{t}.tar.gz"))
            .into_iter()
            .collect();
        assert_eq!(server.downloads(), want, "uname -m {machine}");
        assert_eq!(beacon.is_empty(), target.is_none(), "uname -m {machine}");
        if target.is_none() {
            let events = server.events();
            assert_eq!(events[0]["event"], "Beacon Unavailable");
            assert_eq!(
                events[0]["properties"]["message"],
                format!("no build for Linux/{machine}")
            );
        }
    }
}

#[test]
fn an_unknown_platform_and_the_segment_and_posthog_reports() {
    let release = Release::real();
    let (_fake, path) = faked(
        "uname",
        "case $1 in -s) echo SunOS ;; -m) echo sparc64 ;; *) echo SunOS ;; esac",
    );
    for shell in shells() {
        let env = Env::new();
        let server = Server::serving(release.dir.path());
        let mut run = Run::new(shell, &env, &server.url, &release.sums, &server.url);
        run.fetch_args = format!(
            "--product acme --product-version=1.2.3 --endpoint={}/ --key wk_abc",
            server.url
        );
        run.path = Some(path.clone());
        installer_finished(shell, &run.output());
        assert!(server.downloads().is_empty(), "{shell}: nothing to download for SunOS");
        let req = &server.requests()[0];
        assert_eq!(req.url, "/v1/batch", "{shell}");
        assert_eq!(
            req.header("Authorization"),
            Some("Basic d2tfYWJjOg=="),
            "{shell}: base64(\"wk_abc:\")"
        );
        let event = &req.events()[0];
        assert_eq!(event["type"], "track");
        assert_eq!(event["event"], "Beacon Unavailable");
        assert_eq!(event["properties"]["message"], "no build for SunOS/sparc64");
        assert_eq!(event["properties"]["os"], "sunos");
        assert_ne!(event["anonymousId"], event["messageId"]);

        let server = Server::serving(tempfile::tempdir().unwrap().path());
        let mut run = Run::new(shell, &env, &server.url, &release.sums, &server.url);
        run.fetch_args = format!(
            "--product acme --protocol posthog --endpoint {} --key phc_abc",
            server.url
        );
        installer_finished(shell, &run.output());
        let req = &server.requests()[0];
        assert_eq!(req.url, "/batch/", "{shell}");
        assert_eq!(req.json()["api_key"], "phc_abc");
        assert_eq!(req.events()[0]["properties"]["$process_person_profile"], false);
        assert_eq!(req.events()[0]["event"], "Beacon Unavailable");
    }
}

/// The release `scripts/release.sh` made (CI points `BEACON_DIST` at its `dist/`): the signature of
/// its SHA256SUMS verifies with minisign, and the snippet fetches, verifies and runs its asset.
#[test]
fn a_release_made_by_release_sh_is_verified_fetched_and_run() {
    let Some(dist) = release_dist("SHA256SUMS") else { return };
    let dist = dist.as_path();
    let sums = fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let suffix = format!("-{}.tar.gz", this_target());
    let version = sums
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .nth(1)?
                .strip_prefix("install-beacon-")?
                .strip_suffix(&suffix)
        })
        .expect("this machine's asset in SHA256SUMS")
        .to_owned();
    let env = Env::new();
    let server = Server::serving(dist);
    let mut run = Run::hosted("sh", &env, &server, &sums);
    run.version = version;
    let beacon = installer_finished("sh", &run.output());
    assert!(!beacon.is_empty(), "the released binary was not fetched");
    let names: Vec<Value> = server.events().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(names, ["Installation Started", "Installation Success"]);
}

/// `scripts/install.ps1` cannot run here (no PowerShell), so it is read for what it must do: the
/// exe it runs is unpacked from the very bytes whose SHA-256 it checked (no file in between to
/// swap), into a fresh directory with a random name and an ACL for this user only, created new and
/// held open without write sharing, the download capped at 16 MiB; never a fixed `%TEMP%` folder.
#[test]
fn install_ps1_runs_the_exe_from_the_verified_bytes_in_a_private_directory() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.ps1");
    let script = fs::read_to_string(path).unwrap();
    for must in [
        "ComputeHash($zipBytes.ToArray())",
        "ZipArchive($zipBytes,",
        "[System.Guid]::NewGuid()",
        "SetAccessRuleProtection($true, $false)",
        "[System.IO.FileMode]::CreateNew",
        "[System.IO.FileAccess]::Read, [System.IO.FileShare]::Read)",
        "-gt 16MB",
        "} finally {\n    Remove-Beacon\n}",
    ] {
        assert!(script.contains(must), "install.ps1 lacks {must:?}");
    }
    for never in [
        "Get-FileHash",
        "Expand-Archive -Path $zip",
        "\"install-beacon-$BeaconVersion\"",
    ] {
        assert!(!script.contains(never), "install.ps1 still has {never:?}");
    }
}
