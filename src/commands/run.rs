//! `run`: runs one installer step as a child process. Shows a spinner (terminal) or start/finish
//! lines (pipe), passes the output through or appends it to a log, forwards termination signals,
//! and exits with the child's own code. A failure is reported as `Installation Error` with the
//! step, exit code and duration only: never the command line or its output.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::RunArgs;
use crate::event::Checkpoint;
use crate::exit;
use crate::session::Session;
use crate::store::state::PendingFailure;
use crate::store::steps;
use crate::ui;

/// Lines of the log shown when a step with `--log` fails.
const TAIL_LINES: usize = 10;
/// How much of the end of the log is read to find them: a step may have logged gigabytes.
const TAIL_BYTES: u64 = 64 * 1024;
/// The most of the child's output held at a time while relaying it.
const RELAY_CHUNK: usize = 8 * 1024;
/// How long to wait for the output relays once the child exited (a daemon it started may hold
/// the pipes open forever).
const RELAY_GRACE: Duration = Duration::from_secs(1);

/// Runs the step and reports a failure; the exit code is always the command's.
pub fn run(session: &Session, args: RunArgs) -> exit::ExitStatus {
    let label = args.label.clone().unwrap_or_else(|| args.step.clone());
    let quiet = session.ui.quiet();
    let spinner = !quiet && io::stderr().is_terminal();
    let progress = Progress::start(&label, spinner, quiet);
    let started = Instant::now();

    let (code, log_start) = match spawn_and_wait(&args.command, args.log.as_deref(), progress.bar()) {
        Ok(done) => done,
        Err(e) => {
            progress.abandon();
            let program = args.command.first().map(|p| p.to_string_lossy()).unwrap_or_default();
            ui::stderr(&format!("install-beacon: cannot run '{program}': {e}\n"));
            // The shell's codes: 127 not found, 126 found but not runnable.
            (if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 }, None)
        }
    };
    let elapsed = started.elapsed();
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    progress.finish(&label, code, elapsed);
    // The step took as long as it took; the report gets its own --timeout.
    session.arm_deadline();

    if code == 0 {
        session.remember("step times", false, |saved| {
            steps::record(saved, &args.step, duration_ms)
        });
    } else {
        if let (Some(log), Some(start)) = (&args.log, log_start) {
            show_tail(log, start);
        }
        if args.report_on_exit {
            let pending = PendingFailure {
                step: args.step,
                exit_code: code.into(),
                duration_ms,
            };
            session.remember("the failed step", true, |saved| saved.pending_failure = Some(pending));
            return exit::ExitStatus::Step(u8::try_from(code).unwrap_or(1));
        }
        let failed = Checkpoint::Error {
            step: Some(args.step),
            exit_code: Some(code.into()),
            message: None,
            duration_ms: Some(duration_ms),
        };
        // The command's exit code wins over anything the report does.
        if let Err(e) = super::error::report(session, failed) {
            session.ui.warn(&format!("could not report the failed step: {e}"));
        }
    }
    exit::ExitStatus::Step(u8::try_from(code).unwrap_or(1))
}

/// Spawns the command, relays or logs its output, and waits. Returns the exit code (128+N for a
/// signal) and, with a log, the log's length before the step (where its output starts).
fn spawn_and_wait(
    command: &[OsString],
    log: Option<&Path>,
    bar: Option<&ProgressBar>,
) -> io::Result<(i32, Option<u64>)> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    let mut log_start = None;
    if let Some(path) = log {
        let mut file = open_log(path)?;
        log_start = Some(file.seek(SeekFrom::End(0))?);
        cmd.stdout(file.try_clone()?).stderr(file);
    } else if bar.is_some() {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }

    signals::install();
    let mut child = cmd.spawn()?;
    signals::set_child(child.id());
    let relays = match bar {
        Some(bar) if log.is_none() => relay(&mut child, bar),
        _ => None,
    };
    let status = child.wait()?;
    if let Some(done) = relays {
        for _ in 0..2 {
            if done.recv_timeout(RELAY_GRACE).is_err() {
                break;
            }
        }
    }
    Ok((exit_code(status), log_start))
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open the log {}: {e}", path.display())))
}

/// The shell's convention: the exit code, or 128 + the signal that killed it.
#[cfg(unix)]
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// The exit code (a process ended by Ctrl-C has one too on Windows).
#[cfg(windows)]
fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or(1)
}

/// Copies the child's stdout and stderr above the spinner as the bytes come, a chunk of at most
/// `RELAY_CHUNK` bytes at a time: a prompt without a newline (`Continue? [Y/n] `) shows at once,
/// and a child that never prints a newline costs no memory. Returns a channel that gets one
/// message per stream when it ends.
fn relay(child: &mut Child, bar: &ProgressBar) -> Option<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        spawn_relay(out, bar.clone(), false, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        spawn_relay(err, bar.clone(), true, tx);
    }
    Some(rx)
}

fn spawn_relay(mut stream: impl Read + Send + 'static, bar: ProgressBar, to_stderr: bool, done: mpsc::Sender<()>) {
    thread::spawn(move || {
        let mut chunk = vec![0; RELAY_CHUNK];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let write = |bytes: &[u8]| {
                let _ = if to_stderr {
                    io::stderr().lock().write_all(bytes)
                } else {
                    io::stdout().lock().write_all(bytes).and_then(|()| io::stdout().flush())
                };
            };
            if chunk[..n].ends_with(b"\n") && !bar.is_finished() {
                bar.suspend(|| write(&chunk[..n]));
            } else {
                // A line left open is the child talking to the user (a prompt): the spinner would
                // draw over it, so it goes away for the rest of the step.
                bar.finish_and_clear();
                write(&chunk[..n]);
            }
        }
        let _ = done.send(());
    });
}

