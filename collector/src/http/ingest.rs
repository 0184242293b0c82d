//! The ingest routes: read the body within its limits, parse it (pure, in `crate::ingest`), store
//! the events, and answer as the client's own backend would.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::auth::header_key;
use super::{App, error};
use crate::event::Protocol;
use crate::ingest::{self, IngestError};
use crate::store::{self, StoreError};

/// How long a client may take to send its body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `/v1/{kind}`: the Segment tracking API.
pub async fn segment(state: State<Arc<App>>, Path(kind): Path<String>, headers: HeaderMap, body: Body) -> Response {
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

/// Any ingest route: `protocol` says how to parse the body.
pub async fn ingest(
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

fn ingest_error(e: &IngestError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, e.message(), e.hint())
}
