//! `serve --retain`: a retention pass at start and then every hour (see [`Store::retain`]).

use std::sync::Arc;
use std::time::Duration;

use super::{Retained, Store, StoreError};

/// How often `serve --retain` applies retention after start.
const EVERY: Duration = Duration::from_secs(3600);

/// One retention pass on `store`, keeping `keep` of raw events; says what it did.
pub fn apply(store: &dyn Store, keep: Duration) -> Result<Retained, StoreError> {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let done = store.retain(crate::clock::now_ms().saturating_sub(keep_ms))?;
    if done.events > 0 || done.installations > 0 {
        eprintln!(
            "retention: deleted {} events older than {} days, dropped the ID of {} installations",
            done.events,
            keep.as_secs() / 86_400,
            done.installations
        );
    }
    Ok(done)
}

/// Applies retention every hour on its own thread; a failed pass is reported and retried.
pub fn in_background(store: Arc<dyn Store>, keep: Duration) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                if let Err(e) = apply(&*store, keep) {
                    eprintln!("warning: retention pass failed: {e}; next try in an hour");
                }
            }
        })
        .map_err(StoreError::Io)?;
    Ok(())
}
