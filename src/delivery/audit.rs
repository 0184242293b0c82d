//! The audit log: what was sent about this installation, kept on the machine so the user can
//! answer "what did you send about me?" after the fact (`install-beacon log`).
//!
//! `audit.jsonl` in the state directory (0600) gets one JSON line per event delivered, queued or
//! dropped: time, destination host, protocol, event, the properties as sent (an email masked) and
//! the outcome. A call appends all its lines in one write. Past [`ROTATE_AT`] the file becomes
//! `audit.jsonl.1`, replacing the previous one, so the log never holds much more than twice that.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::Event;
use crate::wire::Target;

/// The log's file name in the state directory.
pub const FILE: &str = "audit.jsonl";
/// Size at which the log is rotated.
pub const ROTATE_AT: u64 = 256 * 1024;

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The backend accepted it.
    Delivered,
    /// Not delivered yet; in the outbox for a later call.
    Queued,
    /// Given up on: refused by the backend, too large, or pushed out of a full queue.
    Dropped,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Queued => "queued",
            Outcome::Dropped => "dropped",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When the outcome happened (RFC 3339, UTC).
    pub time: String,
    /// What became of the event.
    pub outcome: Outcome,
    /// Why it was queued or dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Host the event was (or is to be) sent to.
    pub host: String,
    /// `segment`, `posthog` or `json`.
    pub protocol: String,
    /// Event name.
    pub event: String,
    /// Installation ID sent with it.
    pub installation_id: String,
    /// Message ID, the same across retries.
    pub message_id: String,
    /// The properties as sent, the email masked.
    pub properties: Map<String, Value>,
}

/// Where events go, as the log names it.
#[derive(Debug, Clone)]
pub struct Destination {
    host: String,
    protocol: &'static str,
}

impl Destination {
    /// The target's host and protocol.
    pub fn of(target: &Target) -> Destination {
        Destination {
            host: host_of(&target.url()),
            protocol: target.protocol.name(),
        }
    }
}

impl Entry {
    /// The line for `event`, sent to `to`, stamped `time`.
    pub fn new(event: &Event, outcome: Outcome, reason: Option<&str>, to: &Destination, time: &str) -> Entry {
        let mut properties = event.properties.clone();
        if let Some(Value::String(email)) = properties.get_mut("email") {
            *email = mask_email(email);
        }
        Entry {
            time: time.to_owned(),
            outcome,
            reason: reason.map(str::to_owned),
            host: to.host.clone(),
            protocol: to.protocol.to_owned(),
            event: event.event.clone(),
            installation_id: event.installation_id.clone(),
            message_id: event.message_id.clone(),
            properties,
        }
    }
}

/// `ada@example.com` → `a***@example.com`: enough to recognise one's own address, not to use it.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// The host of a URL, for the log (`https://api.segment.io/v1/batch` → `api.segment.io`).
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

/// The audit log of one state directory.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The log in `state_dir` (nothing is created until the first append).
    pub fn new(state_dir: &Path) -> AuditLog {
        AuditLog {
            path: state_dir.join(FILE),
        }
    }

    /// The current log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self) -> PathBuf {
        self.path.with_extension("jsonl.1")
    }

    /// Appends `entries` in one write, rotating first when the file has grown past [`ROTATE_AT`].
    pub fn append(&self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for entry in entries {
            text.push_str(&serde_json::to_string(entry).map_err(io::Error::other)?);
            text.push('\n');
        }
        let mut file = self.open()?;
        if file.metadata()?.len() >= ROTATE_AT {
            fs::rename(&self.path, self.rotated())?;
            file = self.open()?;
        }
        file.write_all(text.as_bytes())
    }

    fn open(&self) -> io::Result<fs::File> {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
    }

    /// Every entry, oldest first (the rotated file, then the current one), and how many lines
    /// could not be read.
    pub fn read(&self) -> io::Result<(Vec<Entry>, usize)> {
        let mut entries = Vec::new();
        let mut unreadable = 0;
        for path in [self.rotated(), self.path.clone()] {
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str(line) {
                    Ok(entry) => entries.push(entry),
                    Err(_) => unreadable += 1,
                }
            }
        }
        Ok((entries, unreadable))
    }
}

