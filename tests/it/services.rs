//! Docker entrypoints and services: `--once`, `--min-interval`, `heartbeat --every`, and
//! `id --format env`, through the real binary against a 127.0.0.1 server.

use std::fs;

use crate::support::{Env, Reply, Server, stderr};

fn names(server: &Server) -> Vec<String> {
    server
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn once_sends_an_event_once_per_installation_id() {
    let server = Server::start();
    let env = Env::new();
    for _ in 0..3 {
        env.json(&server.url).args(["--once", "success"]).assert().success();
    }
    env.json(&server.url).args(["--once", "started"]).assert().success();
    assert_eq!(names(&server), ["Installation Success", "Installation Started"]);

    // A new installation ID (a fresh install) reports again.
    env.json(&server.url).args(["id", "--reset"]).assert().success();
    env.json(&server.url).args(["--once", "success"]).assert().success();
    assert_eq!(names(&server).len(), 3);
}

#[test]
fn once_is_marked_only_after_the_event_went_out() {
    let server = Server::with_plan(vec![Reply::Status(503)]);
    let env = Env::new();
    env.json(&server.url).args(["--once", "started"]).assert().success();
    env.json(&server.url).args(["--once", "started"]).assert().success();
    env.json(&server.url).args(["--once", "started"]).assert().success();
    assert_eq!(server.requests().len(), 2, "the failed send is not counted as sent");
    // Neither a dry run nor a disabled beacon marks anything.
    let other = Env::new();
    other
        .json(&server.url)
        .args(["--once", "--dry-run", "success"])
        .assert()
        .success();
    other
        .json(&server.url)
        .env("DO_NOT_TRACK", "1")
        .args(["--once", "success"])
        .assert()
        .success();
    other.json(&server.url).args(["--once", "success"]).assert().success();
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn min_interval_throttles_per_event_name() {
    let server = Server::start();
    let env = Env::new();
    for _ in 0..2 {
        env.json(&server.url)
            .args(["--min-interval", "12h", "track", "CLI Used"])
            .assert()
            .success();
    }
    env.json(&server.url)
        .args(["--min-interval", "12h", "track", "Build Done"])
        .assert()
        .success();
    // Without the flag nothing is throttled.
    env.json(&server.url).args(["track", "CLI Used"]).assert().success();
    assert_eq!(names(&server), ["CLI Used", "Build Done", "CLI Used"]);
    // A zero interval is always due.
    env.json(&server.url)
        .args(["--min-interval", "0s", "track", "CLI Used"])
        .assert()
        .success();
    assert_eq!(names(&server).len(), 4);
}

#[test]
fn heartbeat_sends_instance_active_and_every_throttles_it() {
    let server = Server::start();
    let env = Env::new();
    env.json(&server.url).arg("heartbeat").assert().success();
    env.json(&server.url).arg("heartbeat").assert().success();
    env.json(&server.url)
        .args(["heartbeat", "--every", "6h"])
        .assert()
        .success();
    env.json(&server.url)
        .args(["heartbeat", "--every", "6h"])
        .assert()
        .success();
    let events = server.events();
    assert_eq!(events.len(), 3);
    let id = fs::read_to_string(env.id_file("acme")).unwrap();
    for e in &events {
        assert_eq!(e["event"], "Instance Active");
        assert_eq!(e["installation_id"].as_str(), Some(id.trim()));
    }
    // Told why under INSTALL_BEACON_DEBUG.
    let out = env
        .json(&server.url)
        .env("INSTALL_BEACON_DEBUG", "1")
        .args(["heartbeat", "--every", "6h"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("'Instance Active' sent less than 6h ago: nothing is sent"),
        "{err}"
    );
    assert_eq!(server.events().len(), 3);
}

#[test]
fn id_format_env_prints_a_docker_env_line() {
    let env = Env::new();
    let out = env
        .bare()
        .args(["--product", "acme-db.io", "id", "--format", "env"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let id = fs::read_to_string(env.id_file("acme-db.io")).unwrap();
    assert_eq!(line, format!("ACME_DB_IO_INSTALLATION_ID={}", id));
    env.bare()
        .args(["--product", "acme-db.io", "id", "--format", "plain"])
        .assert()
        .stdout(id);
}
