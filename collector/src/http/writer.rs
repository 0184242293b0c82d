//! The one thread that stores requests' events, a request at a time. Requests queue in two lanes
//! and small ones go first, so that an installer's single event waits behind at most the insert
//! under way and the small ones queued before it; a large request waits behind at most
//! [`SMALL_IN_A_ROW`] small ones. The thread stays with the store from one request to the next:
//! handing the writer from thread to thread cost as much as the gaps it left between inserts
//! (measured: the database was idle 15–20% of the time under two clients posting batches).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::event::Event;
use crate::store::{Inserted, Prepared, Store, StoreError};

/// Small requests stored in a row while a large one waits.
const SMALL_IN_A_ROW: usize = 8;

/// A request's events to store, and where the outcome goes (with the events, so that they are
/// freed by the request's task instead of the writer).
struct Job {
    events: Vec<Event>,
    received_at_ms: i64,
    prepared: Prepared,
    done: oneshot::Sender<(Result<Inserted, StoreError>, Vec<Event>, Prepared)>,
}

/// The two queues, and how many small requests were taken since the last large one.
struct Lanes<J> {
    small: VecDeque<J>,
    large: VecDeque<J>,
    small_in_a_row: usize,
}

impl<J> Default for Lanes<J> {
    fn default() -> Lanes<J> {
        Lanes {
            small: VecDeque::new(),
            large: VecDeque::new(),
            small_in_a_row: 0,
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

/// The queue in front of the writer thread.
pub struct Writer {
    lanes: Arc<(Mutex<Lanes<Job>>, Condvar)>,
}

impl Writer {
    /// Starts the writer thread on `store`; it runs until the process exits.
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<Writer> {
        let lanes: Arc<(Mutex<Lanes<Job>>, Condvar)> = Arc::default();
        let queue = Arc::clone(&lanes);
        std::thread::Builder::new().name("writer".into()).spawn(move || {
            loop {
                let job = {
                    let (lanes, ready) = &*queue;
                    let mut lanes = lock(lanes);
                    loop {
                        match lanes.next() {
                            Some(job) => break job,
                            None => lanes = ready.wait(lanes).unwrap_or_else(|e| e.into_inner()),
                        }
                    }
                };
                let inserted = store.insert_prepared(&job.events, job.received_at_ms, &job.prepared);
                // A request that gave up (its client went away) no longer waits for the outcome.
                let _ = job.done.send((inserted, job.events, job.prepared));
            }
        })?;
        Ok(Writer { lanes })
    }

    /// Stores `events` (see [`Store::insert_prepared`]) in its turn; `large` requests queue in
    /// their own lane.
    pub async fn insert(
        &self,
        events: Vec<Event>,
        received_at_ms: i64,
        prepared: Prepared,
        large: bool,
    ) -> Result<Inserted, StoreError> {
        let (done, outcome) = oneshot::channel();
        let job = Job {
            events,
            received_at_ms,
            prepared,
            done,
        };
        {
            let (lanes, ready) = &*self.lanes;
            let mut lanes = lock(lanes);
            if large {
                lanes.large.push_back(job);
            } else {
                lanes.small.push_back(job);
            }
            ready.notify_one();
        }
        match outcome.await {
            Ok((inserted, _events, _prepared)) => inserted,
            Err(_) => Err(StoreError::Io(std::io::Error::other("the writer thread stopped"))),
        }
    }
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
