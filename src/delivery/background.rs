//! `--background`: the event is already in the outbox; a forked copy of this process, detached from
//! the installer (new session, stdio on /dev/null, so it outlives the installer's shell and its
//! Ctrl-C), delivers it within `--timeout` while the caller returns at once. Forking instead of
//! starting a new program costs a fraction of a millisecond and runs nothing from disk.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

/// Forks; the child leaves the caller's session, points its stdio at /dev/null, runs `work` and
/// exits 0, so only the caller returns (`Ok`).
///
/// Refuses while another thread runs (an output relay of `run` kept alive by a daemon that holds
/// its pipes): the child could inherit a lock that thread holds and hang.
pub fn run_detached(work: impl FnOnce()) -> io::Result<()> {
    if other_threads() {
        return Err(io::Error::other("other threads are running"));
    }
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
            work();
            std::process::exit(0)
        }
        _ => Ok(()),
    }
}

/// Whether this process runs more than one thread (Linux: `/proc/self/task`; elsewhere, or without
/// /proc, assumed not, as every thread this program starts ends before it delivers).
fn other_threads() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_seen() {
        let (started, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let (tx, rx) = started;
        let (done_tx, done_rx) = release;
        let t = std::thread::spawn(move || {
            tx.send(()).unwrap();
            let _ = done_rx.recv();
        });
        rx.recv().unwrap();
        assert!(other_threads() || !std::path::Path::new("/proc/self/task").exists());
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }
}
