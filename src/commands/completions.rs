//! `completions`: a completion script for bash, zsh or fish, generated from the command line
//! definition, so it always matches this binary's subcommands and options.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell, CompletionsArgs};
use crate::ui;

/// Prints the script for `args.shell`, for the name this binary was called by (a branded copy
/// completes under its own name).
pub fn completions(args: &CompletionsArgs, argv0: Option<&std::ffi::OsStr>) {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let name = argv0
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("install-beacon");
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), name, &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if shell == Shell::Bash {
        // clap_complete 4.6 spells a hyphenated binary name two ways in bash (clap-rs/clap#6421),
        // so no subcommand's options would complete: use the spelling of its dispatch loop.
        script = script.replace(&name.replace('-', "__subcmd__"), &name.replace('-', "__"));
    }
    ui::stdout(&script);
}
