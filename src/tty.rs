//! The terminal questions are asked on (`/dev/tty`, so they work under `curl … | sh` where stdin is
//! the script; on Windows the console, `CONIN$`/`CONOUT$`, for `irm … | iex`). Every question gives
//! up after the prompt timeout; without a terminal nothing is asked.

use std::fs::File;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// What came back from one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A line, without its newline and surrounding spaces.
    Line(String),
    /// Nothing within the timeout.
    TimedOut,
    /// The terminal closed or sent end-of-file (Ctrl-D).
    Closed,
}

/// The controlling terminal.
pub struct Tty {
    file: File,
    input: input::Input,
    timeout: Duration,
}

impl Tty {
    /// Opens the terminal; fails without one (CI, Docker, cron, a detached process).
    pub fn open(timeout: Duration) -> io::Result<Tty> {
        let (file, input) = input::open()?;
        Ok(Tty { file, input, timeout })
    }

    /// Prints text as is.
    pub fn say(&mut self, text: &str) {
        let _ = self.file.write_all(text.as_bytes()).and_then(|()| self.file.flush());
    }

    /// Prints the question and reads one line, waiting at most the timeout.
    pub fn ask(&mut self, question: &str) -> Answer {
        self.say(question);
        let deadline = Instant::now() + self.timeout;
        let mut line = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut buf = [0u8; input::CHUNK];
            let read = if left.is_zero() {
                None
            } else {
                self.input.read_within(left, &mut buf)
            };
            let Some(read) = read else {
                // Drop what was typed half-way, so it does not reach the installer's shell.
                self.input.discard_typed();
                self.say("\n");
                return Answer::TimedOut;
            };
            match read {
                Ok(0) => return Answer::Closed,
                Ok(n) => {
                    line.extend_from_slice(&buf[..n]);
                    if let Some(end) = line.iter().position(|&b| b == b'\n') {
                        line.truncate(end);
                        return Answer::Line(String::from_utf8_lossy(&line).trim().to_owned());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Answer::Closed,
            }
        }
    }
}

/// `/dev/tty`, read after poll(2) says there is input.
#[cfg(unix)]
mod input {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// Bytes read at a time.
    pub const CHUNK: usize = 256;

    /// The terminal's input side.
    pub struct Input(File);

    /// Opens `/dev/tty` once for writing questions and once for reading answers.
    pub fn open() -> io::Result<(File, Input)> {
        let file = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        Ok((file.try_clone()?, Input(file)))
    }

    impl Input {
        /// Reads what was typed, waiting at most `wait`; `None` when nothing came.
        pub fn read_within(&mut self, wait: Duration, buf: &mut [u8]) -> Option<io::Result<usize>> {
            let mut fd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(wait.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut fd, 1, ms) };
            (ready > 0).then(|| self.0.read(buf))
        }

        /// Drops input typed but not yet read.
        pub fn discard_typed(&self) {
            // SAFETY: tcflush on our own open descriptor.
            unsafe {
                libc::tcflush(self.0.as_raw_fd(), libc::TCIFLUSH);
            }
        }
    }
}

/// The console: `CONOUT$` for questions, `CONIN$` read by a thread (a console read cannot time
/// out; a thread still blocked when the question gives up ends with the process).
#[cfg(windows)]
mod input {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read};
    use std::os::windows::io::AsRawHandle;
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
    use std::time::Duration;

    /// Bytes read at a time.
    pub const CHUNK: usize = 256;

    /// The console's input side.
    pub struct Input {
        conin: File,
        chunks: Receiver<io::Result<Vec<u8>>>,
    }

    /// Opens `CONOUT$` and `CONIN$`; fails when the process has no console.
    pub fn open() -> io::Result<(File, Input)> {
        let out = OpenOptions::new().read(true).write(true).open("CONOUT$")?;
        let conin = OpenOptions::new().read(true).write(true).open("CONIN$")?;
        let mut reader = conin.try_clone()?;
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; CHUNK];
            loop {
                let read = reader.read(&mut buf).map(|n| buf[..n].to_vec());
                let end = !matches!(&read, Ok(bytes) if !bytes.is_empty());
                if tx.send(read).is_err() || end {
                    return;
                }
            }
        });
        Ok((out, Input { conin, chunks }))
    }

    impl Input {
        /// Reads what was typed, waiting at most `wait`; `None` when nothing came.
        pub fn read_within(&mut self, wait: Duration, buf: &mut [u8]) -> Option<io::Result<usize>> {
            match self.chunks.recv_timeout(wait) {
                Ok(Ok(bytes)) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    Some(Ok(n))
                }
                Ok(Err(e)) => Some(Err(e)),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Ok(0)),
            }
        }

        /// Drops input typed but not yet read.
        pub fn discard_typed(&self) {
            // SAFETY: a console input handle we opened and still own.
            unsafe {
                windows_sys::Win32::System::Console::FlushConsoleInputBuffer(self.conin.as_raw_handle());
            }
        }
    }
}

/// A yes/no answer: `Some(true)` for y/yes, `Some(false)` for n/no, `None` for anything else.
pub fn yes_no(answer: &str) -> Option<bool> {
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(true),
        "n" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(yes_no(" Y "), Some(true));
        assert_eq!(yes_no("no"), Some(false));
        assert_eq!(yes_no(""), None);
        assert_eq!(yes_no("sure"), None);
    }
}
