//! Everything printed: stdout for what the user asked to see, stderr for warnings and notices.
//! Write errors are ignored, so a closed pipe (`install-beacon … | head -c0`) never fails a call.

use std::io::{self, Write};

/// Prefix of every line this tool prints to stderr, so installer users know who is talking.
const PREFIX: &str = "install-beacon";

/// Where messages go, and whether they are wanted.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    quiet: bool,
}

impl Ui {
    /// Messages to stderr unless `quiet`.
    pub fn new(quiet: bool) -> Ui {
        Ui { quiet }
    }

    /// Whether informational output is suppressed.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Prints `install-beacon: warning: …` to stderr.
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            stderr(&format!("{PREFIX}: warning: {message}\n"));
        }
    }

    /// Prints a line to stderr as it is.
    pub fn say(&self, message: &str) {
        if !self.quiet {
            stderr(&format!("{message}\n"));
        }
    }

    /// Prints `install-beacon: …` to stderr.
    pub fn info(&self, message: &str) {
        if !self.quiet {
            stderr(&format!("{PREFIX}: {message}\n"));
        }
    }
}

/// Writes to stdout, ignoring a closed pipe.
pub fn stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes to stderr, ignoring errors.
pub fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
