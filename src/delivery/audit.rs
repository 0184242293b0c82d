//! The audit log: what was sent about this installation, kept on the machine so the user can
//! answer "what did you send about me?" after the fact (`install-beacon log`).
//!
//! `audit.jsonl` in the state directory (0600) gets one JSON line per event delivered, queued or
//! dropped: time, destination host, protocol, event, the properties as sent (an email masked) and
//! the outcome. A call appends all its lines in one write. Past [`ROTATE_AT`] the file becomes
//! `audit.jsonl.1`, replacing the previous one, so the log never holds much more than twice that.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::encode::Target;
use crate::event::Event;
use crate::store::files::{self, create_dir, open_private_append};
use crate::ui;

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
    /// Given up on: refused by the backend, too large, or not queued.
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

/// One line of the log: what became of one event, when, where it went, and the event as sent (an
/// email masked). The fields are in the order they have always been written in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The event's name.
    pub event: String,
    /// The destination's host and port.
    pub host: String,
    /// The installation ID sent.
    pub installation_id: String,
    /// The event's message ID.
    pub message_id: String,
    /// Delivered, queued or dropped.
    pub outcome: Outcome,
    /// The properties as sent, the email masked.
    pub properties: Map<String, Value>,
    /// The protocol's name; kept as text, so a line written for a protocol this version does not
    /// know still reads.
    pub protocol: String,
    /// Why it was queued or dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, RFC 3339.
    pub time: String,
}

impl Record {
    /// The line for `event`, sent to `to`, stamped `time`.
    pub fn new(event: &Event, outcome: Outcome, reason: Option<&str>, to: &Target, time: &str) -> Record {
        let mut properties = event.properties.clone();
        if let Some(Value::String(email)) = properties.get_mut("email") {
            *email = mask_email(email);
        }
        Record {
            event: event.event.clone(),
            host: to.endpoint.host().to_owned(),
            installation_id: event.installation_id.clone(),
            message_id: event.message_id.clone(),
            outcome,
            properties,
            protocol: to.protocol.name().to_owned(),
            reason: reason.map(str::to_owned),
            time: time.to_owned(),
        }
    }

    /// Turns a `queued` line into a `dropped` one (the outbox did not take the event).
    pub fn drop_if_queued(&mut self, reason: &str) {
        if self.outcome == Outcome::Queued {
            self.outcome = Outcome::Dropped;
            self.reason = Some(reason.to_owned());
        }
    }

    /// The line as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
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
    pub fn append(&self, entries: &[Record]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for entry in entries {
            text.push_str(&entry.to_json());
            text.push('\n');
        }
        let mut file = match open_private_append(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dir(self.path.parent().unwrap_or(Path::new(".")))?;
                open_private_append(&self.path)?
            }
            opened => opened?,
        };
        if file.metadata()?.len() >= ROTATE_AT {
            fs::rename(&self.path, self.rotated())?;
            file = open_private_append(&self.path)?;
        }
        file.write_all(text.as_bytes())
    }

    /// Every entry, oldest first (the rotated file, then the current one), and how many lines
    /// could not be read.
    pub fn read(&self) -> io::Result<(Vec<Record>, usize)> {
        let mut entries = Vec::new();
        let mut unreadable = 0;
        for path in [self.rotated(), self.path.clone()] {
            let text = match files::read(&path) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str(line) {
                    Ok(record) => entries.push(record),
                    Err(_) => unreadable += 1,
                }
            }
        }
        Ok((entries, unreadable))
    }
}

/// Most characters of a cell or a property shown in the table (`--json` shows lines whole).
const MAX_CELL: usize = 200;

