//! The example installers in scripts/ run for real (sh = dash here) against a 127.0.0.1 server.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{Env, Server, stderr, stdout};
use serde_json::Value;

fn script(name: &str) -> String {
    format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs a script with sh in a clean environment pointed at the server.
fn sh(env: &Env, server: &Server, args: &[&str]) -> Output {
    Command::new("sh")
        .args(args)
        .env_clear()
        .env("HOME", env.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("INSTALL_BEACON_BIN", env!("CARGO_BIN_EXE_install-beacon"))
        .env("INSTALL_BEACON_PROTOCOL", "json")
        .env("INSTALL_BEACON_ENDPOINT", &server.url)
        .env("TMPDIR", env.home.path())
        .output()
        .expect("run sh")
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event"].as_str().unwrap_or_default()).collect()
}

#[test]
fn install_sh_reports_started_then_success_with_the_id_the_product_reads() {
    let server = Server::start();
    let env = Env::new();
    let prefix = env.home.path().join("opt/demo");
    let out = sh(
        &env,
        &server,
        &[&script("install.sh"), "--prefix", &prefix.to_string_lossy()],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let events = server.events();
    assert_eq!(
        names(&events),
        ["Installation Started", "Installation Success"],
        "{err}"
    );

    let id = fs::read_to_string(prefix.join("etc/demo/installation_id")).unwrap();
    for e in &events {
        assert_eq!(e["installation_id"].as_str(), Some(id.trim()));
        assert_eq!(e["properties"]["product_version"], "1.4.0");
    }
    let product = Command::new(prefix.join("bin/demo")).output().unwrap();
    assert_eq!(stdout(&product), format!("demo 1.4.0, installation {}\n", id.trim()));
    let steps = events[1]["properties"]["step_durations_ms"].as_object().unwrap();
    let mut keys: Vec<&str> = steps.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "configure",
            "download",
            "identity",
            "preflight",
            "selftest",
            "unpack",
            "verify"
        ]
    );
    assert!(prefix.join("etc/demo/demo.conf").exists());
    assert!(err.contains("==> Unpacking into the prefix: done in "), "{err}");
}

#[test]
fn install_sh_fail_at_reports_that_step_once_and_exits_non_zero() {
    let server = Server::start();
    let env = Env::new();
    let prefix = env.home.path().join("opt/demo");
    let out = sh(
        &env,
        &server,
        &[
            &script("install.sh"),
            "--prefix",
            &prefix.to_string_lossy(),
            "--fail-at",
            "unpack",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("    demo: simulated failure in step unpack"), "{err}");
    assert!(err.contains("not asking for a support contact"), "{err}");
    let events = server.events();
    assert_eq!(names(&events), ["Installation Started", "Installation Error"], "{err}");
    assert_eq!(events[1]["properties"]["step"], "unpack");
    assert_eq!(events[1]["properties"]["exit_code"], 3);
    assert!(!prefix.join("bin/demo").exists());
}

#[test]
fn install_sh_works_without_install_beacon() {
    let env = Env::new();
    let prefix = env.home.path().join("p");
    let out = Command::new("sh")
        .arg(script("install.sh"))
        .args(["--prefix", &prefix.to_string_lossy()])
        .env_clear()
        .env("HOME", env.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("INSTALL_BEACON_BIN", "/nonexistent/install-beacon")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(Path::new(&prefix.join("bin/demo")).exists());
    assert_eq!(
        fs::read_to_string(prefix.join("etc/demo/installation_id"))
            .unwrap()
            .trim()
            .len(),
        36
    );
}

/// Each start is a new container: a fresh HOME, only the state dir (the volume) carried over.
#[test]
fn docker_entrypoint_reports_once_across_container_starts_and_execs_the_command() {
    let server = Server::start();
    let volume = Env::new();
    let state_dir = volume.home.path().join("var/lib/acme");
    for start in 0..2 {
        let container = Env::new();
        let out = Command::new("sh")
            .args([&script("docker-entrypoint.sh"), "sh", "-c", "echo serving; exit 4"])
            .env_clear()
            .env("HOME", container.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("INSTALL_BEACON_BIN", env!("CARGO_BIN_EXE_install-beacon"))
            .env("INSTALL_BEACON_PRODUCT", "acme")
            .env("INSTALL_BEACON_PROTOCOL", "json")
            .env("INSTALL_BEACON_ENDPOINT", &server.url)
            .env("INSTALL_BEACON_STATE_DIR", &state_dir)
            .output()
            .expect("run sh");
        assert_eq!(out.status.code(), Some(4), "start {start}: the command's own exit code");
        assert_eq!(stdout(&out), "serving\n");
    }
    let events = server.events();
    assert_eq!(names(&events), ["Installation Success", "Instance Active"]);
    assert_eq!(events[0]["installation_id"], events[1]["installation_id"]);
    assert_eq!(events[0]["properties"]["product"], "acme");
    for e in &events {
        assert_eq!(e["properties"]["install_method"], "docker", "{e}");
    }
    assert!(state_dir.join("installation_id").exists());
}
