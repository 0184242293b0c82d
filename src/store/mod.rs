//! What install-beacon keeps on disk between calls: the state directory and its lock, the saved
//! choices, the installation ID, throttling records and step times.

pub mod files;
pub mod identity;
pub mod state;
pub mod steps;
pub mod throttle;
