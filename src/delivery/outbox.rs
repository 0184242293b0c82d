//! The outbox: events not yet delivered, one JSON line each in `<state dir>/outbox.jsonl` (0600),
//! oldest first, each with the destination it is meant for. Every change is a
//! read-modify-atomic-rewrite under the state directory's lock, so a crash leaves either the old
//! queue or the new one; unreadable lines are skipped, never fatal.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::encode::Destination;
use crate::event::Event;
use crate::store::files::{self, Lock};
use crate::store::state::StateDir;

/// Most events kept; the oldest are dropped past this.
pub const MAX_EVENTS: usize = 1000;
/// Most bytes kept; the oldest events are dropped past this.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Events queued for another destination are dropped once they are older than this.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// One line of the outbox: the event's fields and a `destination` object. Lines written before
/// destinations were recorded have none and match no call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// Where the event is to be delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

impl QueuedEvent {
    /// Reads one line: the event's fields, all required, and the destination when there is one.
    fn parse(line: &[u8]) -> Option<QueuedEvent> {
        serde_json::from_slice(line).ok()
    }

    /// The line, newline included.
    fn line(&self) -> io::Result<Vec<u8>> {
        let mut line = serde_json::to_vec(self).map_err(io::Error::other)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// Parses outbox text: one entry per line, blank lines ignored. Returns the entries and how many
/// lines were not entries (a torn write, a foreign edit).
pub fn parse(bytes: &[u8]) -> (Vec<QueuedEvent>, usize) {
    let mut entries = Vec::new();
    let mut skipped = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match QueuedEvent::parse(line) {
            Some(entry) => entries.push(entry),
            None => skipped += 1,
        }
    }
    (entries, skipped)
}

/// What reading the outbox found, from the point of view of one destination.
#[derive(Debug, Default)]
pub struct Contents {
    /// Events queued for this destination, oldest first.
    pub events: Vec<Event>,
    /// Events kept for other destinations.
    pub foreign: usize,
    /// Events for other destinations older than `MAX_AGE`: dropped at the next rewrite.
    pub expired: usize,
    /// Lines that were not events.
    pub skipped: usize,
}

/// The outbox of one state directory, as seen by one destination.
#[derive(Debug, Clone)]
pub struct Outbox {
    state: StateDir,
    destination: Destination,
}

/// Result of a change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Events dropped to stay under `MAX_EVENTS` / `MAX_BYTES`.
    pub dropped: usize,
    /// Events for other destinations dropped for being older than `MAX_AGE`.
    pub expired: usize,
    /// Events left queued for this destination.
    pub queued: usize,
    /// Events left queued for other destinations.
    pub foreign: usize,
}

impl Outbox {
    /// The outbox in `state`, delivering to `destination`.
    pub fn new(state: StateDir, destination: Destination) -> Outbox {
        Outbox { state, destination }
    }

    /// Path of the queue file.
    pub fn path(&self) -> PathBuf {
        self.state.path().join("outbox.jsonl")
    }

    /// Takes the delivery lock if no other process holds it: whoever holds it is the only one
    /// sending queued events, so no event is sent twice by two callers.
    pub fn try_lock_delivery(&self) -> io::Result<Option<Lock>> {
        files::create_dir(self.state.path())?;
        Lock::try_acquire(&self.state.path().join(".delivery.lock"))
    }

    fn read(&self) -> io::Result<(Vec<QueuedEvent>, usize)> {
        match files::read(&self.path()) {
            Ok(bytes) => Ok(parse(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Vec::new(), 0)),
            Err(e) => Err(e),
        }
    }

    fn mine(&self, entry: &QueuedEvent) -> bool {
        entry.destination.as_ref() == Some(&self.destination)
    }

    /// Reads the queue.
    pub fn load(&self) -> io::Result<Contents> {
        let (entries, skipped) = self.read()?;
        let cutoff = cutoff();
        let mut contents = Contents {
            skipped,
            ..Contents::default()
        };
        for entry in entries {
            if self.mine(&entry) {
                contents.events.push(entry.event);
            } else if expired(&entry.event, &cutoff) {
                contents.expired += 1;
            } else {
                contents.foreign += 1;
            }
        }
        Ok(contents)
    }

