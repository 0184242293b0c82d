//! The hooks' contract: every function `shell-init` defines exists in every fallback (the no-op
//! hooks of `scripts/fetch-beacon.sh` and the no-binary fallback of the installer docs), takes the
//! same arguments and returns the same exit codes, in sh, dash, bash and zsh, with and without
//! `set -eu`. The list comes from `shell-init`'s own output, so a new hook fails this test until
//! every fallback (and the table of calls below) has it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{Env, shells, stderr, stdout};

/// One call of each hook, with the exit code every implementation must return.
const CALLS: &[(&str, &str, i32)] = &[
    ("beacon_started", "beacon_started", 0),
    ("beacon_step", "beacon_step configure", 0),
    ("beacon_error", "beacon_error 'disk full: 2 GB needed'", 0),
    ("beacon_run", "beacon_run unpack --label Unpacking -- sh -c 'exit 7'", 7),
    ("beacon_run", "beacon_run unpack --log \"$HOME/log\" -- true", 0),
    ("beacon_success", "beacon_success", 0),
    ("beacon_on_exit", "beacon_on_exit 0", 0),
    ("beacon_on_exit", "beacon_on_exit 3", 0),
];

/// The public functions (`beacon_*`) the hooks of `shell-init` define.
fn hook_names() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_install-beacon"))
        .args(["--product", "acme", "shell-init"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let names: BTreeSet<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.split_once("()").map(|(name, _)| name.trim()))
        .filter(|name| name.starts_with("beacon_") && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 6, "too few hooks found: {names:?}");
    names
}

/// The no-binary fallback of the installer docs: the `command -v beacon_… || { … }` lines.
fn docs_fallback() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    pages.extend(
        fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut found = Vec::new();
    for page in pages {
        let text = fs::read_to_string(&page).unwrap();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.starts_with("command -v beacon_") && line.contains("|| {") {
                let mut block = vec![line];
                block.extend(lines.by_ref().take_while(|l| *l != "}"));
                block.push("}");
                found.push(block.join("\n"));
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "expected one no-binary fallback in README.md and docs/: {found:?}"
    );
    found.remove(0)
}

/// The ways a script gets its hooks.
fn preludes() -> Vec<(&'static str, String)> {
    let snippet = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-beacon.sh");
    let snippet = snippet.display();
    vec![
        (
            "shell-init",
            "eval \"$(\"$BIN\" --product acme --protocol json --endpoint http://127.0.0.1:9 shell-init)\"".to_owned(),
        ),
        // The fetch cannot start: no release configured.
        (
            "fetch-beacon.sh (failed fetch)",
            format!(". '{snippet}'\nbeacon_fetch --product acme"),
        ),
        // An opt-out: nothing is downloaded.
        (
            "fetch-beacon.sh (opted out)",
            format!("DO_NOT_TRACK=1\n. '{snippet}'\nbeacon_fetch --product acme"),
        ),
        ("the docs' fallback", docs_fallback()),
    ]
}

fn run(shell: &str, env: &Env, script: &str) -> Output {
    Command::new(shell)
        .args(["-c", script])
        .env_clear()
        .env("HOME", env.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BIN", env!("CARGO_BIN_EXE_install-beacon"))
        .env("INSTALL_BEACON_POLICY_FILE", env.home.path().join("no-policy"))
        .output()
        .expect("run shell")
}

#[test]
fn every_fallback_defines_every_hook_with_the_same_exit_codes() {
    let names = hook_names();
    let called: BTreeSet<String> = CALLS.iter().map(|(name, _, _)| (*name).to_owned()).collect();
    assert_eq!(called, names, "CALLS must call every hook shell-init defines");
    let env = Env::new();
    for shell in shells() {
        for strict in ["set -eu", ":"] {
            for (source, prelude) in preludes() {
                let mut script = format!("{strict}\n{prelude}\n");
                for name in &names {
                    script.push_str(&format!(
                        "command -v {name} >/dev/null 2>&1 && echo 'defined {name}' || echo 'missing {name}'\n"
                    ));
                }
                for (i, (_, call, _)) in CALLS.iter().enumerate() {
                    script.push_str(&format!(
                        "rc=0; ( {call} ) >/dev/null 2>&1 || rc=$?; echo \"call {i} $rc\"\n"
                    ));
                }
                let out = run(shell, &env, &script);
                let mut want = String::new();
                for name in &names {
                    want.push_str(&format!("defined {name}\n"));
                }
                for (i, (_, _, code)) in CALLS.iter().enumerate() {
                    want.push_str(&format!("call {i} {code}\n"));
                }
                assert_eq!(stdout(&out), want, "{shell}, {strict}, {source}: {}", stderr(&out));
                assert!(out.status.success(), "{shell}, {strict}, {source}: {out:?}");
            }
        }
    }
}

/// A script with its own EXIT trap calls `beacon_on_exit`: its exit code stays its own (1, not the
/// 127 of a missing function), whichever way it got its hooks.
#[test]
fn a_scripts_own_exit_trap_keeps_its_exit_code() {
    let env = Env::new();
    for shell in shells() {
        for strict in ["set -eu", ":"] {
            for (source, prelude) in preludes() {
                let script = format!("{strict}\n{prelude}\ntrap 'rc=$?; beacon_on_exit $rc' EXIT\nexit 1\n");
                let out = run(shell, &env, &script);
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "{shell}, {strict}, {source}: {}",
                    stderr(&out)
                );
            }
        }
    }
}
