//! Who runs the installer, from the environment snapshot: a CI system, or an AI coding agent (and
//! which). Only the presence of the markers is read, never their values, except `AI_AGENT`'s,
//! which exists to name the agent.

use crate::settings::Environment;

/// CI systems that do not set `CI` themselves, beyond those `is_ci` knows (it checks the variables
/// of GitHub Actions, GitLab, Jenkins, CircleCI, Travis, Buildkite, Azure Pipelines, CodeBuild,
/// Google Cloud Build, Bitrise, Drone and others when the process starts).
const CI_PROVIDERS: &[&str] = &[
    "TF_BUILD",                  // Azure Pipelines
    "TEAMCITY_VERSION",          // TeamCity
    "bamboo_buildKey",           // Bamboo
    "CF_BUILD_ID",               // Codefresh
    "APPCENTER_BUILD_ID",        // App Center
    "JB_SPACE_EXECUTION_NUMBER", // JetBrains Space Automation
    "EAS_BUILD",                 // Expo Application Services
    "PROW_JOB_ID",               // Prow
];

/// Agents that mark the processes they run, in the order checked, with the name sent for each.
/// Editors' terminals (`CURSOR_TRACE_ID`, `TERM_PROGRAM`) and online workspaces (`REPL_ID`) are not
/// here: a person types there too.
const AGENTS: &[(&str, &[&str])] = &[
    ("claude-code", &["CLAUDECODE", "CLAUDE_CODE"]),
    ("cursor", &["CURSOR_AGENT"]),
    // Set in the commands Codex runs (not `CODEX_HOME`, which a person may export).
    (
        "codex",
        &[
            "CODEX_SANDBOX",
            "CODEX_SANDBOX_NETWORK_DISABLED",
            "CODEX_THREAD_ID",
            "CODEX_CI",
        ],
    ),
    ("gemini-cli", &["GEMINI_CLI"]),
    ("augment", &["AUGMENT_AGENT"]),
    ("opencode", &["OPENCODE_CLIENT", "OPENCODE"]),
    ("antigravity", &["ANTIGRAVITY_AGENT"]),
];

/// Whether this is one of Devin's machines, which carry `/opt/.devin`.
#[cfg(unix)]
pub fn devin_machine() -> bool {
    std::path::Path::new("/opt/.devin").exists()
}

/// Devin's machines run Linux.
#[cfg(not(unix))]
pub fn devin_machine() -> bool {
    false
}

/// Longest agent name sent (`AI_AGENT` is free text).
const MAX_AGENT: usize = 64;

/// Whether a CI system runs this: `CI` set to anything but empty, `false` or `0` (`CI=1`, `CI=yes`
/// and `CI=woodpecker` count), or a provider's own variable. `provider` is `is_ci`'s verdict.
pub fn ci(env: &Environment, provider: bool) -> bool {
    let ci_var = env
        .var("CI")
        .map(str::trim)
        .is_some_and(|v| !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")));
    ci_var
        || provider
        || CI_PROVIDERS
            .iter()
            .any(|name| env.var(name).is_some_and(|v| !v.is_empty()))
}

/// The agent running this, if any: `AI_AGENT`'s value (the convention agents adopt), else the
/// first agent whose marker is set and not empty, else `devin` when its marker file exists.
pub fn agent(env: &Environment, devin: bool) -> Option<String> {
    let named = env.var("AI_AGENT").map(|v| {
        v.trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_AGENT)
            .collect::<String>()
    });
    if let Some(name) = named.filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let marked = AGENTS.iter().find(|(_, vars)| {
        vars.iter()
            .any(|name| env.var(name).is_some_and(|v| !v.trim().is_empty()))
    });
    marked
        .map(|(agent, _)| (*agent).to_owned())
        .or_else(|| devin.then(|| "devin".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Environment::with_vars(&vars)
    }

    #[test]
    fn ci_values() {
        for (value, is_ci) in [
            ("1", true),
            ("true", true),
            ("TRUE", true),
            ("yes", true),
            ("woodpecker", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("", false),
            (" ", false),
        ] {
            assert_eq!(ci(&env(&[("CI", value)]), false), is_ci, "CI={value:?}");
        }
        assert!(!ci(&env(&[]), false));
        assert!(ci(&env(&[]), true), "is_ci's providers count");
        assert!(ci(&env(&[("CI", "false"), ("TEAMCITY_VERSION", "2024.1")]), false));
        for name in CI_PROVIDERS {
            assert!(ci(&env(&[(name, "x")]), false), "{name}");
            assert!(!ci(&env(&[(name, "")]), false), "{name} empty");
        }
    }

    #[test]
    fn agents() {
        assert_eq!(agent(&env(&[]), false), None);
        assert_eq!(
            agent(&env(&[("CLAUDECODE", "1")]), false).as_deref(),
            Some("claude-code")
        );
        assert_eq!(agent(&env(&[("CLAUDECODE", "")]), false), None);
        assert_eq!(
            agent(&env(&[("AI_AGENT", " my-agent@2 "), ("CLAUDECODE", "1")]), false).as_deref(),
            Some("my-agent@2")
        );
        assert_eq!(
            agent(&env(&[("AI_AGENT", " "), ("GEMINI_CLI", "1")]), false).as_deref(),
            Some("gemini-cli")
        );
        assert_eq!(
            agent(&env(&[("AI_AGENT", &"x\u{1b}".repeat(100))]), false),
            Some("x".repeat(MAX_AGENT))
        );
        assert_eq!(agent(&env(&[("CODEX_HOME", "/home/me/.codex")]), false), None);
        assert_eq!(agent(&env(&[]), true).as_deref(), Some("devin"));
        assert_eq!(agent(&env(&[("CURSOR_AGENT", "1")]), true).as_deref(), Some("cursor"));
        for (name, vars) in AGENTS {
            for var in *vars {
                assert_eq!(agent(&env(&[(var, "1")]), false).as_deref(), Some(*name), "{var}");
            }
        }
    }
}
