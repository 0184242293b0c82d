//! `--background`: the event is already in the outbox; a detached process delivers it within
//! `--timeout` while the caller returns at once. On Unix it is a forked copy of this process, detached
//! from the installer (new session, stdio on /dev/null, so it outlives the installer's shell and its
//! Ctrl-C): forking costs a fraction of a millisecond and runs nothing from disk. Windows has no
//! fork: this executable is started again as `flush`, detached from the console and in its own
//! process group, with the resolved settings in the `INSTALL_BEACON_*` variables the caller passes.

use std::io;

/// Forks; the child leaves the caller's session, points its stdio at /dev/null, closes every other
/// descriptor it inherited, runs `work` and exits 0, so only the caller returns (`Ok`).
///
/// Refuses while another thread runs (an output relay of `run` kept alive by a daemon that holds
/// its pipes): the child could inherit a lock that thread holds and hang.
#[cfg(unix)]
pub fn run_detached(_: &[(&'static str, String)], work: impl FnOnce()) -> io::Result<()> {
    use std::os::fd::AsRawFd;

    if other_threads() {
        return Err(io::Error::other("other threads are running"));
    }
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
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
            close_inherited_fds();
            work();
            std::process::exit(0)
        }
        _ => Ok(()),
    }
}

/// Starts `install-beacon flush` with the settings `env` gives it, detached: no console, its own
/// process group (the installer's Ctrl-C does not reach it), stdio on NUL. It delivers what `work`
/// would have, the queue; the caller always goes on.
#[cfg(windows)]
pub fn run_detached(env: &[(&'static str, String)], _work: impl FnOnce()) -> io::Result<()> {
    use std::os::windows::process::CommandExt;
    use std::process::{Command, Stdio};
    use windows_sys::Win32::System::Threading::{CREATE_NEW_PROCESS_GROUP, DETACHED_PROCESS};

    Command::new(std::env::current_exe()?)
        .arg("flush")
        .env_remove("INSTALL_BEACON_BACKGROUND")
        .envs(env.iter().map(|(name, value)| (*name, value)))
        .env("INSTALL_BEACON_QUIET", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP)
        .spawn()?;
    Ok(())
}

/// Closes every descriptor above 2. An installer's pipe the caller inherited (`( install-beacon
/// started --background 3>&1 ) | cat`) would otherwise stay open in the child, and whoever reads it
/// would wait for the whole delivery.
#[cfg(unix)]
fn close_inherited_fds() {
    // The open ones, where the system lists them (Linux, macOS); else every number below the limit.
    let listed = ["/proc/self/fd", "/dev/fd"].iter().find_map(|dir| {
        let entries = std::fs::read_dir(dir).ok()?;
        Some(
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::c_int>().ok())
                .collect::<Vec<_>>(),
        )
    });
    // SAFETY: sysconf takes no pointers.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(256, 65_536);
    let fds = listed.unwrap_or_else(|| (0..libc::c_int::try_from(max).unwrap_or(1024)).collect());
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        // SAFETY: closing a number that is not open is a harmless EBADF; nothing else in this
        // single-threaded child holds these descriptors.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Whether this process runs more than one thread (Linux: `/proc/self/task`; elsewhere, or without
/// /proc, assumed not, as every thread this program starts ends before it delivers).
#[cfg(unix)]
fn other_threads() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() > 1)
}

#[cfg(all(test, unix))]
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
