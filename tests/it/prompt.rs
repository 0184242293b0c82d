//! Prompts in a real terminal (tmux): `support --prompt` and `consent --prompt`, typed into by
//! `tmux send-keys`, with what the 127.0.0.1 server received checked at the end. Without tmux these
//! tests fail under `CI=true` and skip with a line on stderr elsewhere.

use std::fs;

use crate::support::tmux::{Tmux, sh_quote};
use crate::support::{Env, Server, stderr};
use serde_json::Value;

/// A shell command line running the binary in a clean environment inside the pane, then showing
/// its exit code and keeping the pane open.
pub fn command_line(env: &Env, server: &Server, args: &str) -> String {
    format!(
        "env -i HOME={home} PATH={path} TERM=xterm INSTALL_BEACON_PROMPT_TIMEOUT=2s {bin} --product acme \
         --protocol json --endpoint {url} {args}; echo \"EXIT=$?\"; sleep 600",
        home = sh_quote(&env.home.path().to_string_lossy()),
        path = sh_quote(&std::env::var("PATH").unwrap_or_default()),
        bin = sh_quote(env!("CARGO_BIN_EXE_install-beacon")),
        url = server.url,
    )
}

#[test]
fn support_prompt_asks_again_after_a_typo_and_sends_the_failed_step() {
    let server = Server::start();
    let env = Env::new();
    env.json(&server.url)
        .args(["error", "--step", "unpack", "--exit-code", "2"])
        .assert()
        .success();
    let Some(tmux) = Tmux::start(env.home.path(), &command_line(&env, &server, "support --prompt")) else {
        return;
    };
    let screen = tmux.wait_for("[y/N]");
    assert!(
        screen.contains("The acme installation failed at step 'unpack'."),
        "{screen}"
    );
    tmux.type_line("y");
    tmux.wait_for("Your email address (leave empty to skip):");
    tmux.type_line("ada@example");
    tmux.wait_for("'ada@example' does not look like an email address. Try again (empty to skip):");
    tmux.type_line("ada@example.com");
    let screen = tmux.wait_for("EXIT=0");
    assert!(
        screen.contains("The acme team will write to ada@example.com."),
        "{screen}"
    );

    let events = server.events();
    assert_eq!(events.len(), 2);
    let support = &events[1];
    assert_eq!(support["event"], "Installation Support");
    assert_eq!(support["properties"]["email"], "ada@example.com");
    assert_eq!(support["properties"]["step"], "unpack");
}

#[test]
fn support_prompt_gives_up_without_an_answer() {
    let server = Server::start();
    let env = Env::new();
    let Some(tmux) = Tmux::start(env.home.path(), &command_line(&env, &server, "support --prompt")) else {
        return;
    };
    tmux.wait_for("[y/N]");
    tmux.type_line("yes");
    tmux.wait_for("Your email address");
    // No answer: INSTALL_BEACON_PROMPT_TIMEOUT=2s ends the prompt.
    tmux.wait_for("EXIT=0");
    assert!(server.events().is_empty());
}

#[test]
fn support_prompt_without_a_terminal_says_so_and_exits_0() {
    let server = Server::start();
    let env = Env::new();
    let out = std::process::Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_install-beacon"))
        .args(["--product", "acme", "--protocol", "json", "--endpoint", &server.url])
        .args(["support", "--prompt"])
        .env_clear()
        .env("HOME", env.home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        stderr(&out),
        "install-beacon: no terminal to ask on (CI, container or cron): not asking for a support contact\n"
    );
    assert!(server.events().is_empty());
}

#[test]
fn support_needs_email_unless_prompt() {
    let env = Env::new();
    let out = env.cmd().arg("support").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--email <EMAIL>"));
}

/// Runs `args` in a terminal, waits for `question` and types `answer`: the screen when asked and
/// once the call exited 0 (`None` without tmux, which `Tmux::start` reports).
pub fn answer_prompt(env: &Env, server: &Server, args: &str, question: &str, answer: &str) -> Option<(String, String)> {
    let tmux = Tmux::start(env.home.path(), &command_line(env, server, args))?;
    let asked = tmux.wait_for(question);
    tmux.type_line(answer);
    Some((asked, tmux.wait_for("EXIT=0")))
}

