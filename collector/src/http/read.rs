//! The read routes: the report page and `/report.json`.

use std::sync::Arc;

use axum::extract::{Query as UrlQuery, State};
use axum::http::{StatusCode, header};
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

async fn build_report(app: &App, params: ReportParams) -> Result<report::Report, Response> {
    let since = match params.since.filter(|s| !s.is_empty()) {
        Some(text) => Some(
            report::Since::parse(&text)
                .map_err(|message| error(StatusCode::BAD_REQUEST, &message, "use e.g. ?since=30d"))?,
        ),
        None => None,
    };
    let query = report::Query {
        since,
        product: params.product.filter(|p| !p.is_empty()),
        show_emails: false,
        now_ms: crate::clock::now_ms(),
    };
    let db = app.db.clone();
    let result = tokio::task::spawn_blocking(move || {
        let conn = store::open_reader(&db)?;
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

/// `GET /report.json`: the report as JSON.
pub async fn report_json(State(app): State<Arc<App>>, UrlQuery(params): UrlQuery<ReportParams>) -> Response {
    match build_report(&app, params).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(resp) => resp,
    }
}

/// `GET /`: the report as one HTML page.
pub async fn page(State(app): State<Arc<App>>, UrlQuery(params): UrlQuery<ReportParams>) -> Response {
    match build_report(&app, params).await {
        Ok(r) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::present::page::render(&r),
        )
            .into_response(),
        Err(resp) => resp,
    }
}
