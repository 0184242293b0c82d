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
use crate::event::{Checkpoint, Protocol, names};
use crate::ingest::{self, IngestError, otlp};
use crate::store::StoreError;

/// How long a client may take to send its body once its headers are in: short, because the
/// bytes it has sent so far count against the budget all bodies share.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    let (raw, held) = match read_body(body, &app.admission).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let Some(ticket) = app.admission.admit(raw.len()) else {
        return admission::busy();
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let key = header_key(&headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // Decoding and parsing up to 500 KB is CPU work: off the threads that answer other requests.
    let app2 = Arc::clone(&app);
    let parsed = tokio::task::spawn_blocking(move || {
        let bytes = ingest::decode_body(encoding.as_deref(), &raw)?;
        drop((raw, held));
        // `None`: the body was small on the wire but not after gzip, and the large lane is full.
        let Some(ticket) = app2.admission.promote(ticket, bytes.len()) else {
            return Ok(None);
        };
        let mut batch = ingest::parse(protocol, &bytes, key, default_type, content_type.as_deref(), &app2.keys)?;
        app2.event_names.standardise(&mut batch.events);
        let received_at_ms = crate::clock::now_ms();
        let prepared = app2.store.prepare(&batch.events, received_at_ms);
        Ok(Some((batch, received_at_ms, prepared, ticket)))
    })
    .await;
    let (batch, received_at_ms, prepared, ticket) = match parsed {
        Ok(Ok(Some(parsed))) => parsed,
        Ok(Ok(None)) => return admission::busy(),
        Ok(Err(e)) => return ingest_error(&e),
        Err(e) => {
            eprintln!("error: parsing a request: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the events failed",
                "see the collector's log",
            );
        }
    };
    note_unknown_names(&app, &batch.events);
    // Notices follow the product and version of the installation that reported.
    let installation = batch
        .events
        .iter()
        .find(|e| e.product.is_some())
        .map(|e| (e.product.clone(), e.product_version.clone()));
    let refused = batch.refused.clone();
    if !batch.events.is_empty() {
        // The ticket is held until stored: the lanes' limits bound the writer's queue.
        let result = app.writer.insert(batch.events, received_at_ms, prepared, ticket).await;
        match result {
            Ok(inserted) => {
                if inserted.stored > 0 {
                    app.forwarder.notify();
                }
            }
            Err(StoreError::Busy) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database is locked by another writer",
                    "retry later; nothing from this request was stored",
                );
            }
            Err(StoreError::Full) => {
                eprintln!(
                    "error: the disk holding {} is full; events are refused (503) until space is freed",
                    app.db.display()
                );
                return admission::retry_later(
                    "the collector cannot store events now",
                    "send again after Retry-After seconds; nothing from this request was stored",
                    admission::FULL_RETRY_AFTER_SECS,
                );
            }
            Err(StoreError::Gone) => {
                eprintln!(
                    "error: {} (or its -wal file) was deleted or replaced; restart the collector",
                    app.db.display()
                );
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the collector cannot store events",
                    "retry later; the collector's operator has been told",
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
        Protocol::Otlp => return otlp_answer(&headers, StatusCode::OK, |e| otlp::answer(e, &refused)),
    };
    if let Value::Object(m) = &mut body {
        let (product, version) = installation.unwrap_or_default();
        let notices = app.notices.read().unwrap_or_else(|e| e.into_inner());
        m.extend(notices.answer(product.as_deref(), version.as_deref()));
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// At most this many event names outside the funnel are noted on stderr.
const NOTED_NAMES: usize = 20;

/// Notes on stderr, once per name, events whose name is no checkpoint: custom events, or a branded
/// install-beacon's renamed checkpoints, which count nowhere until `--event-name` maps them.
fn note_unknown_names(app: &App, events: &[crate::event::Event]) {
    let mut noted = app.noted_names.lock().unwrap_or_else(|e| e.into_inner());
    for e in events {
        let known = Checkpoint::of_standard_name(&e.event).is_some() || e.event == names::BEACON_UNAVAILABLE;
        if noted.len() >= NOTED_NAMES || known || noted.contains(&e.event) {
            continue;
        }
        eprintln!(
            "note: events named {:?} are stored but are not a step of the install funnel; if a branded \
             install-beacon sends them for a checkpoint, restart serve with --event-name CHECKPOINT={:?}",
            e.event, e.event
        );
        noted.insert(e.event.clone());
    }
}

/// How much of a body is read, and thrown away, past the point where it is refused: a client still
/// sending then reads the answer instead of a reset connection. A longer body is cut off.
const DRAIN_LIMIT: usize = 4 * ingest::MAX_REQUEST_BYTES;

/// Why a body that arrived is not kept.
enum Refusal {
    /// Longer than the request limit.
    TooLong,
    /// The bodies being read already hold the whole byte budget.
    Busy,
}

/// Reads the body within [`BODY_TIMEOUT`] and the request limit, each chunk under the shared byte
/// budget; returns it with the budget it holds. A refused body is read on and thrown away up to
/// [`DRAIN_LIMIT`], so a client still sending reads the answer instead of a reset connection.
async fn read_body(mut body: Body, admission: &admission::Admission) -> Result<(Vec<u8>, admission::Held), Response> {
    let keep = ingest::MAX_REQUEST_BYTES;
    let read = async move {
        let (mut kept, mut seen, mut held, mut refused) = (Vec::new(), 0usize, admission::Held::default(), None);
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else { continue };
            seen = seen.saturating_add(data.len());
            if refused.is_none() {
                if seen > keep {
                    refused = Some(Refusal::TooLong);
                } else if !admission.hold_body(&mut held, kept.len(), data.len()) {
                    refused = Some(Refusal::Busy);
                } else {
                    kept.extend_from_slice(&data);
                    continue;
                }
                (kept, held) = (Vec::new(), admission::Held::default());
            }
            if seen > DRAIN_LIMIT {
                break;
            }
        }
        Ok::<_, axum::Error>(match refused {
            None => Ok((kept, held)),
            Some(refusal) => Err(refusal),
        })
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "request body took too long",
            "send the body at once",
        )),
        Ok(Ok(Ok(read))) => Ok(read),
        Ok(Ok(Err(Refusal::TooLong))) => Err(ingest_error(&ingest::too_large(keep + 1))),
        Ok(Ok(Err(Refusal::Busy))) => Err(admission::busy()),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("could not read request body: {e}"),
            "resend",
        )),
    }
}

/// `/v1/logs`: OpenTelemetry logs. Answered as OTLP/HTTP asks: in the request's encoding, a
/// refusal as a `google.rpc.Status` whose message holds the error and its hint.
pub async fn otlp_logs(state: State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let answer = ingest(state, Protocol::Otlp, "track", headers.clone(), body).await;
    if answer.status().is_success() {
        return answer;
    }
    let status = answer.status();
    let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
    let refusal: Value = match axum::body::to_bytes(answer.into_body(), ingest::MAX_REQUEST_BYTES).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => Value::Null,
    };
    let text = |key: &str| refusal.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let message = format!("{} ({})", text("error"), text("hint"));
    let mut resp = otlp_answer(&headers, status, |e| otlp::status(e, &message));
    if let Some(value) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, value);
    }
    resp
}

/// A body in the encoding the OTLP request was sent in (JSON when it named none OTLP knows).
fn otlp_answer(headers: &HeaderMap, status: StatusCode, body: impl FnOnce(otlp::Encoding) -> Vec<u8>) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let encoding = otlp::Encoding::of(content_type).unwrap_or(otlp::Encoding::Json);
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body(encoding),
    )
        .into_response()
}

fn ingest_error(e: &IngestError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, e.message(), e.hint())
}
