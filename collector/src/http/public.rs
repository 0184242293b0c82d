//! `/public` and `/public.json` (with `serve --public`): the transparency page, served without a
//! credential. It is built at most every [`FRESH_FOR`], so a crowd of visitors costs one report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{App, error};
use crate::report::{self, public::PublicReport};
use crate::window::Window;

/// How long a built public report is served before the next one is built.
const FRESH_FOR: Duration = Duration::from_secs(300);
/// The period the page covers.
const PERIOD_MS: i64 = 365 * crate::clock::DAY_MS;

/// The last public report built, and when.
#[derive(Debug)]
pub struct Public {
    k: u64,
    built: tokio::sync::Mutex<Option<(Instant, Arc<PublicReport>)>>,
}

impl Public {
    /// Buckets of fewer than `k` installations are merged.
    pub fn new(k: u64) -> Public {
        Public {
            k,
            built: tokio::sync::Mutex::new(None),
        }
    }
}

/// The public report, from the cache while fresh (visitors wait for one build, not one each).
async fn current(app: &Arc<App>, public: &Public) -> Result<Arc<PublicReport>, Response> {
    let mut built = public.built.lock().await;
    if let Some((at, r)) = built.as_ref()
        && at.elapsed() < FRESH_FOR
    {
        return Ok(Arc::clone(r));
    }
    let now = crate::clock::now_ms();
    let query = report::Query {
        window: Window {
            since_ms: Some(now.saturating_sub(PERIOD_MS)),
            until_ms: None,
            label: Some("last 12 months".into()),
        },
        running_ms: i64::try_from(report::RUNNING_WINDOW.as_millis()).unwrap_or(i64::MAX),
        now_ms: now,
        ..report::Query::default()
    };
    let (app2, k) = (Arc::clone(app), public.k);
    let result = tokio::task::spawn_blocking(move || {
        app2.store.check()?;
        report::run(&*app2.store, &query).map(|r| report::public::from_report(&r, k))
    })
    .await;
    match result {
        Ok(Ok(r)) => {
            let r = Arc::new(r);
            *built = Some((Instant::now(), Arc::clone(&r)));
            Ok(r)
        }
        Ok(Err(e)) => {
            eprintln!("error: building the public report: {e}");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "statistics unavailable",
                "try again later",
            ))
        }
        Err(e) => {
            eprintln!("error: building the public report: {e}");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "statistics unavailable",
                "try again later",
            ))
        }
    }
}

/// `GET /public`.
pub async fn page(State(app): State<Arc<App>>) -> Response {
    let Some(public) = app.public.as_ref() else {
        return error(StatusCode::NOT_FOUND, "no such endpoint", "start serve with --public");
    };
    match current(&app, public).await {
        Ok(r) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::present::public::render(&r),
        )
            .into_response(),
        Err(resp) => resp,
    }
}

/// `GET /public.json`.
pub async fn json(State(app): State<Arc<App>>) -> Response {
    let Some(public) = app.public.as_ref() else {
        return error(StatusCode::NOT_FOUND, "no such endpoint", "start serve with --public");
    };
    match current(&app, public).await {
        Ok(r) => super::json_report(&*r),
        Err(resp) => resp,
    }
}
