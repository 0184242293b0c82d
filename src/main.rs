//! install-beacon: reports installer checkpoints to an analytics endpoint without ever failing
//! or stalling the installer that calls it.

mod app;
#[cfg(any(test, target_env = "musl"))]
mod arena;
mod background;
mod branding;
mod cli;
mod consent;
mod deliver;
mod event;
mod fsutil;
mod identity;
mod notices;
mod outbox;
mod prompt;
#[cfg(test)]
mod proptests;
mod protocol;
mod runner;
mod settings;
mod shell;
mod state;
mod steps;
mod system;
mod throttle;
mod transport;
mod ui;

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
    match app::run(cli, &matches) {
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
