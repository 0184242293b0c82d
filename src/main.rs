//! install-beacon: reports installer checkpoints to an analytics endpoint without ever failing
//! or stalling the installer that calls it.
//!
//! Layers, each using only those below it (see ARCHITECTURE.md): `main` → `commands` → `session`,
//! `settings`, `cli` → `delivery` → `encode` → `event`, `consent` → `store` → `ui`, `tty`, `exit`.

#[cfg(any(test, target_env = "musl"))]
mod arena;
mod cli;
mod commands;
mod consent;
mod delivery;
mod detect;
mod encode;
mod event;
mod exit;
#[cfg(test)]
mod proptests;
mod session;
mod settings;
mod store;
mod tty;
mod ui;

use std::process::ExitCode;

use crate::cli::Command;
use crate::commands as cmd;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::settings::{Environment, Settings};

/// See `arena`: musl's own allocator unmaps freed pages at once, which costs a short call dearly.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

fn main() -> ExitCode {
    let status = run().unwrap_or_else(|error| {
        ui::stderr(&error.render());
        error.status()
    });
    status.into()
}

/// Resolves the settings and the session once, then runs the command.
fn run() -> Result<ExitStatus, Error> {
    let cli = cli::parse();
    let env = Environment::capture();
    if let Command::Completions(args) = &cli.command {
        cmd::completions::completions(args, env.argv0.as_deref());
        return Ok(ExitStatus::Success);
    }
    let settings = Settings::resolve(cli.global, &env)?;
    let session = Session::start(&settings);
    let s = &session;
    match cli.command {
        Command::Started => cmd::started::started(s),
        Command::Success => cmd::success::success(s),
        Command::Error(args) => cmd::error::error(s, args),
        Command::Support(args) => cmd::support::support(s, args),
        Command::Run(args) => Ok(cmd::run::run(s, args)),
        Command::ShellInit(args) => {
            cmd::shell_init::shell_init(s, &args);
            Ok(ExitStatus::Success)
        }
        Command::Heartbeat(args) => cmd::heartbeat::heartbeat(s, &args),
        Command::Consent(args) => cmd::consent::consent(s, &args),
        Command::Track(args) => cmd::track::track(s, args),
        Command::Flush => cmd::flush::flush(s),
        Command::Id(args) => cmd::id::id(s, &args),
        Command::Enable => cmd::choice::save(s, consent::Level::All),
        Command::Disable => cmd::choice::save(s, consent::Level::Off),
        Command::Status => {
            cmd::status::status(s);
            Ok(ExitStatus::Success)
        }
        Command::Log(args) => cmd::log::log(s, &args),
        // Printed above, before the settings, which it does not need.
        Command::Completions(_) => Ok(ExitStatus::Success),
    }
}