/// The entries as a table, one row per event and its properties indented below it. Whatever the
/// file holds is shown inert: control characters removed, each cell and property cut to
/// [`MAX_CELL`] characters.
pub fn table(entries: &[Record]) -> String {
    let cell = |text: &str| ui::plain(text, MAX_CELL);
    let header = ["TIME", "OUTCOME", "EVENT", "TO"].map(str::to_owned);
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            let outcome = match &e.reason {
                None => e.outcome.name().to_owned(),
                Some(reason) => format!("{} ({})", e.outcome.name(), cell(reason)),
            };
            let time = cell(&e.time).replacen('T', " ", 1);
            let to = format!("{} ({})", cell(&e.host), cell(&e.protocol));
            [time, outcome, cell(&e.event), to]
        })
        .collect();
    let mut widths = [0; 4];
    for row in rows.iter().chain([&header]) {
        for (w, text) in widths.iter_mut().zip(row) {
            *w = (*w).max(text.chars().count());
        }
    }
    // Padded by hand: a width past u16::MAX in a format string panics.
    let line = |cells: &[String; 4]| {
        let mut out = String::new();
        for (text, width) in cells.iter().zip(widths).take(3) {
            out.push_str(text);
            out.extend(std::iter::repeat_n(' ', width - text.chars().count() + 2));
        }
        out.push_str(&cells[3]);
        out.push('\n');
        out
    };
    let mut out = line(&header);
    for (row, entry) in rows.iter().zip(entries) {
        out.push_str(&line(row));
        let props: Vec<String> = (entry.properties.iter())
            .map(|(k, v)| match v {
                Value::String(s) => cell(&format!("{k}={s}")),
                other => cell(&format!("{k}={other}")),
            })
            .collect();
        let id = cell(&entry.installation_id);
        out.push_str(&format!("    id {id}: {}\n", props.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use beacon_wire::Protocol;

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

    fn to(protocol: Protocol, endpoint: &str) -> Target {
        Target {
            protocol,
            endpoint: crate::encode::Endpoint::parse(endpoint).unwrap(),
            key: None,
            headers: Vec::new(),
        }
    }

    fn entry(name: &str, outcome: Outcome) -> Record {
        Record::new(
            &event(name, None),
            outcome,
            None,
            &to(Protocol::Segment, "https://api.segment.io"),
            "2026-11-24T07:00:01Z",
        )
    }

    #[test]
    fn emails_are_masked() {
        assert_eq!(mask_email("ada@example.com"), "a***@example.com");
        assert_eq!(mask_email("nonsense"), "***");
        let e = Record::new(
            &event("Installation Support", Some("ada@example.com")),
            Outcome::Delivered,
            None,
            &to(Protocol::Json, "https://h"),
            "t",
        );
        assert_eq!(e.properties["email"], "a***@example.com");
    }

    #[test]
    fn appends_private_lines_and_reads_them_back_past_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&dir.path().join("not-yet"));
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

    /// What 0.1.0 wrote reads whole, and is written back byte for byte.
    #[test]
    fn reads_what_earlier_versions_wrote() {
        let old = include_str!("../../tests/fixtures/audit-0.1.0.jsonl");
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), old).unwrap();
        let (records, unreadable) = AuditLog::new(dir.path()).read().unwrap();
        assert_eq!((records.len(), unreadable), (5, 0));
        let outcomes: Vec<Outcome> = records.iter().map(|r| r.outcome).collect();
        use Outcome::{Delivered, Dropped, Queued};
        assert_eq!(outcomes, [Dropped, Delivered, Queued, Queued, Queued]);
        assert_eq!(records[4].properties["email"], "a***@example.com");
        let lines: String = records.iter().map(|r| r.to_json() + "\n").collect();
        assert_eq!(lines, old);
    }

    #[test]
    fn a_huge_name_makes_a_bounded_row() {
        let mut record = entry("x", Outcome::Delivered);
        record.event = "N".repeat(65_536);
        let text = table(&[record]);
        assert!(
            text.len() < 1_000 && text.contains(&format!("{}…", "N".repeat(MAX_CELL - 1))),
            "{text}"
        );
    }

    #[test]
    fn rotates_past_the_limit_keeping_one_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let line_len = entry("X", Outcome::Delivered).to_json().len() as u64 + 1;
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
        let queued = Record::new(
            &event("Installation Error", None),
            Outcome::Queued,
            Some("connection refused"),
            &to(Protocol::Segment, "https://api.segment.io"),
            "2026-11-24T07:00:01Z",
        );
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
