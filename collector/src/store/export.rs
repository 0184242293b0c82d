//! `export`: every stored event, one per line, as JSON Lines or CSV, for a move to another system.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError};
use crate::clock;

/// Output formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line; `properties` as an object.
    Jsonl,
    /// A header, then one row per event; `properties` as JSON text.
    Csv,
}

/// One exported event: what was sent, with the facts read from it and both times in UTC.
#[derive(Debug, Serialize)]
struct Row {
    message_id: String,
    event: String,
    installation_id: String,
    timestamp: String,
    received_at: String,
    sent_timestamp: Option<String>,
    protocol: String,
    product: Option<String>,
    product_version: Option<String>,
    os: Option<String>,
    os_version: Option<String>,
    step: Option<String>,
    exit_code: Option<i64>,
    email: Option<String>,
    duration_ms: Option<i64>,
    properties: Value,
}

/// Writes every event of `store`, oldest first, streaming; returns how many.
pub fn export(store: &dyn Store, format: Format, out: &mut dyn Write) -> Result<u64, StoreError> {
    let mut sink = match format {
        Format::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
        Format::Jsonl => Sink::Jsonl(out),
    };
    let n = store.each_event(&mut |e| {
        let mut row = Row {
            message_id: e.message_id,
            event: e.event,
            installation_id: e.installation_id,
            timestamp: clock::iso(e.ts_ms),
            received_at: clock::iso(e.received_at_ms),
            sent_timestamp: e.sent_timestamp,
            protocol: e.protocol,
            product: e.product,
            product_version: e.product_version,
            os: e.os,
            os_version: e.os_version,
            step: e.step,
            exit_code: e.exit_code,
            email: e.email,
            duration_ms: e.duration_ms,
            properties: Value::Null,
        };
        match &mut sink {
            Sink::Csv(w) => {
                row.properties = Value::String(e.properties);
                w.serialize(&row).map_err(|e| StoreError::Io(e.into()))
            }
            Sink::Jsonl(out) => {
                row.properties = serde_json::from_str(&e.properties).unwrap_or(Value::String(e.properties));
                serde_json::to_writer(&mut *out, &row).map_err(|e| StoreError::Io(e.into()))?;
                out.write_all(b"\n").map_err(StoreError::Io)
            }
        }
    })?;
    if let Sink::Csv(mut w) = sink {
        w.flush().map_err(StoreError::Io)?;
    }
    Ok(n)
}

/// Where rows go: a CSV writer (which writes the header before the first row), or lines of JSON.
enum Sink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    Jsonl(&'a mut dyn Write),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Fallbacks, Protocol};
    use crate::store::sqlite::Sqlite;

    #[test]
    fn jsonl_and_csv_carry_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::create(&dir.path().join("e.sqlite"), std::time::Duration::from_secs(1)).unwrap();
        let props = serde_json::json!({"product": "acme", "step": "db, \"main\""});
        let e = Event::new(
            Protocol::Segment,
            Some("m1".into()),
            "Installation Error".into(),
            "i1".into(),
            Some("2026-11-23T10:00:00Z".into()),
            props.as_object().cloned().unwrap_or_default(),
            Fallbacks::default(),
        );
        store.insert(&[e], 1_795_428_001_000).unwrap();

        let mut out = Vec::new();
        assert_eq!(export(&store, Format::Jsonl, &mut out).unwrap(), 1);
        let line: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["timestamp"], "2026-11-23T10:00:00.000Z");
        assert_eq!(line["received_at"], "2026-11-23T10:00:01.000Z");
        assert_eq!(line["properties"], props);
        assert_eq!(line["protocol"], "segment");

        let mut out = Vec::new();
        export(&store, Format::Csv, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("message_id,event,installation_id,timestamp,")
        );
        assert!(
            lines
                .next()
                .unwrap()
                .ends_with(r#","{""product"":""acme"",""step"":""db, \""main\""""}""#),
            "{text}"
        );
    }
}
