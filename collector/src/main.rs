//! `beacon-collector`: receive install-beacon events into SQLite, and report on installations.

mod cli;
mod clock;
mod event;
mod http;
mod ingest;
mod present;
mod report;
mod store;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Format};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(hint) = failure.hint {
                eprintln!("  hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A user-facing failure: what went wrong, and how to fix it.
struct Failure {
    message: String,
    hint: Option<String>,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            message: e.to_string(),
            hint: None,
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve(args) => {
            let settings = http::Settings {
                listen: args.listen,
                db: args.db,
                keys: ingest::Keys::new(args.keys),
                latest_version: args.latest_version,
                notices: args.notices,
                busy_timeout: args.busy_timeout,
                header_timeout: args.header_timeout,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(http::serve(settings)).map_err(|e| Failure {
                message: e.to_string(),
                hint: e.hint().map(String::from),
            })
        }
        Command::Report(args) => {
            if !args.db.exists() {
                return Err(Failure {
                    message: format!("database {} does not exist", args.db.display()),
                    hint: Some("pass the file given to `beacon-collector serve --db`".into()),
                });
            }
            let now = clock::now_ms();
            let query = report::Query {
                since_ms: args.since.map(|d| now - d.as_millis() as i64),
                since_label: args.since.map(|d| humantime::format_duration(d).to_string()),
                product: args.product,
                show_emails: args.show_emails,
                now_ms: now,
            };
            let conn = store::open_existing(&args.db)?;
            let report = report::run(&conn, &query)?;
            let text = match args.format {
                Format::Table => present::text::table(&report),
                Format::Json => present::json(&report),
                Format::Csv => present::csv::csv(&report),
            };
            print!("{text}");
            Ok(())
        }
        Command::Seed(args) => {
            let n = store::seed::seed(&args.db, args.events, args.days, args.seed)?;
            println!("seeded {n} events into {}", args.db.display());
            Ok(())
        }
    }
}
