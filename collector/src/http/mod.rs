//! The HTTP side of `serve`: routes, body limits, key checks, and the JSON answers clients expect.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http_body_util::BodyExt;
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::event::Protocol;
use crate::ingest::{self, IngestError, Keys};
use crate::report;
use crate::store::{self, StoreError};

/// Everything `serve` needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// Database file.
    pub db: PathBuf,
    /// Accepted keys.
    pub keys: Keys,
    /// Echoed as `latest_version` in accepted responses.
    pub latest_version: Option<String>,
    /// Echoed as `notices` in accepted responses.
    pub notices: Vec<String>,
    /// How long a write waits for a locked database.
    pub busy_timeout: Duration,
    /// How long a client may take to send its request headers.
    pub header_timeout: Duration,
}

/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

struct App {
    db: PathBuf,
    conn: Mutex<Connection>,
    keys: Keys,
    extra: Map<String, Value>,
}

/// Why `serve` could not start or stopped.
#[derive(Debug)]
pub enum ServeError {
    /// The database could not be opened or prepared.
    Open(PathBuf, StoreError),
    /// The address could not be bound.
    Bind(std::net::SocketAddr, std::io::Error),
    /// Serving failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Open(path, e) => write!(f, "cannot open database {}: {e}", path.display()),
            ServeError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServeError::Io(e) => write!(f, "serving failed: {e}"),
        }
    }
}

impl ServeError {
    /// How to fix it, when we can tell.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ServeError::Open(..) => Some("check that the directory of --db exists and is writable"),
            ServeError::Bind(..) => Some("pick another --listen address, or port 0 for any free port"),
            ServeError::Io(_) => None,
        }
    }
}

/// Opens the database, binds, prints `listening on http://ADDR`, and serves until Ctrl-C or SIGTERM.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let open_error = |e| ServeError::Open(settings.db.clone(), e);
    let conn = store::open(&settings.db, settings.busy_timeout).map_err(open_error)?;
    store::checkpoint_in_background(&settings.db, Duration::from_millis(500)).map_err(open_error)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| ServeError::Bind(settings.listen, e))?;
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}").map_err(ServeError::Io)?;
        out.flush().map_err(ServeError::Io)?;
    }
    let app = Arc::new(App {
        db: settings.db.clone(),
        conn: Mutex::new(conn),
        keys: settings.keys.clone(),
        extra: version_fields(&settings),
    });
    accept_loop(listener, router(app), settings.header_timeout).await;
    Ok(())
}

/// How long shutdown waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves each connection with hyper's HTTP/1 server, which closes connections whose headers do
/// not arrive within `header_timeout` (axum::serve sets no timer, so it never times them out).
/// The peer address is not kept.
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, header_timeout: Duration) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        eprintln!("warning: accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Client errors (resets, timeouts, garbage) end only that connection.
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish and SQLite closes cleanly.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// `latest_version` and `notices`, added to every accepted response when configured.
fn version_fields(settings: &Settings) -> Map<String, Value> {
    let mut extra = Map::new();
    if let Some(v) = &settings.latest_version {
        extra.insert("latest_version".into(), json!(v));
    }
    if settings.latest_version.is_some() || !settings.notices.is_empty() {
        extra.insert("notices".into(), json!(settings.notices));
    }
    extra
}

fn router(app: Arc<App>) -> Router {
    let posthog = post(|s: State<Arc<App>>, h: HeaderMap, b: Body| ingest(s, Protocol::Posthog, "track", h, b));
    Router::new()
        .route("/v1/{kind}", post(segment))
        .route("/batch", posthog.clone())
        .route("/batch/", posthog.clone())
        .route("/capture", posthog.clone())
        .route("/capture/", posthog.clone())
        .route("/e", posthog.clone())
        .route("/e/", posthog.clone())
        .route("/i/v0/e", posthog.clone())
        .route("/i/v0/e/", posthog)
        .route(
            "/events",
            post(|s: State<Arc<App>>, h: HeaderMap, b: Body| ingest(s, Protocol::Json, "track", h, b)),
        )
        .route("/", get(page))
        .route("/report.json", get(report_json))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint", "see the collector README") })
        .with_state(app)
}

async fn segment(state: State<Arc<App>>, Path(kind): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let default_type = match kind.as_str() {
        "batch" | "track" => "track",
        "identify" => "identify",
        "page" => "page",
        "screen" => "screen",
        "group" => "group",
        "alias" => "alias",
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("no Segment endpoint /v1/{kind}"),
                "use /v1/batch",
            );
        }
    };
    ingest(state, Protocol::Segment, default_type, headers, body).await
}

