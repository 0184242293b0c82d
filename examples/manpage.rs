//! Writes install-beacon's man pages from its command-line definition (clap_mangen), so they never
//! drift from `--help`: `install-beacon.1` and one `install-beacon-<command>.1` per subcommand.
//! A release step, kept out of the binary to keep it small; `scripts/build-static.sh` runs it:
//!
//! ```sh
//! cargo run --example manpage -- target/man      # then: man -l target/man/install-beacon.1
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
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cargo run --example manpage -- DIR");
        return ExitCode::from(2);
    };
    let written = std::fs::create_dir_all(&dir).and_then(|()| clap_mangen::generate_to(cli::Cli::command(), &dir));
    match written {
        Ok(()) => {
            println!("{}", dir.join("install-beacon.1").display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write the man pages to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
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
}
