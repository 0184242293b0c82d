//! `scripts/fetch-beacon.sh` sourced by real shells (sh, dash, bash, zsh) under `set -eu`, against a
//! loopback server that hosts a release directory and receives events: a good asset is verified,
//! unpacked and run; a tampered one is never executed; a 404, a dead server or an unknown platform
//! leave no-op hooks, report one `Installation Error` (step `beacon-download`) unless opted out, and
//! the installer goes on with exit 0.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{Env, Peer, RawPeer, Server, shells, tools};
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

    fn real() -> Release {
        Release::with(Path::new(env!("CARGO_BIN_EXE_install-beacon")))
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
        }
    }

    /// A run against `server` as both the release host and the receiver (at `/events`).
    fn hosted(shell: &'a str, env: &'a Env, server: &Server, sums: &str) -> Run<'a> {
        Run::new(shell, env, &server.url, sums, &format!("{}/events", server.url))
    }

    fn output(&self) -> Output {
        let script = format!(
            r#"set -eu
BEACON_BASE_URL=$BASE BEACON_VERSION=$VERSION BEACON_SHA256SUMS=$SUMS BEACON_DIR=$HOME/beacon
. "$SNIPPET"
beacon_fetch {args}
echo "BEACON=[$BEACON]"
beacon_started
beacon_run unpack --label Unpacking -- echo step-ran
beacon_step configure
${{FAIL_AT_CONFIGURE:+false}}
beacon_success
echo installer-done
"#,
            args = self.fetch_args
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

/// The one `Installation Error` the snippet reports, with its fixed properties checked.
fn download_error(shell: &str, server: &Server) -> Value {
    let events = server.events();
    assert_eq!(events.len(), 1, "{shell}: expected exactly one event, got {events:?}");
    let event = &events[0];
    assert_eq!(event["event"], "Installation Error", "{shell}");
    let props = &event["properties"];
    assert_eq!(props["step"], "beacon-download", "{shell}");
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
        assert_eq!(
            fs::read(&beacon).unwrap(),
            fs::read(env!("CARGO_BIN_EXE_install-beacon")).unwrap(),
            "{shell}: the unpacked binary is the released one"
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
    // With a good asset, the real binary honours DO_NOT_TRACK itself.
    let env = Env::new();
    let server = Server::serving(release.dir.path());
    let mut run = Run::hosted("sh", &env, &server, &release.sums);
    run.extra_env.push(("DO_NOT_TRACK", "1".into()));
    assert_ne!(installer_finished("sh", &run.output()), "");
    assert_eq!(server.requests().len(), 0);
}

#[test]
fn an_unknown_platform_and_the_segment_and_posthog_reports() {
    let release = Release::real();
    let fake = tempfile::tempdir().unwrap();
    fs::write(
        fake.path().join("uname"),
        "#!/bin/sh\ncase $1 in -s) echo SunOS ;; -m) echo sparc64 ;; *) echo SunOS ;; esac\n",
    )
    .unwrap();
    fs::set_permissions(
        fake.path().join("uname"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
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
        assert_eq!(event["event"], "Installation Error");
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
        assert_eq!(req.events()[0]["properties"]["step"], "beacon-download");
    }
}

/// The release `scripts/release.sh` made (CI points `BEACON_DIST` at its `dist/`): the signature of
/// its SHA256SUMS verifies with minisign, and the snippet fetches, verifies and runs its asset.
#[test]
fn a_release_made_by_release_sh_is_verified_fetched_and_run() {
    let Some(dist) = std::env::var_os("BEACON_DIST") else {
        tools::cannot_run("BEACON_DIST does not name the dist/ of scripts/release.sh");
        return;
    };
    if !tools::have("minisign", &["-v"], "minisign") {
        return;
    }
    let dist = Path::new(&dist);
    let verified = Command::new("minisign")
        .args(["-V", "-p"])
        .arg(dist.join("minisign.pub"))
        .arg("-m")
        .arg(dist.join("SHA256SUMS"))
        .output()
        .expect("run minisign");
    assert!(verified.status.success(), "{verified:?}");
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
