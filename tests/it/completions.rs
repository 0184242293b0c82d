//! `install-beacon completions bash|zsh|fish`: the scripts load in their shells and complete
//! subcommands and options.

use std::fs;
use std::process::Command;

use crate::support::{Env, tools};

/// The completion script for `shell`, written to a file in `env`'s home.
fn script(env: &Env, shell: &str) -> std::path::PathBuf {
    let out = env.bare().args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = env.home.path().join(format!("install-beacon.{shell}"));
    fs::write(&path, &out.stdout).unwrap();
    path
}

/// What bash offers for the command line `words` (the last word being completed), after loading
/// the script exactly as bash-completion does.
fn bash_complete(script: &std::path::Path, words: &str) -> Vec<String> {
    let program = format!(
        r#"source "$1" || exit 1
spec=$(complete -p install-beacon) || exit 1
fn=${{spec#*-F }}; fn=${{fn%% *}}
COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="{words}"; COMP_POINT=${{#COMP_LINE}}
"$fn" install-beacon "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program, "bash"])
        .arg(script)
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completion_completes_subcommands_and_their_options() {
    let env = Env::new();
    let script = script(&env, "bash");
    assert_eq!(bash_complete(&script, "install-beacon fl"), ["flush"]);
    assert_eq!(bash_complete(&script, "install-beacon comp"), ["completions"]);
    assert_eq!(bash_complete(&script, "install-beacon heartbeat --ev"), ["--every"]);
    let offered = bash_complete(&script, "install-beacon completions ''");
    let shells: Vec<&String> = offered.iter().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(shells, ["bash", "zsh", "fish"]);
}

#[test]
fn zsh_completion_loads_after_compinit() {
    if !tools::have("zsh", &["-c", "exit 0"], "zsh") {
        return;
    }
    let env = Env::new();
    let script = script(&env, "zsh");
    let out = Command::new("zsh")
        .args([
            "-f",
            "-c",
            "autoload -Uz compinit && compinit -u -D && source \"$1\" && print -r -- $_comps[install-beacon]",
            "zsh",
        ])
        .arg(&script)
        .env_clear()
        .env("HOME", env.home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "_install-beacon\n");
}

#[test]
fn fish_completion_names_every_subcommand() {
    let env = Env::new();
    let text = fs::read_to_string(script(&env, "fish")).unwrap();
    for subcommand in ["started", "success", "error", "support", "flush", "log", "completions"] {
        assert!(
            text.contains(&format!("-a \"{subcommand}\"")),
            "{subcommand} missing from:\n{text}"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let env = Env::new();
    let out = env.bare().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}
