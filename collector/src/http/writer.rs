//! The one thread that stores requests' events, a request at a time. Requests queue in two lanes
//! and small ones go first: a small request waits behind the insert under way, the small ones
//! queued before it and at most one large insert; a large one at the head of its lane waits
//! behind at most [`SMALL_IN_A_ROW`] small ones. A request keeps its admission ticket until it
//! is stored, so the lanes' limits also bound the queue, and one whose client went away before
//! its turn is not stored. The thread stays with the store from one request to the next: handing
//! the writer from thread to thread left the database idle 15–20% of the time under two clients
//! posting batches.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::admission::Ticket;
use crate::event::Event;
use crate::store::{Inserted, Prepared, Store, StoreError};

/// Small requests stored in a row while a large one waits.
const SMALL_IN_A_ROW: usize = 8;

/// What the writer sends back: the outcome, and the request's events, freed by the request's
/// task instead of the writer.
type Outcome = (Result<Inserted, StoreError>, Vec<Event>, Prepared);

/// A request's events to store, its place in the admission lanes, and where the outcome goes.
struct Job {
    events: Vec<Event>,
    received_at_ms: i64,
    prepared: Prepared,
    _ticket: Ticket,
    done: oneshot::Sender<Outcome>,
}

/// The two queues, how many small requests were taken since the last large one, and whether
/// the writer is gone (stopped, or its thread died).
struct Lanes<J> {
    small: VecDeque<J>,
    large: VecDeque<J>,
    small_in_a_row: usize,
    closed: bool,
}

impl<J> Default for Lanes<J> {
    fn default() -> Lanes<J> {
        Lanes {
            small: VecDeque::new(),
            large: VecDeque::new(),
            small_in_a_row: 0,
            closed: false,
        }
    }
}

impl<J> Lanes<J> {
    /// The request to store next: small ones first, but not more than [`SMALL_IN_A_ROW`] while
    /// a large one waits.
    fn next(&mut self) -> Option<J> {
        if !self.small.is_empty() && (self.large.is_empty() || self.small_in_a_row < SMALL_IN_A_ROW) {
            self.small_in_a_row += 1;
            self.small.pop_front()
        } else {
            self.small_in_a_row = 0;
            self.large.pop_front()
        }
    }
}

type Shared = Arc<(Mutex<Lanes<Job>>, Condvar)>;

/// The queue in front of the writer thread; dropping it lets the thread finish the request under
/// way and waits for it (the store is then closed cleanly).
pub struct Writer {
    lanes: Shared,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<Writer> {
        let lanes: Shared = Arc::default();
        let queue = Arc::clone(&lanes);
        let thread = std::thread::Builder::new().name("writer".into()).spawn(move || {
            // Closes the lanes however the thread ends, so that no request waits for it.
            let _closing = Closing(Arc::clone(&queue));
            while let Some(job) = take(&queue) {
                // Its client went away while it waited: not stored, as before its turn.
                if job.done.is_closed() {
                    continue;
                }
                let inserted = store.insert_prepared(&job.events, job.received_at_ms, &job.prepared);
                let _ = job.done.send((inserted, job.events, job.prepared));
            }
        })?;
        Ok(Writer {
            lanes,
            thread: Some(thread),
        })
    }

    /// Stores `events` (see [`Store::insert_prepared`]) in its turn; `ticket` says its lane and
    /// is held until then.
    pub async fn insert(
        &self,
        events: Vec<Event>,
        received_at_ms: i64,
        prepared: Prepared,
        ticket: Ticket,
    ) -> Result<Inserted, StoreError> {
        let (done, outcome) = oneshot::channel();
        let large = ticket.is_large();
        let job = Job {
            events,
            received_at_ms,
            prepared,
            _ticket: ticket,
            done,
        };
        {
            let (lanes, ready) = &*self.lanes;
            let mut lanes = lock(lanes);
            if lanes.closed {
                return Err(stopped());
            }
            if large {
                lanes.large.push_back(job);
            } else {
                lanes.small.push_back(job);
            }
            ready.notify_one();
        }
        match outcome.await {
            Ok((inserted, _events, _prepared)) => inserted,
            Err(_) => Err(stopped()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        close(&self.lanes);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The next job, waiting for one; `None` once the lanes are closed.
fn take(shared: &Shared) -> Option<Job> {
    let (lanes, ready) = &**shared;
    let mut lanes = lock(lanes);
    loop {
        if lanes.closed {
            return None;
        }
        if let Some(job) = lanes.next() {
            return Some(job);
        }
        lanes = ready.wait(lanes).unwrap_or_else(|e| e.into_inner());
    }
}

/// Closes the lanes: queued requests are answered with an error (their senders dropped).
fn close(shared: &Shared) {
    let (lanes, ready) = &**shared;
    let mut lanes = lock(lanes);
    lanes.closed = true;
    lanes.small.clear();
    lanes.large.clear();
    ready.notify_all();
}

struct Closing(Shared);

impl Drop for Closing {
    fn drop(&mut self) {
        close(&self.0);
    }
}

fn stopped() -> StoreError {
    StoreError::Io(std::io::Error::other("the writer thread stopped"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_requests_go_first_but_a_large_one_waits_for_few() {
        let mut lanes = Lanes::default();
        lanes.large.extend(["L1", "L2"].map(String::from));
        lanes.small.extend((1..=10).map(|n| format!("s{n}")));
        let order: Vec<String> = std::iter::from_fn(|| lanes.next()).collect();
        assert_eq!(
            order,
            ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "L1", "s9", "s10", "L2"]
        );
    }
}
