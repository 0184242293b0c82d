//! `--background`: the event is already in the outbox; a detached `install-beacon flush` (new
//! session, stdio closed, so it outlives the installer's shell) delivers it within `--timeout`.
//!
//! The child is started plainly, so std can use `posix_spawn` (no fork of the parent's memory), and
//! makes itself a session leader first thing (`flush --detach`).

use std::io;
use std::process::{Command, Stdio};

use crate::settings::Settings;

/// Starts the detached flush with the settings of this call. The key travels in the environment,
/// never on the command line where `ps` would show it.
pub fn spawn_flush(s: &Settings) -> io::Result<()> {
    let state = s
        .state_dir
        .as_ref()
        .ok_or_else(|| io::Error::other("no state directory"))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["flush", "--detach"])
        .args([
            "--product",
            &s.product,
            "--protocol",
            s.protocol.name(),
            "--telemetry",
            "on",
            "--quiet",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .arg("--timeout")
        .arg(format!("{}ms", s.timeout.as_millis()))
        .env_remove("INSTALL_BEACON_BACKGROUND")
        .env_remove("INSTALL_BEACON_DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(endpoint) = &s.endpoint {
        cmd.args(["--endpoint", endpoint]);
    }
    if let Some(version) = &s.product_version {
        cmd.args(["--product-version", version]);
    }
    match &s.key {
        Some(key) => cmd.env("INSTALL_BEACON_KEY", key),
        None => cmd.env_remove("INSTALL_BEACON_KEY"),
    };
    cmd.spawn().map(drop)
}

/// Leaves the caller's session and process group, so the installer's terminal closing (SIGHUP) or
/// Ctrl-C (SIGINT to the foreground group) does not reach the delivery.
pub fn detach() {
    // SAFETY: setsid takes no pointers; it fails harmlessly if we already lead a group.
    unsafe {
        libc::setsid();
    }
}
