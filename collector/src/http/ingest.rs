//! The ingest routes: read the body within its limits, parse it (pure, in `crate::ingest`), store
//! the events, and answer as the client's own backend would.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::admission;
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
    let Some(ticket) = app.admission.admit(&headers) else {
        drain(body).await;
        return admission::busy();
    };
    let raw = match read_body(body).await {
        Ok(raw) => raw,
        Err(resp) => return resp,
    };
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let bytes = match ingest::decode_body(encoding, &raw) {
        Ok(bytes) => bytes,
        Err(e) => return ingest_error(&e),
    };
    drop(raw);
    let Some(ticket) = app.admission.promote(ticket, bytes.len()) else {
        return admission::busy();
    };
    let batch = match ingest::parse(protocol, &bytes, header_key(&headers), default_type, &app.keys) {
        Ok(b) => b,
        Err(e) => return ingest_error(&e),
    };
    drop(bytes);
    if !batch.events.is_empty() {
        let turn = app.admission.store_turn(&ticket).await;
        let mut conn = Arc::clone(&app.conn).lock_owned().await;
        drop(turn);
        let app2 = Arc::clone(&app);
        let result = tokio::task::spawn_blocking(move || {
            // Checked before and after: a deleted or replaced file would take the events with it.
            app2.db_file.check()?;
            let inserted = store::insert(&mut conn, &batch.events, crate::clock::now_ms())?;
            app2.db_file.check()?;
            Ok(inserted)
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
            Ok(Err(StoreError::Gone)) => {
                eprintln!(
                    "error: {} was deleted or replaced; restart the collector",
                    app.db.display()
                );
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the collector cannot store events",
                    "retry later; the collector's operator has been told",
                );
            }
            Ok(Err(e)) => {
                eprintln!("error: storing events: {e}");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storing events failed",
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
    drop(ticket);
    let mut body = match protocol {
        Protocol::Posthog => json!({"status": 1}),
        Protocol::Segment | Protocol::Json => json!({"success": true}),
    };
    if let Value::Object(m) = &mut body {
        m.extend(app.extra.clone());
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Reads and discards a refused request's body (within the usual limits), so that the client
/// gets the answer instead of a reset connection while it is still sending.
async fn drain(body: Body) {
    let mut body = http_body_util::Limited::new(body, ingest::MAX_REQUEST_BYTES);
    let _ = tokio::time::timeout(BODY_TIMEOUT, async { while let Some(Ok(_)) = body.frame().await {} }).await;
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
