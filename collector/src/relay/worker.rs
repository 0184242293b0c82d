//! One thread per backend sends the queue oldest first, and decides from each answer whether to
//! dequeue, split the batch, or wait and retry.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use super::Target;
use super::batch;
use crate::clock;
use crate::store::{Forward, Queued, Settled, Store, StoreError};

/// Bytes of properties per batch at most (Segment takes 500 KB per request, with the envelope).
const BATCH_BYTES: usize = 400 * 1024;
/// How often an idle worker looks at the queue without being woken.
const IDLE: Duration = Duration::from_secs(2);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Per-request time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Wakes the workers when new events were stored.
#[derive(Debug, Clone, Default)]
pub struct Forwarder {
    wake: Vec<SyncSender<()>>,
}

impl Forwarder {
    /// Tells every worker there is something new (never blocks).
    pub fn notify(&self) {
        for w in &self.wake {
            match w.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
    }
}

/// Has `store` queue every event stored from now on for `targets`, and starts one worker thread
/// per target. Returns the wake-up handle, and the backends no target names any more that still
/// have events queued, with how many.
pub fn start(store: &Arc<dyn Store>, targets: &[Target]) -> Result<(Forwarder, Vec<(String, u64)>), StoreError> {
    // The store keeps the URL to show it: without credentials.
    let named: Vec<(String, String)> = targets.iter().map(|t| (t.queue(), t.shown_url())).collect();
    let backends: Vec<Forward<'_>> = targets
        .iter()
        .zip(&named)
        .map(|(t, (name, url))| Forward {
            name,
            url,
            only: t.only(),
        })
        .collect();
    let left = store.forward_to(&backends)?;
    let mut wake = Vec::new();
    for target in targets {
        let store = Arc::clone(store);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let target = target.clone();
        std::thread::Builder::new()
            .name(format!("forward-{}", target.queue()))
            .spawn(move || run(&*store, &target, &rx))
            .map_err(StoreError::Io)?;
        wake.push(tx);
    }
    Ok((Forwarder { wake }, left))
}

/// What the backend made of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Accepted,
    /// A 4xx that will not change on retry (400, 413, ...): these events are refused.
    Refused(String),
    /// No answer, 5xx, 408, 429, or a key refused (401/403, which the vendor can fix): retry.
    Retry(String),
}

/// Classifies an HTTP status, or a transport error.
pub fn verdict(answer: Result<u16, String>) -> Verdict {
    match answer {
        Ok(200..=299) => Verdict::Accepted,
        Ok(code @ (401 | 403)) => Verdict::Retry(format!("HTTP {code}: the backend refused --forward-key")),
        Ok(code @ (408 | 429 | 500..=599)) => Verdict::Retry(format!("HTTP {code}")),
        Ok(code) => Verdict::Refused(format!("HTTP {code}")),
        Err(e) => Verdict::Retry(e),
    }
}

/// The wait after `failures` failures in a row: 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    let secs = 1u64.checked_shl(failures.saturating_sub(1).min(16)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// How many of `events` (oldest first, at least one) fit in one batch.
pub fn fit(events: &[Queued]) -> usize {
    let mut bytes = 0;
    let n = events
        .iter()
        .take_while(|e| {
            bytes += e.properties.len() + e.event.len() + e.installation_id.len() + e.message_id.len() + 200;
            bytes <= BATCH_BYTES
        })
        .count();
    n.max(1).min(events.len())
}

fn run(store: &dyn Store, target: &Target, wake: &Receiver<()>) {
    let name = &target.queue();
    let most = target.backend.batch_events();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .user_agent(concat!("beacon-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut limit = most;
    let mut failures = 0u32;
    loop {
        let mut events = match store.queued(name, limit) {
            Ok(events) => events,
            Err(e) => {
                eprintln!("warning: forward to {name}: reading the queue failed: {e}");
                std::thread::sleep(IDLE);
                continue;
            }
        };
        if events.is_empty() {
            if let Err(RecvTimeoutError::Disconnected) = wake.recv_timeout(IDLE) {
                std::thread::sleep(IDLE);
            }
            continue;
        }
        events.truncate(fit(&events));
        let request = batch::request(target, &events, clock::now_ms());
        let outcome = match verdict(send(&agent, &request)) {
            Verdict::Accepted => {
                if failures > 0 {
                    eprintln!("forward to {name}: delivering again");
                }
                failures = 0;
                limit = (limit * 2).min(most);
                Settled::Forwarded
            }
            Verdict::Refused(_) if events.len() > 1 => {
                // Halve until the refused event is alone, so the others still go through.
                limit = events.len() / 2;
                continue;
            }
            Verdict::Refused(e) => {
                eprintln!(
                    "warning: forward to {name}: event {} refused ({e}); dropped",
                    events[0].message_id
                );
                Settled::Rejected(e)
            }
            Verdict::Retry(e) => {
                failures += 1;
                if failures == 1 {
                    eprintln!("warning: forward to {name} failing: {e}; events stay queued");
                }
                Settled::Failed(e)
            }
        };
        if let Err(e) = store.settle(name, &events, &outcome, clock::now_ms()) {
            eprintln!("warning: forward to {name}: updating the queue failed: {e}");
        }
        if failures > 0 {
            std::thread::sleep(backoff(failures));
        }
    }
}

fn send(agent: &ureq::Agent, request: &batch::Request) -> Result<u16, String> {
    let mut req = agent.post(&request.url).content_type("application/json");
    if let Some(auth) = &request.authorization {
        req = req.header("Authorization", auth);
    }
    req.send(&request.body[..])
        .map(|resp| resp.status().as_u16())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decide_dequeue_split_or_retry() {
        assert_eq!(verdict(Ok(200)), Verdict::Accepted);
        assert_eq!(verdict(Ok(400)), Verdict::Refused("HTTP 400".into()));
        assert_eq!(verdict(Ok(413)), Verdict::Refused("HTTP 413".into()));
        assert_eq!(verdict(Ok(503)), Verdict::Retry("HTTP 503".into()));
        assert_eq!(verdict(Ok(429)), Verdict::Retry("HTTP 429".into()));
        assert!(matches!(verdict(Ok(401)), Verdict::Retry(e) if e.contains("--forward-key")));
        assert_eq!(verdict(Err("refused".into())), Verdict::Retry("refused".into()));
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = [1, 2, 3, 9, 10, 40].map(|n| backoff(n).as_secs()).into();
        assert_eq!(secs, [1, 2, 4, 256, 300, 300]);
    }

    #[test]
    fn batches_stay_under_the_byte_limit() {
        let e = |len: usize| Queued {
            event_id: 0,
            message_id: String::new(),
            event: String::new(),
            installation_id: String::new(),
            ts_ms: 0,
            properties: "x".repeat(len),
        };
        assert_eq!(fit(&[e(100), e(100)]), 2);
        assert_eq!(fit(&[e(300 * 1024), e(300 * 1024)]), 1);
        assert_eq!(fit(&[e(900 * 1024)]), 1);
    }
}
