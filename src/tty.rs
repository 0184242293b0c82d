//! The terminal questions are asked on (`/dev/tty`, so they work under `curl … | sh` where stdin is
//! the script). Every question gives up after the prompt timeout; without a terminal nothing is asked.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
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
    timeout: Duration,
}

impl Tty {
    /// Opens `/dev/tty`; fails without a controlling terminal (CI, Docker, cron).
    pub fn open(timeout: Duration) -> io::Result<Tty> {
        let file = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        Ok(Tty { file, timeout })
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
            if left.is_zero() || !self.readable(left) {
                // Drop what was typed half-way, so it does not reach the installer's shell.
                // SAFETY: tcflush on our own open descriptor.
                unsafe {
                    libc::tcflush(self.file.as_raw_fd(), libc::TCIFLUSH);
                }
                self.say("\n");
                return Answer::TimedOut;
            }
            let mut buf = [0u8; 256];
            match self.file.read(&mut buf) {
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

    /// Waits until there is input, at most `wait`.
    fn readable(&self, wait: Duration) -> bool {
        let mut fd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(wait.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut fd, 1, ms) };
        ready > 0
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
