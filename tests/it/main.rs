//! Integration tests: the real binary against real loopback servers. One test crate, so every
//! helper in `support` is shared (and an unused one is a warning) and the suites link once.

mod audit;
mod branding;
mod completions;
mod consent_policy;
mod core;
mod detection;
mod errors_only;
mod fetch_snippet;
mod hooks;
mod installers;
mod macho;
mod messages;
mod network;
mod otlp;
mod packaging;
mod prompt;
mod readme;
mod release;
mod reliability;
mod runner;
mod security;
mod services;
mod shell;
mod support;
mod windows;
