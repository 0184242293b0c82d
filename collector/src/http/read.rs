//! The read routes: the report page and `/report.json`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query as UrlQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{App, error};
use crate::report;
use crate::store::{self, StoreError};

/// Query parameters of `/` and `/report.json`.
#[derive(Debug, serde::Deserialize)]
pub struct ReportParams {
    since: Option<String>,
    product: Option<String>,
}

/// Report builds at once; each holds the aggregation and the rendered answer in memory.
pub const REPORT_BUILDS: usize = 2;
/// How long a read request waits for a free build before 503.
const BUILD_WAIT: Duration = Duration::from_secs(5);

/// Checks the admin token, builds the report (at most [`REPORT_BUILDS`] at once) and renders it.
async fn serve_report(
    app: Arc<App>,
    headers: &HeaderMap,
    params: ReportParams,
    render: fn(&report::Report) -> Response,
) -> Response {
    if let Some(refused) = app.read_access.refusal(headers) {
        return refused;
    }
    let since = match params
        .since
        .filter(|s| !s.is_empty())
        .map(|text| report::Since::parse(&text))
    {
        None => None,
        Some(Ok(since)) => Some(since),
        Some(Err(message)) => return error(StatusCode::BAD_REQUEST, &message, "use e.g. ?since=30d"),
    };
    let query = report::Query {
        since,
        product: params.product.filter(|p| !p.is_empty()),
        show_emails: false,
        now_ms: crate::clock::now_ms(),
    };
    let Ok(Ok(permit)) = tokio::time::timeout(BUILD_WAIT, Arc::clone(&app.report_builds).acquire_owned()).await else {
        let mut busy = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "other reports are being built",
            "reload in a moment",
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return busy;
    };
    let app2 = Arc::clone(&app);
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        app2.db_file.check()?;
        let conn = store::open_reader(&app2.db)?;
        report::run(&conn, &query).map(|r| render(&r))
    })
    .await;
    match result {
        Ok(Ok(response)) => response,
        Ok(Err(StoreError::Busy)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "database is locked",
            "reload in a moment",
        ),
        Ok(Err(e)) => {
            // The details (which may name files) go to the operator's log, not to the client.
            eprintln!("error: building the report: {e}");
            let status = match e {
                StoreError::Gone => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, "report failed", "see the collector's log")
        }
        Err(e) => {
            eprintln!("error: building the report: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "report failed",
                "see the collector's log",
            )
        }
    }
}

/// `GET /report.json`: the report as JSON.
pub async fn report_json(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<ReportParams>,
) -> Response {
    serve_report(app, &headers, params, |r| axum::Json(r).into_response()).await
}

/// `GET /`: the report as one HTML page.
pub async fn page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<ReportParams>,
) -> Response {
    serve_report(app, &headers, params, |r| {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::present::page::render(r),
        )
            .into_response()
    })
    .await
}
