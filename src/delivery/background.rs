//! `--background`: the event is already in the outbox; a forked copy of this process, detached from
//! the installer (new session, stdio on /dev/null, so it outlives the installer's shell and its
//! Ctrl-C), delivers it within `--timeout` while the caller returns at once. Forking instead of
//! starting a new program costs a fraction of a millisecond and runs nothing from disk.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

/// Which process continues after `fork_detached`.
#[derive(Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller: return to the installer.
    Parent,
    /// The detached copy: deliver, then exit.
    Child,
}

/// Forks; the child leaves the caller's session and points its stdio at /dev/null.
///
/// Callers fork before starting any thread of their own (the HTTP agent, a spinner), so the child
/// inherits no lock held by another thread.
pub fn fork_detached() -> io::Result<Side> {
    let null = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    // SAFETY: fork has no memory-safety preconditions; the child only continues with this thread.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: setsid and dup2 take no pointers; `null` stays open across the calls.
            unsafe {
                libc::setsid();
                for fd in 0..=2 {
                    libc::dup2(null.as_raw_fd(), fd);
                }
            }
            Ok(Side::Child)
        }
        _ => Ok(Side::Parent),
    }
}
