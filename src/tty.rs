//! Questions asked on the terminal (`/dev/tty`, so they work under `curl … | sh` where stdin is the
//! script): the support contact and the consent question. Every question gives up after the
//! prompt timeout, and without a terminal nothing is asked.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::commands::{Ctx, validate_email};
use crate::consent::{Source, State};

/// Typos forgiven before the support prompt gives up.
const EMAIL_TRIES: usize = 3;

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

/// The `[Y/n]` hint for a default.
pub fn hint(default: State) -> &'static str {
    match default {
        State::Enabled => "[Y/n]",
        State::Disabled => "[y/N]",
        State::Undecided => "[y/n]",
    }
}

impl Ctx<'_> {
    fn open_tty(&self, what: &str) -> Option<Tty> {
        match Tty::open(self.settings.prompt_timeout) {
            Ok(tty) => Some(tty),
            Err(_) => {
                self.ui
                    .info(&format!("no terminal to ask on (CI, container or cron): {what}"));
                None
            }
        }
    }

    /// `support --prompt`: asks whether the user wants help, then for an email address (again on a
    /// typo, at most three times; an empty answer skips), and sends `Installation Support`.
    pub(crate) fn support_prompt(&self, message: Option<&str>) -> Result<ExitCode> {
        if !self.decision.enabled() {
            return Ok(ExitCode::SUCCESS);
        }
        let Some(mut tty) = self.open_tty("not asking for a support contact") else {
            return Ok(ExitCode::SUCCESS);
        };
        let product = &self.settings.product;
        let step = self.last_failed_step();
        let failed = match &step {
            Some(step) => format!("The {product} installation failed at step '{step}'.\n"),
            None => format!("The {product} installation did not finish.\n"),
        };
        tty.say(&format!("\n{failed}"));
        let question = format!("Would you like the {product} team to help you by email? [y/N] ");
        match tty.ask(&question) {
            Answer::Line(a) if yes_no(&a) == Some(true) => {}
            _ => return Ok(ExitCode::SUCCESS),
        }
        let mut question = "Your email address (leave empty to skip): ".to_owned();
        for _ in 0..EMAIL_TRIES {
            let Answer::Line(answer) = tty.ask(&question) else {
                return Ok(ExitCode::SUCCESS);
            };
            if answer.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            match validate_email(&answer) {
                Ok(email) => {
                    tty.say(&format!("Thank you. The {product} team will write to {email}.\n"));
                    return self.send_support(email, message);
                }
                Err(_) => {
                    question = format!("'{answer}' does not look like an email address. Try again (empty to skip): ");
                }
            }
        }
        tty.say("No valid address given; skipping.\n");
        Ok(ExitCode::SUCCESS)
    }

    /// `consent --prompt`: asks once whether to share statistics and saves the answer. Skipped when
    /// anything but the default already decides (an opt-out, a flag, a saved choice), and without
    /// a terminal, where the default applies.
    pub(crate) fn consent_prompt(&self) -> Result<ExitCode> {
        let default = self.settings.consent.default;
        if self.decision.source != Source::Default {
            return Ok(ExitCode::SUCCESS);
        }
        let Some(mut tty) = self.open_tty(&format!("telemetry stays {} (default)", default.name())) else {
            return Ok(ExitCode::SUCCESS);
        };
        tty.say(&format!(
            "{} can send anonymous installation statistics: OS and version, CPU and memory size, \
             which step failed, and a random installation ID. Never names, hostnames, IP addresses, \
             paths or command output.\n",
            self.settings.product
        ));
        let question = format!("Share anonymous installation statistics? {} ", hint(default));
        for _ in 0..EMAIL_TRIES {
            let answer = match tty.ask(&question) {
                Answer::Line(answer) => answer,
                Answer::TimedOut | Answer::Closed => return Ok(ExitCode::SUCCESS),
            };
            let choice = match (yes_no(&answer), answer.is_empty(), default) {
                (Some(on), _, _) => on,
                (None, true, State::Enabled) => true,
                (None, true, State::Disabled) => false,
                _ => continue,
            };
            return self.save_choice(choice);
        }
        Ok(ExitCode::SUCCESS)
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
        assert_eq!(hint(State::Disabled), "[y/N]");
        assert_eq!(hint(State::Enabled), "[Y/n]");
    }
}
