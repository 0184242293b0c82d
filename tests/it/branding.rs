//! A branded build: the binary built with `BEACON_BUILD_*` set needs no flags, and flags, variables
//! and opt-outs still win over what was baked in.
//!
//! The branded binary is a debug build in its own target directory (`target/branded`), kept between
//! runs so only the first one compiles the dependencies.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::support::{Env, Server, build_beacon, stderr, stdout};

/// The endpoint baked in: a port nothing listens on, replaced by `INSTALL_BEACON_ENDPOINT` in tests
/// that need a real server (its port is only known at run time).
const BAKED_ENDPOINT: &str = "http://127.0.0.1:1";
const BAKED_KEY: &str = "zk_baked_key_123";

const BRANDING: &[(&str, &str)] = &[
    ("BEACON_BUILD_PRODUCT", "zeta"),
    ("BEACON_BUILD_ENDPOINT", BAKED_ENDPOINT),
    ("BEACON_BUILD_KEY", BAKED_KEY),
    ("BEACON_BUILD_PROTOCOL", "posthog"),
    ("BEACON_BUILD_EVENT_STARTED", "Zeta Setup Begun"),
    ("BEACON_BUILD_EVENT_SUCCESS", "Zeta Setup Done"),
    ("BEACON_BUILD_EVENT_ERROR", "Zeta Setup Failed"),
    ("BEACON_BUILD_EVENT_SUPPORT", "Zeta Help Wanted"),
    (
        "BEACON_BUILD_NOTICE",
        "{product} by Zeta Inc. counts installs, anonymously.",
    ),
    ("BEACON_BUILD_PRIVACY_URL", "https://zeta.example/privacy"),
    ("BEACON_BUILD_OPT_OUT_HINT", "run `zeta telemetry off`"),
];

/// Builds the branded binary once per test run and returns its path.
fn branded() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target_dir = root.join("target/branded");
        build_beacon(&target_dir, &[], BRANDING);
        // Installers call it under their own name.
        let dir = target_dir.join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        let beacon = dir.join("beacon");
        let tmp = dir.join(format!("beacon.{}", std::process::id()));
        std::fs::copy(target_dir.join("debug/install-beacon"), &tmp).unwrap();
        std::fs::rename(&tmp, &beacon).unwrap();
        beacon
    })
}

#[test]
fn status_shows_the_baked_defaults_without_flags() {
    let env = Env::new();
    let out = env.bin(branded()).arg("status").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("product:    zeta\n"), "{text}");
    assert!(text.contains("protocol:   posthog\n"), "{text}");
    assert!(text.contains("endpoint:   http://127.0.0.1:1/batch/\n"), "{text}");
    assert!(text.contains("key:        zk_b****\n"), "{text}");
    assert!(text.contains(".local/state/zeta"), "{text}");
}

#[test]
fn dry_run_uses_the_baked_endpoint_key_and_event_names() {
    let env = Env::new();
    for (command, event) in [
        (&["started"][..], "Zeta Setup Begun"),
        (&["success"], "Zeta Setup Done"),
        (&["error", "--step", "unpack"], "Zeta Setup Failed"),
        (&["support", "--email", "ada@example.com"], "Zeta Help Wanted"),
    ] {
        let out = env.bin(branded()).arg("--dry-run").args(command).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        assert!(text.starts_with("POST http://127.0.0.1:1/batch/\n"), "{text}");
        assert!(text.contains(&format!("\"event\": \"{event}\"")), "{text}");
        assert!(text.contains("\"api_key\": \"zk_b****\""), "{text}");
        assert!(text.contains("\"product\": \"zeta\""), "{text}");
    }
}

#[test]
fn started_needs_no_flags_and_shows_the_branded_notice() {
    let server = Server::start();
    let env = Env::new();
    let out = env
        .bin(branded())
        .env("INSTALL_BEACON_ENDPOINT", &server.url)
        .arg("started")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url, "/batch/");
    let body = reqs[0].json();
    assert_eq!(body["api_key"], BAKED_KEY);
    assert_eq!(body["batch"][0]["event"], "Zeta Setup Begun");
    assert_eq!(body["batch"][0]["properties"]["product"], "zeta");

    let stderr = stderr(&out);
    assert!(
        stderr.contains(
            "zeta by Zeta Inc. counts installs, anonymously. Opt out with DO_NOT_TRACK=1 or \
             ZETA_DISABLE_TELEMETRY=1 in the environment, or run `zeta telemetry off`. \
             Privacy policy: https://zeta.example/privacy"
        ),
        "{stderr}"
    );
}

#[test]
fn flags_and_variables_override_what_was_baked_in() {
    let server = Server::start();
    let env = Env::new();
    env.bin(branded())
        .env("INSTALL_BEACON_KEY", "wk_runtime_key")
        .args([
            "--product",
            "other",
            "--protocol",
            "segment",
            "--endpoint",
            &server.url,
            "--quiet",
        ])
        .arg("started")
        .assert()
        .success();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url, "/v1/batch");
    // base64("wk_runtime_key:")
    assert_eq!(reqs[0].header("Authorization"), Some("Basic d2tfcnVudGltZV9rZXk6"));
    let event = &reqs[0].events()[0];
    assert_eq!(event["event"], "Zeta Setup Begun");
    assert_eq!(event["properties"]["product"], "other");
}

#[test]
fn opt_outs_still_win() {
    let server = Server::start();
    let env = Env::new();
    for opt_out in ["DO_NOT_TRACK", "ZETA_DISABLE_TELEMETRY"] {
        env.bin(branded())
            .env("INSTALL_BEACON_ENDPOINT", &server.url)
            .env(opt_out, "1")
            .arg("started")
            .assert()
            .success();
    }
    assert!(server.requests().is_empty());
    assert!(!env.state_dir("zeta").exists());
}
