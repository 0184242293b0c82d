//! install-beacon: reports installer checkpoints to an analytics endpoint without ever failing
//! or stalling the installer that calls it.

#[cfg(any(test, target_env = "musl"))]
mod arena;
mod cli;
mod commands;
mod consent;
mod delivery;
mod event;
#[cfg(test)]
mod proptests;
mod settings;
mod store;
mod tty;
mod ui;
mod wire;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::settings::UsageError;

/// See `arena`: musl's own allocator unmaps freed pages at once, which costs a short call dearly.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match commands::run(cli, &matches) {
        Ok(code) => code,
        Err(e) if e.is::<UsageError>() => {
            ui::stderr(&format!("error: {e}\n"));
            ExitCode::from(2)
        }
        Err(e) => {
            ui::stderr(&format!("install-beacon: error: {e:#}\n"));
            ExitCode::FAILURE
        }
    }
}
