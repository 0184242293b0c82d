//! The machine-wide policy file (`/etc/install-beacon/policy`) an administrator writes to turn
//! every product's beacon off: reading it, and what its text means.

use std::path::Path;

use super::parse_telemetry;
use crate::store::files;

/// The machine-wide policy file an administrator writes to turn every product's beacon off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where the file is, for `status`.
    pub path: String,
    /// Whether it turns telemetry off (it does unless it says `telemetry=on`).
    pub disables: bool,
}

/// Reads a policy file's text: `telemetry=off` (or any `--telemetry` value); blank lines and `#`
/// comments are ignored. A file that exists disables telemetry unless it says `telemetry=on`, so a
/// garbled file errs on the side of the administrator's opt-out. Returns whether it disables, and
/// the lines that could not be read, for a warning.
pub fn parse(text: &str) -> (bool, Vec<String>) {
    let mut on = None;
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
            Some(v) => on = Some(on.unwrap_or(true) && v),
            None => garbage.push(line.chars().take(80).collect()),
        }
    }
    (on != Some(true), garbage)
}

/// Reads the policy file: absent is no policy; present disables unless it says `telemetry=on`,
/// and an unreadable one disables too (it is an administrator's opt-out).
pub fn read(path: &Path, warnings: &mut Vec<String>) -> Option<Policy> {
    let shown = path.display().to_string();
    let disables = match files::read_config(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warnings.push(format!(
                "cannot read the policy file {shown} ({e}); telemetry stays off"
            ));
            true
        }
        Ok(bytes) => {
            let (disables, garbage) = parse(&String::from_utf8_lossy(&bytes));
            if !garbage.is_empty() {
                warnings.push(format!(
                    "ignoring unreadable lines in the policy file {shown}: {}\nhint: write `telemetry=off` (or `telemetry=on`) on a line of its own",
                    garbage.join(" | ")
                ));
            }
            disables
        }
    };
    Some(Policy { path: shown, disables })
}

/// Of two policy files, the one that disables, else whichever exists.
pub fn strongest(first: Option<Policy>, second: Option<Policy>) -> Option<Policy> {
    match (first, second) {
        (Some(first), _) if first.disables => Some(first),
        (first, second) => second.or(first),
    }
}
