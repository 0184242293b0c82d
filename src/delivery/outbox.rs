//! The outbox: events not yet delivered, one JSON line each in `<state dir>/outbox.jsonl` (0600),
//! oldest first. Every change is a read-modify-atomic-rewrite under the state directory's lock, so a
//! crash leaves either the old queue or the new one; unreadable lines are skipped, never fatal.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::event::Event;
use crate::store::files::{self, Lock};
use crate::store::state::StateDir;

/// Most events kept; the oldest are dropped past this.
pub const MAX_EVENTS: usize = 1000;
/// Most bytes kept; the oldest events are dropped past this.
pub const MAX_BYTES: usize = 1024 * 1024;

/// What reading the outbox found.
#[derive(Debug, Default)]
pub struct Contents {
    /// Queued events, oldest first.
    pub events: Vec<Event>,
    /// Lines that were not events (a torn write, a foreign edit).
    pub skipped: usize,
}

/// Parses outbox text: one event per line, blank lines ignored, bad lines counted.
pub fn parse(bytes: &[u8]) -> Contents {
    let mut contents = Contents::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(event) => contents.events.push(event),
            Err(_) => contents.skipped += 1,
        }
    }
    contents
}

/// The outbox of one state directory.
#[derive(Debug, Clone)]
pub struct Outbox {
    state: StateDir,
}

/// Result of a change: how many old events the caps pushed out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Events dropped to stay under `MAX_EVENTS` / `MAX_BYTES`.
    pub dropped: usize,
    /// Events left queued.
    pub queued: usize,
}

impl Outbox {
    /// The outbox in `state`.
    pub fn new(state: StateDir) -> Outbox {
        Outbox { state }
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

    /// Reads the queue.
    pub fn load(&self) -> io::Result<Contents> {
        match fs::read(self.path()) {
            Ok(bytes) => Ok(parse(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Contents::default()),
            Err(e) => Err(e),
        }
    }

    /// Removes the events whose message IDs are in `done` and appends `add` (skipping any already
    /// queued), then applies the caps, dropping the oldest.
    pub fn update(&self, done: &HashSet<String>, add: &[Event]) -> io::Result<Change> {
        let _lock = self.state.lock()?;
        let current = self.load()?;
        let mut seen = HashSet::new();
        let mut events: Vec<Event> = current
            .events
            .into_iter()
            .chain(add.iter().cloned())
            .filter(|e| !done.contains(&e.message_id) && seen.insert(e.message_id.clone()))
            .collect();
        let mut lines: Vec<Vec<u8>> = events.iter().map(line).collect::<io::Result<_>>()?;

        let mut dropped = events.len().saturating_sub(MAX_EVENTS);
        let mut total: usize = lines.iter().skip(dropped).map(Vec::len).sum();
        while total > MAX_BYTES && dropped < lines.len() {
            total -= lines[dropped].len();
            dropped += 1;
        }
        events.drain(..dropped);
        lines.drain(..dropped);

        if lines.is_empty() {
            match fs::remove_file(self.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        } else {
            files::atomic_write(&self.path(), &lines.concat(), 0o600)?;
        }
        Ok(Change {
            dropped,
            queued: events.len(),
        })
    }
}

fn line(event: &Event) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn ids(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.message_id.as_str()).collect()
    }

    #[test]
    fn append_remove_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(StateDir::new(dir.path().to_owned()));
        outbox
            .update(&HashSet::new(), &[Event::numbered(1), Event::numbered(2)])
            .unwrap();
        outbox
            .update(&HashSet::new(), &[Event::numbered(2), Event::numbered(3)])
            .unwrap();
        assert_eq!(ids(&outbox.load().unwrap().events), ["m1", "m2", "m3"]);
        assert_eq!(fs::metadata(outbox.path()).unwrap().mode() & 0o777, 0o600);
        let done: HashSet<String> = ["m1".to_owned(), "m3".to_owned()].into();
        assert_eq!(outbox.update(&done, &[]).unwrap(), Change { dropped: 0, queued: 1 });
        assert_eq!(ids(&outbox.load().unwrap().events), ["m2"]);
        outbox.update(&["m2".to_owned()].into(), &[]).unwrap();
        assert!(!outbox.path().exists(), "an empty outbox is removed");
    }

    #[test]
    fn torn_and_foreign_lines_are_skipped() {
        let good = String::from_utf8(line(&Event::numbered(1)).unwrap()).unwrap();
        let text = format!("{good}\n  \nnot json\n{good}{}", &good[..good.len() / 2]);
        let contents = parse(text.as_bytes());
        assert_eq!(ids(&contents.events), ["m1", "m1"]);
        assert_eq!(contents.skipped, 2);
    }

    #[test]
    fn caps_drop_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(StateDir::new(dir.path().to_owned()));
        let many: Vec<Event> = (0..MAX_EVENTS + 5).map(Event::numbered).collect();
        let change = outbox.update(&HashSet::new(), &many).unwrap();
        assert_eq!(
            change,
            Change {
                dropped: 5,
                queued: MAX_EVENTS
            }
        );
        assert_eq!(outbox.load().unwrap().events[0].message_id, "m5");

        let big: Vec<Event> = (0..3)
            .map(|n| {
                let mut e = Event::numbered(10_000 + n);
                e.properties.insert("blob".into(), "x".repeat(MAX_BYTES / 3).into());
                e
            })
            .collect();
        let change = outbox.update(&HashSet::new(), &big).unwrap();
        assert!(change.dropped >= MAX_EVENTS, "{change:?}");
        assert!(fs::metadata(outbox.path()).unwrap().len() as usize <= MAX_BYTES);
    }
}
