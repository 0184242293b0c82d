//! Who is installing, as the receiver sees it: `ci` for every value of `CI` and a provider's own
//! variable, `agent` for every agent marker and `AI_AGENT`, `install_method` from the flag and its
//! variable (the Docker entrypoint's default is checked in `installers`).

use serde_json::Value;

use crate::support::{Env, Server, stderr};

/// The properties of the one event a `started` call with `vars` delivered.
fn sent_with(vars: &[(&str, &str)], args: &[&str]) -> Value {
    let server = Server::start();
    let env = Env::new();
    let out = env
        .json(&server.url)
        .envs(vars.iter().copied())
        .args(args)
        .arg("started")
        .output()
        .unwrap();
    assert!(out.status.success(), "{vars:?}: {}", stderr(&out));
    let events = server.accepted();
    assert_eq!(events.len(), 1, "{vars:?}");
    events[0]["properties"].clone()
}

#[test]
fn ci_is_any_ci_value_but_false_or_0_and_the_providers_variables() {
    for (value, ci) in [
        ("1", true),
        ("true", true),
        ("TRUE", true),
        ("woodpecker", true),
        ("yes", true),
        ("false", false),
        ("0", false),
        ("", false),
    ] {
        let p = sent_with(&[("CI", value)], &[]);
        assert_eq!(p["ci"], ci, "CI={value:?}");
        assert_eq!(p.get("context").is_some(), ci, "CI={value:?}: {p}");
    }
    // Providers that do not set CI, or with CI=false set by the build (a common way to keep
    // warnings from failing it).
    for vars in [
        &[("TEAMCITY_VERSION", "2025.03")][..],
        &[("TF_BUILD", "True")],
        &[("JENKINS_URL", "http://jenkins:8080/")],
        &[("CI", "false"), ("GITHUB_ACTIONS", "true"), ("GITHUB_ACTION", "run1")],
    ] {
        assert_eq!(sent_with(vars, &[])["ci"], true, "{vars:?}");
    }
    assert_eq!(sent_with(&[], &[])["ci"], false);
}

#[test]
fn every_agent_marker_names_the_agent() {
    for (vars, agent) in [
        (&[("CLAUDECODE", "1")][..], "claude-code"),
        (&[("CLAUDE_CODE", "1")], "claude-code"),
        (&[("CURSOR_AGENT", "1")], "cursor"),
        (&[("CODEX_SANDBOX", "seatbelt")], "codex"),
        (&[("CODEX_SANDBOX_NETWORK_DISABLED", "1")], "codex"),
        (&[("CODEX_THREAD_ID", "0199a1b2")], "codex"),
        (&[("CODEX_CI", "1")], "codex"),
        (&[("GEMINI_CLI", "1")], "gemini-cli"),
        (&[("AUGMENT_AGENT", "1")], "augment"),
        (&[("OPENCODE_CLIENT", "cli")], "opencode"),
        (&[("OPENCODE", "1")], "opencode"),
        (&[("ANTIGRAVITY_AGENT", "1")], "antigravity"),
        // AI_AGENT names the agent, whatever else is set.
        (&[("AI_AGENT", "my-agent@2"), ("CLAUDECODE", "1")], "my-agent@2"),
        (&[("AI_AGENT", "  "), ("GEMINI_CLI", "1")], "gemini-cli"),
    ] {
        let p = sent_with(vars, &[]);
        assert_eq!(p["agent"], agent, "{vars:?}");
        assert_eq!(p["ci"], false, "an agent is not CI: {vars:?}");
    }
    // Nothing set, an empty marker, or a variable a person exports themselves: no agent.
    for vars in [
        &[][..],
        &[("CLAUDECODE", "")],
        &[("CODEX_HOME", "/root/.codex")],
        &[("CURSOR_TRACE_ID", "x")],
    ] {
        let p = sent_with(vars, &[]);
        assert!(p.get("agent").is_none(), "{vars:?}: {p}");
    }
}

#[test]
fn install_method_from_the_flag_or_its_variable() {
    assert_eq!(
        sent_with(&[], &["--install-method", "curl-sh"])["install_method"],
        "curl-sh"
    );
    let p = sent_with(&[("INSTALL_BEACON_INSTALL_METHOD", "brew")], &[]);
    assert_eq!(p["install_method"], "brew");
    assert!(sent_with(&[], &[]).get("install_method").is_none());

    let env = Env::new();
    let out = env
        .json("http://127.0.0.1:9")
        .args(["--install-method", "Curl | sh", "started"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'Curl | sh' for '--install-method <NAME>': use 1-32 lower-case letters"),
        "{}",
        stderr(&out)
    );
}
