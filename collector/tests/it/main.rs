//! The collector's integration tests, one binary: each module runs the real `beacon-collector`
//! through the one helper API in `common`. Add a test file here as a module.

mod common;
use testkit::tools;

mod abuse;
mod bad_input;
mod branded;
mod browser;
mod clients;
mod drill_down;
mod end_to_end;
mod erasure;
mod installs;
mod limits;
mod notices;
mod otlp;
mod page;
mod postgres;
mod public;
mod relay;
mod security;