/// Prints the last lines the failed step wrote to its log.
fn show_tail(path: &Path, start: u64) {
    let Ok(mut file) = File::open(path) else { return };
    let end = file.metadata().map_or(start, |m| m.len());
    let mut bytes = Vec::new();
    let from = start.max(end.saturating_sub(TAIL_BYTES));
    if file.seek(SeekFrom::Start(from)).is_err() || file.take(TAIL_BYTES).read_to_end(&mut bytes).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return;
    }
    let from = lines.len().saturating_sub(TAIL_LINES);
    let mut out = format!("==> last lines of {}:\n", path.display());
    for line in &lines[from..] {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    ui::stderr(&out);
}

/// `1.2s`, `2m 03s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

/// What the person running the installer sees of a step.
enum Progress {
    /// A spinner with the label and elapsed time (stderr is a terminal).
    Spinner(ProgressBar),
    /// One line at the start and one at the end (stderr is a pipe or file).
    Lines,
    /// Nothing (`--quiet`).
    Silent,
}

impl Progress {
    fn start(label: &str, spinner: bool, quiet: bool) -> Progress {
        if quiet {
            return Progress::Silent;
        }
        if spinner {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
            bar.set_style(style);
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            return Progress::Spinner(bar);
        }
        ui::stderr(&format!("==> {label}\n"));
        Progress::Lines
    }

    fn bar(&self) -> Option<&ProgressBar> {
        match self {
            Progress::Spinner(bar) => Some(bar),
            _ => None,
        }
    }

    fn abandon(&self) {
        if let Progress::Spinner(bar) = self {
            bar.finish_and_clear();
        }
    }

    fn finish(&self, label: &str, code: i32, elapsed: Duration) {
        let took = format_duration(elapsed);
        match self {
            Progress::Spinner(bar) => {
                // Joins the ticker thread: a --background report forks, which wants no other thread.
                bar.disable_steady_tick();
                bar.finish_and_clear();
                if code == 0 {
                    ui::stderr(&format!("✓ {label} ({took})\n"));
                } else {
                    ui::stderr(&format!("✗ {label} failed with exit code {code} ({took})\n"));
                }
            }
            Progress::Lines if code == 0 => ui::stderr(&format!("==> {label}: done in {took}\n")),
            Progress::Lines => ui::stderr(&format!("==> {label}: failed with exit code {code} after {took}\n")),
            Progress::Silent => {}
        }
    }
}

/// Forwarding of SIGINT, SIGTERM and SIGHUP to the child, so `run` outlives it and reports.
#[cfg(unix)]
mod signals {
    use std::sync::atomic::{AtomicI32, Ordering};

    /// The child's pid once spawned (0 before).
    static CHILD: AtomicI32 = AtomicI32::new(0);
    /// A signal that arrived before the child existed.
    static PENDING: AtomicI32 = AtomicI32::new(0);

    const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // A signal from the terminal (Ctrl-C) went to the whole foreground process group, child
        // included (si_code > 0, from the kernel): forward only those sent to us alone by a
        // process (kill, timeout, docker stop: si_code <= 0).
        // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO; null is checked anyway.
        let from_process = info.is_null() || unsafe { (*info).si_code } <= 0;
        if !from_process {
            return;
        }
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe.
            unsafe {
                libc::kill(pid, signal);
            }
        } else {
            PENDING.store(signal, Ordering::SeqCst);
        }
    }

    /// Catches the signals, except those ignored on entry (nohup, `trap '' INT`): the child then
    /// inherits the ignore, as it would without `run`.
    pub fn install() {
        for signal in FORWARDED {
            // SAFETY: plain sigaction calls with zeroed, then filled, structs; the handler only
            // touches atomics and calls kill.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 || old.sa_sigaction == libc::SIG_IGN {
                    continue;
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = forward as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }

    /// Records the child, then delivers a signal that arrived while it was being spawned.
    pub fn set_child(pid: u32) {
        let pid = i32::try_from(pid).unwrap_or(0);
        CHILD.store(pid, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 && pid > 0 {
            // SAFETY: plain kill of our own child.
            unsafe {
                libc::kill(pid, pending);
            }
        }
    }
}

/// Windows: Ctrl-C and Ctrl-Break reach every process on the console, the child included. `run`
/// ignores them through a handler (which, unlike ignoring them outright, the child does not
/// inherit), so it outlives the child and reports.
#[cfg(windows)]
mod signals {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_C_EVENT, SetConsoleCtrlHandler};

    unsafe extern "system" fn ignore(kind: u32) -> i32 {
        i32::from(kind == CTRL_C_EVENT || kind == CTRL_BREAK_EVENT)
    }

    /// Installs the handler.
    pub fn install() {
        // SAFETY: registers a handler function that lives as long as the program.
        unsafe {
            SetConsoleCtrlHandler(Some(ignore), 1);
        }
    }

    /// Nothing to forward: the console delivers to the child itself.
    pub fn set_child(_: u32) {}
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_duration(Duration::from_secs(123)), "2m 03s");
    }

    #[test]
    fn signal_deaths_are_128_plus_n() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGINT)), 130);
    }
}