async fn ingest(
    State(app): State<Arc<App>>,
    protocol: Protocol,
    default_type: &'static str,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let raw = match read_body(body).await {
        Ok(raw) => raw,
        Err(resp) => return resp,
    };
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let batch = ingest::decode_body(encoding, &raw)
        .and_then(|bytes| ingest::parse(protocol, &bytes, header_key(&headers), default_type, &app.keys));
    let batch = match batch {
        Ok(b) => b,
        Err(e) => return ingest_error(&e),
    };
    if !batch.events.is_empty() {
        let app2 = Arc::clone(&app);
        let result = tokio::task::spawn_blocking(move || {
            // A panic mid-request rolled its transaction back, so a poisoned lock is still usable.
            let mut conn = app2.conn.lock().unwrap_or_else(|e| e.into_inner());
            store::insert(&mut conn, &batch.events, crate::clock::now_ms())
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(StoreError::Busy)) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database is locked by another writer",
                    "retry later; nothing from this request was stored",
                );
            }
            Ok(Err(e)) => {
                eprintln!("error: storing events: {e}");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &e.to_string(),
                    "see the collector's log",
                );
            }
            Err(e) => {
                eprintln!("error: storing events: {e}");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storing events failed",
                    "see the collector's log",
                );
            }
        }
    }
    let mut body = match protocol {
        Protocol::Posthog => json!({"status": 1}),
        Protocol::Segment | Protocol::Json => json!({"success": true}),
    };
    if let Value::Object(m) = &mut body {
        m.extend(app.extra.clone());
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Reads the body within the size and time limits.
async fn read_body(body: Body) -> Result<Vec<u8>, Response> {
    let limited = http_body_util::Limited::new(body, ingest::MAX_REQUEST_BYTES);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "request body took too long",
            "send the body at once",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ingest_error(&ingest::too_large(ingest::MAX_REQUEST_BYTES + 1)))
        }
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("could not read request body: {e}"),
            "resend",
        )),
    }
}

/// The key in `Authorization: Basic base64(key:)` or `Authorization: Bearer key`.
fn header_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
        (!user.is_empty()).then(|| user.to_string())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.trim().to_string()).filter(|k| !k.is_empty())
    } else {
        None
    }
}

fn ingest_error(e: &IngestError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, e.message(), e.hint())
}

fn error(status: StatusCode, message: &str, hint: &str) -> Response {
    (
        status,
        axum::Json(json!({"success": false, "error": message, "hint": hint})),
    )
        .into_response()
}

/// Query parameters of `/` and `/report.json`.
#[derive(Debug, serde::Deserialize)]
struct ReportParams {
    since: Option<String>,
    product: Option<String>,
}

async fn build_report(app: &App, params: ReportParams) -> Result<report::Report, Response> {
    let now = crate::clock::now_ms();
    let mut query = report::Query {
        product: params.product.filter(|p| !p.is_empty()),
        now_ms: now,
        ..Default::default()
    };
    if let Some(since) = params.since.filter(|s| !s.is_empty()) {
        let d = humantime::parse_duration(&since).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("invalid since {since:?}: {e}"),
                "use e.g. ?since=30d",
            )
        })?;
        query.since_ms = Some(now - d.as_millis() as i64);
        query.since_label = Some(since);
    }
    let db = app.db.clone();
    let result = tokio::task::spawn_blocking(move || {
        let conn = store::open_existing(&db)?;
        report::run(&conn, &query)
    })
    .await;
    match result {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(StoreError::Busy)) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "database is locked",
            "reload in a moment",
        )),
        Ok(Err(e)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
            "see the collector's log",
        )),
        Err(_) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "report failed",
            "see the collector's log",
        )),
    }
}

async fn report_json(State(app): State<Arc<App>>, UrlQuery(params): UrlQuery<ReportParams>) -> Response {
    match build_report(&app, params).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(resp) => resp,
    }
}

async fn page(State(app): State<Arc<App>>, UrlQuery(params): UrlQuery<ReportParams>) -> Response {
    match build_report(&app, params).await {
        Ok(r) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::present::page::render(&r),
        )
            .into_response(),
        Err(resp) => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_keys() {
        let mut h = HeaderMap::new();
        let b64 = base64::engine::general_purpose::STANDARD.encode("wk:");
        h.insert(header::AUTHORIZATION, format!("Basic {b64}").parse().unwrap());
        assert_eq!(header_key(&h).as_deref(), Some("wk"));
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert_eq!(header_key(&h).as_deref(), Some("tok"));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(header_key(&h), None);
    }
}