#[test]
fn consent_prompt_saves_the_answer_and_is_not_asked_twice() {
    let server = Server::start();
    let env = Env::new();
    let args = "--default-consent disabled consent --prompt";
    let question = "Share anonymous installation statistics? [y/N]";
    let Some((asked, _)) = answer_prompt(&env, &server, args, question, "y") else {
        return;
    };
    assert!(
        asked.contains("Never names, hostnames, IP addresses, paths or command output."),
        "{asked}"
    );
    let saved: Value = serde_json::from_slice(&fs::read(env.state_dir("acme").join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["consent"], true);
    let line = command_line(&env, &server, args);

    // Asked once: a saved choice skips the question.
    let Some(tmux) = Tmux::start(env.home.path(), &line) else {
        return;
    };
    let screen = tmux.wait_for("EXIT=0");
    assert!(!screen.contains("Share anonymous"), "{screen}");
    env.json(&server.url)
        .args(["--default-consent", "disabled", "started"])
        .assert()
        .success();
    assert_eq!(server.events().len(), 1);
}

#[test]
fn consent_prompt_empty_answer_takes_the_default() {
    let server = Server::start();
    let env = Env::new();
    let Some(tmux) = Tmux::start(env.home.path(), &command_line(&env, &server, "consent --prompt")) else {
        return;
    };
    tmux.wait_for("[Y/n]");
    tmux.type_line("");
    tmux.wait_for("EXIT=0");
    let saved: Value = serde_json::from_slice(&fs::read(env.state_dir("acme").join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["consent"], true);
}

/// After a "no" to statistics, help is still offered on the terminal, and the request carries only
/// what the user gave: address, failed step, product, and a one-time ID (no ID file is made).
#[test]
fn after_a_no_to_statistics_support_is_still_offered_and_sends_only_the_request() {
    let server = Server::start();
    let env = Env::new();
    env.cmd().arg("disable").assert().success();
    let line = command_line(&env, &server, "support --prompt --step unpack");
    let Some(tmux) = Tmux::start(env.home.path(), &line) else {
        return;
    };
    let screen = tmux.wait_for("[y/N]");
    assert!(screen.contains("failed at step 'unpack'"), "{screen}");
    tmux.type_line("y");
    let screen = tmux.wait_for("Your email address");
    assert!(
        screen.contains("Only your address, the failed step and the installation ID are sent"),
        "{screen}"
    );
    tmux.type_line("ada@example.com");
    tmux.wait_for("EXIT=0");
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "Installation Support");
    let keys: Vec<&String> = events[0]["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["email", "product", "step"], "no machine facts");
    assert_eq!(events[0]["properties"]["email"], "ada@example.com");
    assert!(!env.id_file("acme").exists(), "statistics off: no ID file");
}

/// The same without a terminal (`support --email`): sent as a request under every statistics
/// opt-out, never when the machine rules out every connection (policy file, `donottrack` name).
#[test]
fn support_under_opt_outs_sends_the_request_unless_every_connection_is_ruled_out() {
    let env = Env::new();
    let policy = env.home.path().join("policy");
    fs::write(&policy, "telemetry=off\n").unwrap();
    let donottrack = env.home.path().join("acme-donottrack");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_install-beacon"), &donottrack).unwrap();
    let support = ["support", "--email", "ada@example.com", "--step", "unpack"];
    for (opt_out, sent) in [
        ("DO_NOT_TRACK=1", true),
        ("ACME_DISABLE_TELEMETRY=1", true),
        ("--telemetry=off", true),
        ("INSTALL_BEACON_POLICY_FILE", false),
        ("acme-donottrack", false),
    ] {
        let server = Server::start();
        let command = || {
            let mut cmd = if opt_out == "acme-donottrack" {
                env.bin(&donottrack)
            } else {
                env.cmd()
            };
            if opt_out == "acme-donottrack" {
                cmd.args(["--product", "acme"]);
            }
            cmd.args(["--protocol", "json", "--endpoint", &server.url]);
            match opt_out.split_once('=') {
                Some(("--telemetry", value)) => cmd.args(["--telemetry", value]),
                Some((name, value)) => cmd.env(name, value),
                None if opt_out == "INSTALL_BEACON_POLICY_FILE" => cmd.env(opt_out, &policy),
                None => &mut cmd,
            };
            cmd
        };
        let out = command().args(support).output().unwrap();
        assert!(out.status.success(), "{opt_out}: {}", stderr(&out));
        let bad = command()
            .args(["support", "--email", "ada@localhost"])
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "{opt_out}: {}", stderr(&bad));
        if !sent {
            let why = match opt_out {
                "acme-donottrack" => "executable name 'acme-donottrack' contains 'donottrack'".to_owned(),
                _ => format!("policy file {}", policy.display()),
            };
            assert_eq!(
                stderr(&out),
                format!("install-beacon: support request not sent: the {why} rules out every connection\n"),
                "{opt_out}"
            );
        }
        let events = server.events();
        assert_eq!(events.len(), usize::from(sent), "{opt_out}");
        if sent {
            let props = events[0]["properties"].as_object().unwrap();
            assert_eq!(
                props.keys().collect::<Vec<_>>(),
                ["email", "product", "step"],
                "{opt_out}"
            );
        }
        assert!(!env.state_dir("acme").join("outbox.jsonl").exists(), "{opt_out}");
        assert!(!env.state_dir("acme").join("audit.jsonl").exists(), "{opt_out}");
        assert!(!env.id_file("acme").exists(), "{opt_out}");
    }
}

/// `run` on a terminal passes the child's output through as it comes: a prompt without a newline
/// shows at once (not after the answer), and the child reads the answer from the terminal.
#[test]
fn run_shows_a_prompt_without_a_newline_and_the_child_reads_the_answer() {
    let server = Server::start();
    let env = Env::new();
    let child = r#"printf 'Continue? [Y/n] '; read answer; echo "answer=$answer""#;
    let args = format!("run --step ask -- sh -c {}", sh_quote(child));
    let Some(tmux) = Tmux::start(env.home.path(), &command_line(&env, &server, &args)) else {
        return;
    };
    tmux.wait_for("Continue? [Y/n] ");
    tmux.type_line("n");
    let screen = tmux.wait_for("EXIT=0");
    assert!(screen.contains("answer=n"), "{screen}");
    assert!(screen.contains("✓ ask ("), "{screen}");
}

/// A child that prints 512 MiB without a newline: `run` relays it through a bounded buffer, so it
/// finishes within a 384 MiB address-space limit (holding the line whole, it aborted).
#[test]
fn run_relays_an_endless_line_in_bounded_memory() {
    let server = Server::start();
    let env = Env::new();
    let args = "run --step big -- sh -c 'head -c 536870912 /dev/zero' >/dev/null";
    let line = format!("ulimit -v 393216; {}", command_line(&env, &server, args));
    let Some(tmux) = Tmux::start(env.home.path(), &line) else {
        return;
    };
    let screen = tmux.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(server.events().is_empty(), "the step did not fail");
}
