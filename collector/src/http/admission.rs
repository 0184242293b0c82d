//! Backpressure for ingest: a bounded number of requests are parsed and stored at once; past that
//! the collector answers 503 with `Retry-After` at once instead of queueing without end.
//!
//! A request takes its place in a lane only once its whole body has arrived, so clients that send
//! headers and then trickle (or stall) hold no place: bodies are read under a short deadline and a
//! byte budget shared by all requests, taken as the bytes arrive. The first 32 KB of each body come
//! from a budget of their own, so bodies that stall near 500 KB cannot keep small events out, and a
//! flood of maximal batches is refused once the large budget is spent instead of all being read.
//!
//! Small requests (one event, or a few) have their own lane, so that a flood of maximal batches
//! cannot hold up an installer's single event; at the database, large requests queue behind the
//! small ones (see `writer.rs`), so that a small one waits behind at most one large insert. A
//! request keeps its place until it is stored.

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
/// Bytes of bodies up to [`SMALL_BODY`] (each body's first bytes) held at once: 256 small bodies.
const SMALL_BUDGET: usize = 256 * SMALL_BODY;
/// Bytes of bodies past [`SMALL_BODY`] held at once: 16 maximal bodies.
const LARGE_BUDGET: usize = 16 * crate::ingest::MAX_REQUEST_BYTES;
/// Seconds a refused client is asked to wait.
const RETRY_AFTER_SECS: &str = "1";
/// Seconds a client is asked to wait while the disk is full: long enough for someone to free it.
pub const FULL_RETRY_AFTER_SECS: &str = "60";

/// The lanes and the body budgets.
#[derive(Debug)]
pub struct Admission {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
    small_bytes: Arc<Semaphore>,
    large_bytes: Arc<Semaphore>,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission {
            small: Arc::new(Semaphore::new(SMALL_LANE)),
            large: Arc::new(Semaphore::new(LARGE_LANE)),
            small_bytes: Arc::new(Semaphore::new(SMALL_BUDGET)),
            large_bytes: Arc::new(Semaphore::new(LARGE_BUDGET)),
        }
    }
}

/// The part of the body byte budgets a request holds while its body is read and decoded.
#[derive(Debug, Default)]
pub struct Held {
    small: Option<OwnedSemaphorePermit>,
    large: Option<OwnedSemaphorePermit>,
}

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

    /// Adds `len` more bytes of a body of which `read` are held already to what `held` holds of
    /// the budgets; `false` when a budget is spent.
    pub fn hold_body(&self, held: &mut Held, read: usize, len: usize) -> bool {
        let small = len.min(SMALL_BODY.saturating_sub(read));
        take(&self.small_bytes, &mut held.small, small) && take(&self.large_bytes, &mut held.large, len - small)
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
}

impl Ticket {
    /// Whether the request is in the large lane (it then queues for the writer in its own lane).
    pub fn is_large(&self) -> bool {
        self.large
    }
}

/// Adds `n` permits of `budget` to `held`; `false` when there are not that many.
fn take(budget: &Arc<Semaphore>, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> bool {
    let Ok(n) = u32::try_from(n) else { return false };
    if n == 0 {
        return true;
    }
    let Ok(more) = Arc::clone(budget).try_acquire_many_owned(n) else {
        return false;
    };
    match held {
        Some(permit) => permit.merge(more),
        None => *held = Some(more),
    }
    true
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
