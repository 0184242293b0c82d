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

/// Text that came over the network, made safe to print: control characters (escape sequences,
/// carriage returns, newlines) and bidirectional overrides removed, runs of whitespace collapsed,
/// and cut to `max_chars` characters with `…`.
pub fn plain(text: &str, max_chars: usize) -> String {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = count > 0;
            continue;
        }
        if c.is_control() || bidi(c) {
            continue;
        }
        if count + usize::from(space) >= max_chars {
            // No room for this character: end with an ellipsis instead of the last one kept.
            if out.pop().is_some() {
                out.push('…');
            }
            return out;
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
        }
        out.push(c);
        count += 1;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_text_is_plain_and_bounded() {
        assert_eq!(
            plain("\u{1b}[2K\r\u{1b}[32m✓ ok\u{1b}[0m\u{7}\u{9b}1m\u{202e}x\n\tnext", 100),
            "[2K [32m✓ ok[0m1mx next"
        );
        assert_eq!(plain("abcdef", 4), "abc…");
        assert_eq!(plain("  a  ", 4), "a");
    }
}