    /// Removes this destination's events whose message IDs are in `done`, and other destinations'
    /// events older than `MAX_AGE`; appends `add` (skipping any already queued); then applies the
    /// caps, dropping the oldest.
    pub fn update(&self, done: &HashSet<String>, add: &[Event]) -> io::Result<Change> {
        let _lock = self.state.lock()?;
        let (current, _) = self.read()?;
        let cutoff = cutoff();
        let mut seen = HashSet::new();
        let mut change = Change::default();
        let added = add.iter().map(|event| QueuedEvent {
            destination: Some(self.destination.clone()),
            event: event.clone(),
        });
        let mut entries: Vec<QueuedEvent> = Vec::new();
        for entry in current.into_iter().chain(added) {
            let mine = self.mine(&entry);
            if mine && done.contains(&entry.event.message_id) {
                continue;
            }
            if !mine && expired(&entry.event, &cutoff) {
                change.expired += 1;
                continue;
            }
            if seen.insert(entry.event.message_id.clone()) {
                entries.push(entry);
            }
        }
        let mut lines: Vec<Vec<u8>> = entries.iter().map(QueuedEvent::line).collect::<io::Result<_>>()?;

        let mut dropped = entries.len().saturating_sub(MAX_EVENTS);
        let mut total: usize = lines.iter().skip(dropped).map(Vec::len).sum();
        while total > MAX_BYTES && dropped < lines.len() {
            total -= lines[dropped].len();
            dropped += 1;
        }
        entries.drain(..dropped);
        lines.drain(..dropped);

        if lines.is_empty() {
            match fs::remove_file(self.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        } else {
            files::atomic_write(&self.path(), &lines.concat(), 0o600)?;
        }
        change.dropped = dropped;
        change.queued = entries.iter().filter(|e| self.mine(e)).count();
        change.foreign = entries.len() - change.queued;
        Ok(change)
    }
}

/// The timestamp before which events are older than `MAX_AGE`, in the events' own format.
fn cutoff() -> String {
    let then = SystemTime::now().checked_sub(MAX_AGE).unwrap_or(SystemTime::UNIX_EPOCH);
    crate::event::rfc3339(then)
}

/// Whether an event was made before `cutoff`. Timestamps are all written by `event::rfc3339`, so
/// they compare as text, without a parser in the binary.
fn expired(event: &Event, cutoff: &str) -> bool {
    event.timestamp.as_str() < cutoff
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// `Event::numbered`, made now: events for other destinations age out.
    fn event(n: usize) -> Event {
        Event {
            timestamp: crate::event::now_rfc3339(),
            ..Event::numbered(n)
        }
    }

    fn to(endpoint: &str) -> Destination {
        Destination {
            protocol: beacon_wire::Protocol::Json,
            endpoint: endpoint.into(),
            credentials_sha256: None,
        }
    }

    fn outbox(dir: &tempfile::TempDir, endpoint: &str) -> Outbox {
        Outbox::new(StateDir::new(dir.path().to_owned()), to(endpoint))
    }

    fn ids(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.message_id.as_str()).collect()
    }

