//! The HTTP side of `serve`: binding, routes, and the JSON answers clients expect.

mod accept;
mod admission;
mod auth;
mod ingest;
mod public;
mod read;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::Error;
use crate::event::{EventNames, Protocol};
use crate::ingest::Keys;
use crate::notices::{self, Notices};
use crate::relay;
use crate::store::{self, Store};

/// Everything `serve` needs, resolved from the command line.
pub struct Settings {
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// Database file (named in messages).
    pub db: PathBuf,
    /// The store, opened on it.
    pub store: Arc<dyn Store>,
    /// Accepted keys.
    pub keys: Keys,
    /// `latest_version` and `notices` of accepted responses, as loaded at start.
    pub notices: Notices,
    /// The notices file to reload, if any.
    pub notices_file: Option<PathBuf>,
    /// The command-line notices the file is laid over on each reload.
    pub global_notices: Notices,
    /// Backends every stored event is forwarded to.
    pub forward: Vec<relay::Target>,
    /// Serve `/public` with buckets of at least this many installations.
    pub public: Option<u64>,
    /// Raw events older than this are deleted at start and hourly.
    pub retain: Option<Duration>,
    /// How long a client may take to send its request headers.
    pub header_timeout: Duration,
    /// The token read routes require, if any.
    pub admin_token: Option<String>,
    /// Branded event names and the checkpoints they stand for.
    pub event_names: EventNames,
}

/// State shared by all routes.
pub struct App {
    db: PathBuf,
    store: Arc<dyn Store>,
    keys: Keys,
    event_names: EventNames,
    /// Event names outside the funnel already noted on stderr.
    noted_names: std::sync::Mutex<std::collections::HashSet<String>>,
    read_access: auth::ReadAccess,
    admission: admission::Admission,
    /// The thread that stores requests' events.
    writer: writer::Writer,
    /// Permits for report builds (see [`read::REPORT_BUILDS`]).
    report_builds: Arc<tokio::sync::Semaphore>,
    notices: notices::Shared,
    forwarder: relay::worker::Forwarder,
    public: Option<public::Public>,
}

/// Opens the database, binds, prints `listening on http://ADDR`, and serves until Ctrl-C or SIGTERM.
pub async fn serve(settings: Settings) -> Result<(), Error> {
    let open_error = |e| Error::OpenDatabase(settings.db.clone(), e);
    let store = Arc::clone(&settings.store);
    let adopted = store.adopt_renamed(&settings.event_names).map_err(open_error)?;
    if let Some(keep) = settings.retain {
        store::retention::apply(&*store, keep).map_err(open_error)?;
        store::retention::in_background(Arc::clone(&store), keep).map_err(open_error)?;
    }
    let (forwarder, left) = relay::worker::start(&store, &settings.forward).map_err(open_error)?;
    for (backend, n) in left {
        eprintln!(
            "note: {n} events wait in the queue for {backend}, which no --forward names any more; \
             they are sent when one does again"
        );
    }
    if let Some(files) = accept::raise_open_files().filter(|&n| n < accept::FEW_OPEN_FILES) {
        eprintln!(
            "note: at most {files} open files (the hard limit), so at most about that many connections; \
             raise it with ulimit -Hn or LimitNOFILE= for busy installers"
        );
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| Error::Bind(settings.listen, e))?;
    let addr = listener.local_addr()?;
    // Said before the address line, so that whoever waits for that line has seen these.
    let read_access = auth::ReadAccess::new(settings.admin_token.clone(), settings.listen);
    if let Some(notice) = read_access.notice() {
        eprintln!("{notice}");
    }
    if adopted > 0 {
        eprintln!("note: {adopted} stored events sent under a branded name now count under the standard name");
    }
    let writer = writer::Writer::start(Arc::clone(&store))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    let app = Arc::new(App {
        db: settings.db.clone(),
        store,
        keys: settings.keys.clone(),
        event_names: settings.event_names.clone(),
        noted_names: std::sync::Mutex::default(),
        read_access,
        admission: admission::Admission::default(),
        writer,
        report_builds: Arc::new(tokio::sync::Semaphore::new(read::REPORT_BUILDS)),
        notices: Arc::new(std::sync::RwLock::new(Arc::new(settings.notices.clone()))),
        forwarder,
        public: settings.public.map(public::Public::new),
    });
    if let Some(path) = settings.notices_file.clone() {
        tokio::spawn(notices::watch(
            path,
            settings.global_notices.clone(),
            Arc::clone(&app.notices),
        ));
    }
    accept::accept_loop(listener, router(app), settings.header_timeout).await;
    Ok(())
}

fn router(app: Arc<App>) -> Router {
    let posthog = post(|s: State<Arc<App>>, h: HeaderMap, b: Body| ingest::ingest(s, Protocol::Posthog, "track", h, b));
    let plain = post(|s: State<Arc<App>>, h: HeaderMap, b: Body| ingest::ingest(s, Protocol::Json, "track", h, b));
    Router::new()
        .route("/v1/logs", post(ingest::otlp_logs))
        .route("/v1/{kind}", post(ingest::segment))
        .route("/batch", posthog.clone())
        .route("/batch/", posthog.clone())
        .route("/capture", posthog.clone())
        .route("/capture/", posthog.clone())
        .route("/e", posthog.clone())
        .route("/e/", posthog.clone())
        .route("/i/v0/e", posthog.clone())
        .route("/i/v0/e/", posthog)
        .route("/events", plain.clone())
        // install-beacon's JSON protocol posts to the endpoint as given: the base URL works too.
        .route("/", get(read::page).merge(plain))
        .route("/report.json", get(read::report_json))
        .route("/public", get(public::page))
        .route("/public.json", get(public::json))
        .route("/healthz", get(healthz))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint", "see the collector README") })
        .with_state(app)
}

/// `ok` while the database file is the one opened; 503 once it was deleted or replaced.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.check() {
        Ok(()) => "ok\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: {e}\n")).into_response(),
    }
}

/// A report as JSON, with the stored text's control characters escaped (see
/// [`crate::present::json_text`]).
fn json_report<T: serde::Serialize + ?Sized>(value: &T) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::present::json_text(value, false),
    )
        .into_response()
}

/// A JSON error answer: what went wrong and how to fix it.
fn error(status: StatusCode, message: &str, hint: &str) -> Response {
    (
        status,
        axum::Json(json!({"success": false, "error": message, "hint": hint})),
    )
        .into_response()
}
