//! Backpressure for ingest: a bounded number of requests are parsed and stored at once; past that
//! the collector answers 503 with `Retry-After` at once instead of queueing without end.
//!
//! A request takes its place in a lane only once its whole body has arrived, so clients that send
//! headers and then trickle (or stall) hold no place: bodies are read under a short deadline and a
//! byte budget shared by all requests, taken as the bytes arrive.
//!
//! Small requests (one event, or a few) have their own lane, so that a flood of maximal batches
//! cannot hold up an installer's single event; and at most one large request waits for the
//! database at a time, so that a small one waits behind at most one large insert.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error;
use crate::ingest::MAX_EVENT_BYTES;

/// Largest body (as sent and after gzip) served by the small lane.
pub const SMALL_BODY: usize = MAX_EVENT_BYTES;
/// Small requests handled at once.
const SMALL_LANE: usize = 64;
/// Large requests handled at once (each holds up to 500 KB of body and its parsed events).
const LARGE_LANE: usize = 4;
/// Body bytes held by all requests being read or parsed at once (64 maximal bodies).
const BODY_BUDGET: usize = 64 * crate::ingest::MAX_REQUEST_BYTES;
/// Seconds a refused client is asked to wait.
const RETRY_AFTER_SECS: &str = "1";
/// Seconds a client is asked to wait while the disk is full: long enough for someone to free it.
pub const FULL_RETRY_AFTER_SECS: &str = "60";

/// The lanes and the database queue for large requests.
#[derive(Debug)]
pub struct Admission {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
    large_store: Arc<Semaphore>,
    body_bytes: Arc<Semaphore>,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission {
            small: Arc::new(Semaphore::new(SMALL_LANE)),
            large: Arc::new(Semaphore::new(LARGE_LANE)),
            large_store: Arc::new(Semaphore::new(1)),
            body_bytes: Arc::new(Semaphore::new(BODY_BUDGET)),
        }
    }
}

/// The part of the body byte budget a request holds while its body is read and decoded.
pub type Held = Option<OwnedSemaphorePermit>;

/// A request's place in a lane, held until it is answered.
#[derive(Debug)]
pub struct Ticket {
    _lane: OwnedSemaphorePermit,
    large: bool,
}

impl Admission {
    /// A place for a request whose body (as received) is `len` bytes; `None` when its lane is full.
    pub fn admit(&self, len: usize) -> Option<Ticket> {
        self.ticket(len > SMALL_BODY)
    }

    /// Adds `len` more bytes of body to what `held` holds of the shared budget; `false` (and
    /// nothing more held) when the budget is spent.
    pub fn hold_body(&self, held: &mut Held, len: usize) -> bool {
        let Ok(n) = u32::try_from(len) else { return false };
        if n == 0 {
            return true;
        }
        let Ok(more) = Arc::clone(&self.body_bytes).try_acquire_many_owned(n) else {
            return false;
        };
        match held {
            Some(permit) => permit.merge(more),
            None => *held = Some(more),
        }
        true
    }

    fn ticket(&self, large: bool) -> Option<Ticket> {
        let lane = if large { &self.large } else { &self.small };
        Some(Ticket {
            _lane: Arc::clone(lane).try_acquire_owned().ok()?,
            large,
        })
    }

    /// Moves a small request whose body turned out large after gzip to the large lane.
    pub fn promote(&self, ticket: Ticket, decoded_len: usize) -> Option<Ticket> {
        if ticket.large || decoded_len <= SMALL_BODY {
            Some(ticket)
        } else {
            self.ticket(true)
        }
    }

    /// Waits for the turn of a large request to use the database; small ones need none.
    pub async fn store_turn(&self, ticket: &Ticket) -> Option<OwnedSemaphorePermit> {
        if ticket.large {
            Arc::clone(&self.large_store).acquire_owned().await.ok()
        } else {
            None
        }
    }
}

/// 503 with `Retry-After`: nothing was stored, send again later.
pub fn busy() -> Response {
    retry_later(
        "the collector is busy",
        "send again after Retry-After seconds; nothing from this request was stored",
        RETRY_AFTER_SECS,
    )
}

/// 503 with `Retry-After: seconds`.
pub fn retry_later(message: &str, hint: &str, seconds: &'static str) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message, hint);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    response
}
