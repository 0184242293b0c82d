//! `beacon-collector`: receive install-beacon events into SQLite, and report on installations.

mod cli;
mod clock;
mod error;
mod event;
mod http;
mod ingest;
mod present;
mod report;
mod store;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Format, ReportArgs, ServeArgs};
use error::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.print();
            e.exit_code()
        }
    }
}

fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Serve(args) => serve(args),
        Command::Report(args) => report(args),
        Command::Seed(args) => {
            let n = store::seed::seed(&args.db, args.events, args.days, args.seed)
                .map_err(|e| Error::OpenDatabase(args.db.clone(), e))?;
            println!("seeded {n} events into {}", args.db.display());
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), Error> {
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
    runtime.block_on(http::serve(settings))
}

fn report(args: ReportArgs) -> Result<(), Error> {
    if !args.db.exists() {
        return Err(Error::DatabaseMissing(args.db));
    }
    let query = report::Query {
        since: args.since,
        product: args.product,
        show_emails: args.show_emails,
        now_ms: clock::now_ms(),
    };
    let conn = store::open_existing(&args.db).map_err(|e| Error::OpenDatabase(args.db.clone(), e))?;
    let report = report::run(&conn, &query)?;
    let text = match args.format {
        Format::Table => present::text::render(&report),
        Format::Json => present::json(&report),
        Format::Csv => present::csv::render(&report),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed pipe (`report | head`) is not an error worth reporting.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
