//! What install-beacon keeps on disk between calls: the state directory and its lock, the saved
//! choices, the installation ID, throttling records, step times and network outages.

pub mod files;
pub mod identity;
pub mod outage;
pub mod state;
pub mod steps;
pub mod throttle;