/// The entries as a table, one row per event and its properties indented below it.
pub fn table(entries: &[Entry]) -> String {
    let header = ["TIME", "OUTCOME", "EVENT", "TO"];
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            let outcome = match &e.reason {
                Some(reason) => format!("{} ({reason})", e.outcome.name()),
                None => e.outcome.name().to_owned(),
            };
            let time = e.time.replacen('T', " ", 1);
            [time, outcome, e.event.clone(), format!("{} ({})", e.host, e.protocol)]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 3 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    for (row, entry) in rows.iter().zip(entries) {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
        let props: Vec<String> = entry
            .properties
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        out.push_str(&format!("    id {}: {}\n", entry.installation_id, props.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn event(name: &str, email: Option<&str>) -> Event {
        let mut properties = Map::new();
        properties.insert("os".into(), "debian".into());
        if let Some(email) = email {
            properties.insert("email".into(), email.into());
        }
        Event {
            event: name.into(),
            installation_id: "18ac9091-ec09-4fe6-b9e9-c2b95dfed34a".into(),
            message_id: "m-1".into(),
            timestamp: "2026-11-24T07:00:00.000Z".into(),
            properties,
        }
    }

    fn entry(name: &str, outcome: Outcome) -> Entry {
        Entry::new(
            &event(name, None),
            outcome,
            None,
            &Destination {
                host: "api.segment.io".into(),
                protocol: "segment",
            },
            "2026-11-24T07:00:01Z",
        )
    }

    #[test]
    fn emails_are_masked() {
        assert_eq!(mask_email("ada@example.com"), "a***@example.com");
        assert_eq!(mask_email("nonsense"), "***");
        let e = Entry::new(
            &event("Installation Support", Some("ada@example.com")),
            Outcome::Delivered,
            None,
            &Destination {
                host: "h".into(),
                protocol: "json",
            },
            "t",
        );
        assert_eq!(e.properties["email"], "a***@example.com");
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://api.segment.io/v1/batch"), "api.segment.io");
        assert_eq!(host_of("http://127.0.0.1:8787"), "127.0.0.1:8787");
        assert_eq!(host_of("https://user:pw@eu.i.posthog.com/batch/?x"), "eu.i.posthog.com");
    }

    #[test]
    fn appends_private_lines_and_reads_them_back_past_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        assert_eq!(log.read().unwrap(), (Vec::new(), 0));
        log.append(&[entry("A", Outcome::Delivered)]).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"{\"torn\n")
            .unwrap();
        log.append(&[entry("B", Outcome::Queued), entry("C", Outcome::Dropped)])
            .unwrap();
        let mode = fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (entries, unreadable) = log.read().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.event.as_str()).collect();
        assert_eq!((names, unreadable), (vec!["A", "B", "C"], 1));
    }

    #[test]
    fn rotates_past_the_limit_keeping_one_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let line_len = serde_json::to_string(&entry("X", Outcome::Delivered)).unwrap().len() as u64 + 1;
        let per_file = ROTATE_AT.div_ceil(line_len);
        for _ in 0..per_file * 3 {
            log.append(&[entry("X", Outcome::Delivered)]).unwrap();
        }
        let current = fs::metadata(log.path()).unwrap().len();
        let older = fs::metadata(dir.path().join("audit.jsonl.1")).unwrap().len();
        // Rotation happens before a write, so a file ends at most one append past the limit.
        assert!(
            current <= ROTATE_AT + line_len && older <= ROTATE_AT + line_len,
            "{current} {older}"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn table_shows_one_row_per_event_with_its_properties() {
        let mut queued = entry("Installation Error", Outcome::Queued);
        queued.reason = Some("connection refused".into());
        let text = table(&[entry("Installation Started", Outcome::Delivered), queued]);
        let expected = "\
TIME                  OUTCOME                      EVENT                 TO
2026-11-24 07:00:01Z  delivered                    Installation Started  api.segment.io (segment)
    id 18ac9091-ec09-4fe6-b9e9-c2b95dfed34a: os=debian
2026-11-24 07:00:01Z  queued (connection refused)  Installation Error    api.segment.io (segment)
    id 18ac9091-ec09-4fe6-b9e9-c2b95dfed34a: os=debian
";
        assert_eq!(text, expected);
    }
}
