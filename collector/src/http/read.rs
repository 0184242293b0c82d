//! The read routes: the report page and `/report.json`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query as UrlQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{App, error};
use crate::present::page::Picker;
use crate::report;
use crate::store::StoreError;
use crate::window::{self, Day, Since};

/// Query parameters of `/` and `/report.json`: the same choices as `report`'s flags.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReportParams {
    since: Option<String>,
    from: Option<String>,
    to: Option<String>,
    product: Option<String>,
    /// Count CI installations in the funnels (`1`, `true` or `on`).
    include_ci: Option<String>,
    include_agents: Option<String>,
}

impl ReportParams {
    /// The query these parameters ask for; `admin` (the admin token was given) adds the emails of
    /// support requests.
    fn query(&self, now_ms: i64, admin: bool) -> Result<report::Query, String> {
        let since = given(&self.since).map(Since::parse).transpose()?;
        let from = given(&self.from).map(Day::parse).transpose()?;
        let to = given(&self.to).map(Day::parse).transpose()?;
        Ok(report::Query {
            window: window::resolve(since.as_ref(), from.as_ref(), to.as_ref(), now_ms)?,
            product: given(&self.product).map(String::from),
            show_emails: admin,
            include_ci: flag(&self.include_ci),
            include_agents: flag(&self.include_agents),
            running_ms: i64::try_from(report::RUNNING_WINDOW.as_millis()).unwrap_or(i64::MAX),
            now_ms,
        })
    }

    /// The page's picker: every product, and the current choice.
    fn picker(self, products: Vec<String>) -> Picker {
        Picker {
            products,
            since: self.since.unwrap_or_default(),
            from: self.from.unwrap_or_default(),
            to: self.to.unwrap_or_default(),
            product: self.product.unwrap_or_default(),
        }
    }
}

/// A parameter, unless absent or empty (as an unfilled form field sends it).
/// A checkbox or `1`/`true` in the URL.
fn flag(value: &Option<String>) -> bool {
    given(value).is_some_and(|v| matches!(v, "1" | "true" | "on"))
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
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
    render: fn(&report::Report, ReportParams, Vec<String>) -> Response,
) -> Response {
    if let Some(refused) = app.read_access.refusal(headers) {
        return refused;
    }
    let admin = matches!(app.read_access, super::auth::ReadAccess::Token(_));
    let query = match params.query(crate::clock::now_ms(), admin) {
        Ok(query) => query,
        Err(message) => {
            return error(
                StatusCode::BAD_REQUEST,
                &message,
                "use e.g. ?since=30d or ?from=2026-11-01&to=2026-11-30",
            );
        }
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
        app2.store.check()?;
        let products = report::product_names(&*app2.store)?;
        report::run(&*app2.store, &query).map(|r| render(&r, params, products))
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
    serve_report(app, &headers, params, |r, _, _| super::json_report(&r)).await
}

/// `GET /`: the report as one HTML page.
pub async fn page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<ReportParams>,
) -> Response {
    serve_report(app, &headers, params, |r, params, products| {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::present::page::render(r, &params.picker(products)),
        )
            .into_response()
    })
    .await
}
