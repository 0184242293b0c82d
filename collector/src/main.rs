//! `beacon-collector`: receive install-beacon events into SQLite (or PostgreSQL), and report on installations.

mod cli;
mod clock;
mod error;
mod event;
mod http;
mod ingest;
mod notices;
mod present;
mod relay;
mod report;
mod secret;
mod store;
mod window;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command, ExportArgs, ForgetArgs, Format, RebuildArgs, ReportArgs, ServeArgs};
use error::Error;
use store::Store;
use store::postgres::Postgres;
use store::sqlite::Sqlite;

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
        Command::Serve(args) => serve(*args),
        Command::Report(args) => report(args),
        Command::Forget(args) => forget(args),
        Command::Export(args) => export(args),
        Command::Rebuild(args) => rebuild(args),
        Command::Seed(args) => {
            let busy = std::time::Duration::from_secs(5);
            let open = match store::postgres_url(&args.db) {
                Some(url) => Postgres::open(url, busy).map(|s| Box::new(s) as Box<dyn Store>),
                None => Sqlite::create(&args.db, busy).map(|s| Box::new(s) as Box<dyn Store>),
            };
            let store = open.map_err(|e| Error::OpenDatabase(store::db_name(&args.db), e))?;
            let n = store::seed::seed(&*store, args.events, args.days, args.seed)?;
            println!("seeded {n} events into {}", store::db_name(&args.db).display());
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), Error> {
    let ServeArgs {
        listen,
        db,
        mut keys,
        key_file,
        admin_token,
        admin_token_file,
        event_names,
        latest_version,
        notices_file,
        notices,
        forward,
        forward_keys,
        notify_support,
        public,
        public_k,
        retain,
        busy_timeout,
        header_timeout,
    } = args;
    let mut forward = relay::targets(forward, forward_keys)
        .unwrap_or_else(|e| Cli::command().error(clap::error::ErrorKind::ArgumentConflict, e).exit());
    forward.extend(
        relay::notify_targets(notify_support)
            .unwrap_or_else(|e| Cli::command().error(clap::error::ErrorKind::ValueValidation, e).exit()),
    );
    if let Some(path) = key_file {
        let from_file = secret::read_lines(&path).map_err(|e| Error::SecretFile("--key-file", path.clone(), e))?;
        if from_file.is_empty() {
            return Err(Error::EmptySecretFile("--key-file", path));
        }
        keys.extend(from_file);
    }
    let admin_token = match admin_token_file {
        Some(path) => {
            let lines =
                secret::read_lines(&path).map_err(|e| Error::SecretFile("--admin-token-file", path.clone(), e))?;
            Some(
                lines
                    .into_iter()
                    .next()
                    .ok_or(Error::EmptySecretFile("--admin-token-file", path))?,
            )
        }
        None => admin_token.filter(|t| !t.is_empty()),
    };
    let event_names = event::EventNames::new(event_names).map_err(Error::EventNames)?;
    let global_notices = notices::Notices::global(latest_version, notices);
    let notices = match &notices_file {
        Some(path) => notices::Notices::load(path, global_notices.clone()).map_err(Error::Notices)?,
        None => global_notices.clone(),
    };
    let name = store::db_name(&db);
    let store: std::sync::Arc<dyn Store> = match store::postgres_url(&db) {
        Some(url) => Postgres::serve(url, busy_timeout, retain).map(|s| std::sync::Arc::new(s) as _),
        None => Sqlite::serve(&db, busy_timeout, retain).map(|s| std::sync::Arc::new(s) as _),
    }
    .map_err(|e| Error::OpenDatabase(name.clone(), e))?;
    let settings = http::Settings {
        listen,
        store,
        db: name,
        keys: ingest::Keys::new(keys),
        notices,
        notices_file,
        global_notices,
        forward,
        public: public.then_some(public_k),
        retain,
        header_timeout,
        admin_token,
        event_names,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(http::serve(settings))
}

fn report(args: ReportArgs) -> Result<(), Error> {
    let now = clock::now_ms();
    let window = window::resolve(args.since.as_ref(), args.from.as_ref(), args.to.as_ref(), now)
        .unwrap_or_else(|e| Cli::command().error(clap::error::ErrorKind::ValueValidation, e).exit());
    let query = report::Query {
        window,
        product: args.product,
        show_emails: args.show_emails,
        include_ci: args.include_ci,
        include_agents: args.include_agents,
        running_ms: i64::try_from(args.running_window.as_millis()).unwrap_or(i64::MAX),
        now_ms: now,
    };
    let store = existing(&args.db)?;
    let report = report::run(&*store, &query)?;
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

/// The database of `report`, `forget` and `export`, which must exist (a PostgreSQL database
/// gets its schema if it has none yet).
fn existing(db: &std::path::Path) -> Result<Box<dyn Store>, Error> {
    let store = match store::postgres_url(db) {
        Some(url) => Postgres::open(url, std::time::Duration::from_secs(5)).map(|s| Box::new(s) as Box<dyn Store>),
        None if !db.exists() => return Err(Error::DatabaseMissing(db.to_path_buf())),
        None => Sqlite::existing(db).map(|s| Box::new(s) as Box<dyn Store>),
    };
    store.map_err(|e| Error::OpenDatabase(store::db_name(db), e))
}

fn forget(args: ForgetArgs) -> Result<(), Error> {
    let done = existing(&args.db)?.forget(&args.id)?;
    if done.events == 0 && done.installations == 0 {
        println!(
            "no events of installation {} in {}",
            args.id,
            store::db_name(&args.db).display()
        );
    } else {
        println!(
            "forgot installation {}: {} events and {} installation records deleted",
            args.id, done.events, done.installations
        );
    }
    Ok(())
}

fn rebuild(args: RebuildArgs) -> Result<(), Error> {
    let done = existing(&args.db)?.rebuild()?;
    println!(
        "rebuilt the report's aggregates in {}: {} installations, {} error, support and unavailable-beacon events",
        store::db_name(&args.db).display(),
        done.installations,
        done.events
    );
    Ok(())
}

fn export(args: ExportArgs) -> Result<(), Error> {
    use std::io::Write;
    let store = existing(&args.db)?;
    let result = match &args.output {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            // The events hold support emails: the file is the owner's only.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)?;
            let mut out = std::io::BufWriter::new(file);
            let n = store::export::export(&*store, args.format, &mut out)?;
            out.flush()?;
            eprintln!("exported {n} events to {}", path.display());
            Ok(())
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            store::export::export(&*store, args.format, &mut out)
                .and_then(|_| out.flush().map_err(store::StoreError::Io))
        }
    };
    match result {
        // A closed pipe (`export | head`) is not an error worth reporting.
        Err(store::StoreError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
