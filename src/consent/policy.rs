//! The machine-wide policy file (`/etc/install-beacon/policy`) an administrator writes to turn
//! every product's beacon off (or down to errors only): reading it, and what its text means.

use std::path::Path;

use super::{Level, parse_telemetry};
use crate::store::files;

/// The machine-wide policy file an administrator writes to turn every product's beacon off, or
/// down to errors only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where the file is, for `status`.
    pub path: String,
    /// The most it allows: off unless it says `telemetry=on` or `telemetry=errors`.
    pub level: Level,
}

/// Reads a policy file's text: `telemetry=off` (or any `--telemetry` value, `errors` included);
/// blank lines and `#` comments are ignored. A file that exists disables telemetry unless it says
/// `telemetry=on` or `errors`, so a garbled file errs on the side of the administrator's opt-out;
/// of several lines the least wins. Returns the level it allows, and the lines that could not be
/// read, for a warning.
pub fn parse(text: &str) -> (Level, Vec<String>) {
    let mut allowed: Option<Level> = None;
    let mut garbage = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let value = line
            .split_once('=')
            .filter(|(key, _)| key.trim().eq_ignore_ascii_case("telemetry"))
            .and_then(|(_, value)| parse_telemetry(value).ok());
        match value {
            Some(level) => allowed = Some(allowed.map_or(level, |a| a.min(level))),
            None => garbage.push(line.chars().take(80).collect()),
        }
    }
    (allowed.unwrap_or(Level::Off), garbage)
}

/// Reads the policy file: absent is no policy; present disables unless it says `telemetry=on` (or
/// `errors`), and an unreadable one disables too (it is an administrator's opt-out).
pub fn read(path: &Path, warnings: &mut Vec<String>) -> Option<Policy> {
    let shown = path.display().to_string();
    let level = match files::read_config(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warnings.push(format!(
                "cannot read the policy file {shown} ({e}); telemetry stays off"
            ));
            Level::Off
        }
        Ok(bytes) => {
            let (level, garbage) = parse(&String::from_utf8_lossy(&bytes));
            if !garbage.is_empty() {
                warnings.push(format!(
                    "ignoring unreadable lines in the policy file {shown}: {}\nhint: write `telemetry=off` (or `telemetry=on`) on a line of its own",
                    garbage.join(" | ")
                ));
            }
            level
        }
    };
    Some(Policy { path: shown, level })
}

/// Of two policy files, the one that allows less (the first on a tie), else whichever exists.
pub fn strongest(first: Option<Policy>, second: Option<Policy>) -> Option<Policy> {
    match (first, second) {
        (Some(first), Some(second)) if second.level < first.level => Some(second),
        (first, second) => first.or(second),
    }
}
