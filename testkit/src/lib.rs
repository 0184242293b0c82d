//! What both integration suites (install-beacon's `tests/it`, beacon-collector's
//! `collector/tests/it`) share: a recording HTTP server on 127.0.0.1 ([`Server`]), one poll helper
//! for what happens in the background ([`eventually`]), a throwaway PostgreSQL ([`Postgres`]), and the loud skip of a test whose outside
//! tool is missing ([`tools`]).

mod postgres;
mod server;
pub mod tools;

use std::time::{Duration, Instant};

pub use postgres::Postgres;
pub use server::{Received, Reply, Server};

/// Polls `probe` every 50 ms until it returns `Some`, and returns that value; panics after
/// `within`, naming `what` was awaited and the last value seen. For what a test cannot wait on
/// directly (a background delivery, a reloaded file, a relay's queue).
pub fn eventually<T, L: std::fmt::Debug>(within: Duration, what: &str, mut probe: impl FnMut() -> Result<T, L>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {within:?}; last seen: {last:#?}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
