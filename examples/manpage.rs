//! Writes install-beacon's man pages from its command-line definition (clap_mangen), so they never
//! drift from `--help`: `install-beacon.1` and one `install-beacon-<command>.1` per subcommand.
//! With `--markdown FILE` it writes the command-line reference (`docs/cli.md`) instead; a test
//! fails when the committed page differs from what the definition gives.
//! A release step, kept out of the binary to keep it small; `scripts/build-static.sh` runs it:
//!
//! ```sh
//! cargo run --example manpage -- target/man      # then: man -l target/man/install-beacon.1
//! cargo run --example manpage -- --markdown docs/cli.md
//! ```

// The binary's own command-line modules, compiled here for their definitions only.
#![allow(dead_code)]

#[path = "../src/event/branding.rs"]
mod branding;
#[path = "../src/cli.rs"]
mod cli;
#[path = "../src/consent/mod.rs"]
mod consent;
#[path = "../src/encode/endpoint.rs"]
mod endpoint;
#[path = "../src/store/files.rs"]
mod files;
mod encode {
    pub(crate) use super::endpoint::Endpoint;
}
mod event {
    pub(crate) use super::branding;
}
mod store {
    pub(crate) use super::files;
}

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let written = match args.as_slice() {
        [flag, file] if flag.as_os_str() == "--markdown" => {
            std::fs::write(file, markdown(cli::Cli::command())).map(|()| file.clone())
        }
        [dir] => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cli::Cli::command(), dir))
            .map(|()| dir.join("install-beacon.1")),
        _ => {
            eprintln!("usage: cargo run --example manpage -- DIR | --markdown FILE");
            return ExitCode::from(2);
        }
    };
    match written {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "cannot write {}: {e}",
                args.last().map_or_else(String::new, |p| p.display().to_string())
            );
            ExitCode::FAILURE
        }
    }
}

/// The command-line reference in Markdown: the usage, every command with its own options and
/// arguments, then the options every command takes, each with its environment variable, values
/// and default, in the words of `--help`.
fn markdown(mut cli: clap::Command) -> String {
    cli.build();
    let name = cli.get_name().to_owned();
    let mut out = format!(
        "# Command-line reference\n\n\
         <!-- Generated from the clap definition (src/cli.rs) by \
         `cargo run --example manpage -- --markdown docs/cli.md`; do not edit. -->\n\n\
         {}\n\n```text\n{}\n```\n\n## Commands\n\n",
        help_of(&cli),
        usage(&mut cli)
    );
    let mut commands: Vec<clap::Command> = (cli.get_subcommands())
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .cloned()
        .collect();
    for command in &commands {
        let about = prose(&command.get_about().map(|a| a.to_string()).unwrap_or_default());
        out.push_str(&format!(
            "- [`{}`](#{name}-{}): {about}\n",
            command.get_name(),
            command.get_name()
        ));
    }
    for command in &mut commands {
        out.push_str(&format!(
            "\n## `{name} {}`\n\n{}\n\n",
            command.get_name(),
            help_of(command)
        ));
        out.push_str(&format!("```text\n{}\n```\n", usage(command)));
        let own: Vec<&clap::Arg> = (command.get_arguments())
            .filter(|a| !a.is_global_set() && !a.is_hide_set() && a.get_id() != "help")
            .collect();
        if !own.is_empty() {
            out.push('\n');
            out.push_str(&arguments(&own));
        }
    }
    let global: Vec<&clap::Arg> = cli
        .get_arguments()
        .filter(|a| a.is_global_set() && !a.is_hide_set())
        .collect();
    out.push_str("\n## Options of every command\n\nThey go before or after the command.\n\n");
    out.push_str(&arguments(&global));
    out
}

/// `Usage: …` without its label.
fn usage(command: &mut clap::Command) -> String {
    let usage = command.render_usage().to_string();
    usage.trim_start_matches("Usage: ").trim().to_owned()
}

/// The long help, else the short one.
fn help_of(command: &clap::Command) -> String {
    let help = command.get_long_about().or(command.get_about());
    prose(help.map(|h| h.to_string()).unwrap_or_default().trim())
}

/// Help text as Markdown prose: `<NAME>` placeholders shown, not taken for HTML.
fn prose(text: &str) -> String {
    text.replace('<', "&lt;").replace('>', "&gt;")
}

/// One list item per argument: its name and value, environment variable, help, values, default.
fn arguments(args: &[&clap::Arg]) -> String {
    let mut out = String::new();
    for arg in args {
        let values: Vec<String> = arg
            .get_value_names()
            .unwrap_or_default()
            .iter()
            .map(|v| format!("<{v}>"))
            .collect();
        let mut names: Vec<String> = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        let flag = if arg.is_positional() {
            values.join(" ")
        } else if arg.get_action().takes_values() && !values.is_empty() {
            format!("{} {}", names.join(", "), values.join(" "))
        } else {
            names.join(", ")
        };
        let mut line = format!("- `{flag}`");
        if let Some(env) = arg.get_env() {
            line.push_str(&format!(" (env `{}`)", env.to_string_lossy()));
        }
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let help = prose(help.trim()).replace('\n', "\n  ");
        line.push_str(&format!(": {help}"));
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !possible.is_empty() && arg.get_action().takes_values() {
            line.push_str(&format!(" [values: {}]", possible.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| format!("`{}`", d.to_string_lossy()))
            .collect();
        if !defaults.is_empty() && arg.get_action().takes_values() {
            line.push_str(&format!(" [default: {}]", defaults.join(", ")));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_documents_every_command_option_and_opt_out() {
        let mut page = Vec::new();
        clap_mangen::Man::new(cli::Cli::command()).render(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq"), "roff: {page}");
        assert!(page.contains(".TH install-beacon 1"), "{page}");
        for command in cli::Cli::command().get_subcommands() {
            assert!(
                page.contains(&format!(
                    "install\\-beacon\\-{}(1)",
                    command.get_name().replace('-', "\\-")
                )),
                "{}",
                command.get_name()
            );
        }
        for text in ["\\-\\-opt\\-out\\-hint", "INSTALL_BEACON_KEY", "DO_NOT_TRACK=1"] {
            assert!(page.contains(text), "{text} missing:\n{page}");
        }
    }

    /// docs/cli.md is what the definition gives, so it cannot go stale.
    #[test]
    fn docs_cli_md_is_generated_from_the_definition() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = markdown(cli::Cli::command());
        assert!(
            committed == generated,
            "docs/cli.md is stale: run `cargo run --example manpage -- --markdown docs/cli.md`"
        );
        for command in cli::Cli::command().get_subcommands().filter(|c| !c.is_hide_set()) {
            if command.get_name() == "help" {
                continue;
            }
            assert!(generated.contains(&format!("## `install-beacon {}`", command.get_name())));
        }
        for text in [
            "`--endpoint <URL>` (env `INSTALL_BEACON_ENDPOINT`)",
            "[values: `segment`",
        ] {
            assert!(generated.contains(text), "{text} missing:\n{generated}");
        }
    }
}