    #[test]
    fn append_remove_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = outbox(&dir, "http://a");
        outbox.update(&HashSet::new(), &[event(1), event(2)]).unwrap();
        outbox.update(&HashSet::new(), &[event(2), event(3)]).unwrap();
        assert_eq!(ids(&outbox.load().unwrap().events), ["m1", "m2", "m3"]);
        assert_eq!(fs::metadata(outbox.path()).unwrap().mode() & 0o777, 0o600);
        let done: HashSet<String> = ["m1".to_owned(), "m3".to_owned()].into();
        assert_eq!(
            outbox.update(&done, &[]).unwrap(),
            Change {
                queued: 1,
                ..Change::default()
            }
        );
        assert_eq!(ids(&outbox.load().unwrap().events), ["m2"]);
        outbox.update(&["m2".to_owned()].into(), &[]).unwrap();
        assert!(!outbox.path().exists(), "an empty outbox is removed");
    }

    #[test]
    fn torn_and_foreign_lines_are_skipped() {
        let entry = QueuedEvent {
            destination: Some(to("http://a")),
            event: event(1),
        };
        let good = String::from_utf8(entry.line().unwrap()).unwrap();
        let text = format!("{good}\n  \nnot json\n{good}{}", &good[..good.len() / 2]);
        let (entries, skipped) = parse(text.as_bytes());
        assert_eq!(entries.len(), 2);
        assert_eq!(skipped, 2);
    }

    /// What 0.1.0 wrote: every line reads, a call to the same endpoint and key still finds its
    /// events, and writing the lines back gives the same bytes.
    #[test]
    fn reads_and_rewrites_what_earlier_versions_wrote() {
        use crate::encode::{Endpoint, Target};
        use beacon_wire::Protocol;

        let old = include_str!("../../tests/fixtures/outbox-0.1.0.jsonl");
        let (entries, skipped) = parse(old.as_bytes());
        assert_eq!((entries.len(), skipped), (4, 0));
        let protocols: Vec<_> = entries
            .iter()
            .map(|e| e.destination.as_ref().map(|d| d.protocol))
            .collect();
        assert_eq!(
            protocols,
            [
                Some(Protocol::Json),
                Some(Protocol::Segment),
                Some(Protocol::Json),
                None
            ]
        );
        let target = |protocol, endpoint, key: &str| Target {
            protocol,
            endpoint: Endpoint::parse(endpoint).unwrap(),
            key: Some(key.to_owned()),
            headers: Vec::new(),
        };
        let json = target(Protocol::Json, "http://127.0.0.1:1/in?token=t0k&v", "k1");
        assert_eq!(entries[0].destination, Some(json.destination()));
        let segment = target(Protocol::Segment, "http://ada:pw@127.0.0.1:1", "wk");
        assert_eq!(entries[1].destination, Some(segment.destination()));
        assert_eq!(entries[1].event.properties["exit_code"], 3);
        let lines: Vec<u8> = entries.iter().flat_map(|e| e.line().unwrap()).collect();
        assert_eq!(String::from_utf8(lines).unwrap(), old);
    }

    #[test]
    fn each_destination_sees_only_its_own_events() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (outbox(&dir, "http://a"), outbox(&dir, "http://b"));
        a.update(&HashSet::new(), &[event(1)]).unwrap();
        b.update(&HashSet::new(), &[event(2)]).unwrap();
        assert_eq!(ids(&a.load().unwrap().events), ["m1"]);
        assert_eq!(a.load().unwrap().foreign, 1);
        // `done` only ever removes the caller's own events.
        let change = b.update(&["m1".to_owned(), "m2".to_owned()].into(), &[]).unwrap();
        assert_eq!((change.queued, change.foreign), (0, 1));
        assert_eq!(ids(&a.load().unwrap().events), ["m1"]);

        let mut old = event(3);
        old.timestamp = "2020-01-01T00:00:00.000Z".into();
        a.update(&HashSet::new(), &[old]).unwrap();
        assert_eq!(b.load().unwrap().expired, 1);
        let change = b.update(&HashSet::new(), &[]).unwrap();
        assert_eq!((change.expired, change.foreign), (1, 1));
        assert_eq!(ids(&a.load().unwrap().events), ["m1"]);
    }

    #[test]
    fn caps_drop_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = outbox(&dir, "http://a");
        let many: Vec<Event> = (0..MAX_EVENTS + 5).map(event).collect();
        let change = outbox.update(&HashSet::new(), &many).unwrap();
        assert_eq!(
            change,
            Change {
                dropped: 5,
                queued: MAX_EVENTS,
                ..Change::default()
            }
        );
        assert_eq!(outbox.load().unwrap().events[0].message_id, "m5");

        let big: Vec<Event> = (0..3)
            .map(|n| {
                let mut e = event(10_000 + n);
                e.properties.insert("blob".into(), "x".repeat(MAX_BYTES / 3).into());
                e
            })
            .collect();
        let change = outbox.update(&HashSet::new(), &big).unwrap();
        assert!(change.dropped >= MAX_EVENTS, "{change:?}");
        assert!(fs::metadata(outbox.path()).unwrap().len() as usize <= MAX_BYTES);
    }
}
