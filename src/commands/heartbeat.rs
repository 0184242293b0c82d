//! `heartbeat`: reports `Instance Active`, a keep-alive for cron or a healthcheck.

use crate::cli::HeartbeatArgs;
use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::store::throttle::Throttle;

use super::send::send;

/// Sends the event unless the last one is younger than `--every` (or `--min-interval`).
pub fn heartbeat(session: &Session, args: &HeartbeatArgs) -> Result<ExitStatus, Error> {
    let global = session.settings.throttle;
    let throttle = Throttle {
        min_interval: args.every.or(global.min_interval),
        ..global
    };
    send(session, &Checkpoint::Heartbeat, throttle)
}
