//! Turning request bodies of each wire format into [`Event`]s, with the backends' validation rules.
//!
//! Every function here is pure: bytes and header values in, events or an [`IngestError`] out.

pub mod json;
pub mod otlp;
pub mod posthog;
pub mod segment;

use std::io::Read;

use serde_json::{Map, Value};

use crate::event::{Event, Protocol};

/// Largest accepted request body (after decompression), as Segment allows.
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
/// Largest accepted single event, as Segment allows.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// Why a request was refused; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The body is not JSON, or not the expected shape (400).
    BadJson(String),
    /// An event lacks a required field or has a wrong type (400).
    Invalid(String),
    /// The body or an event is over the size limit (413).
    TooLarge(String),
    /// The key is missing or not one of the configured keys (401).
    Unauthorized(String),
    /// The body is not an OTLP logs request (400).
    BadOtlp(String),
    /// The `Content-Type` names no encoding the endpoint reads (415).
    UnsupportedMediaType(String),
}

impl IngestError {
    /// The HTTP status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            IngestError::BadJson(_) | IngestError::Invalid(_) | IngestError::BadOtlp(_) => 400,
            IngestError::TooLarge(_) => 413,
            IngestError::Unauthorized(_) => 401,
            IngestError::UnsupportedMediaType(_) => 415,
        }
    }

    /// What went wrong, naming the offending value.
    pub fn message(&self) -> &str {
        match self {
            IngestError::BadJson(m)
            | IngestError::Invalid(m)
            | IngestError::TooLarge(m)
            | IngestError::Unauthorized(m)
            | IngestError::BadOtlp(m)
            | IngestError::UnsupportedMediaType(m) => m,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            IngestError::BadJson(_) => "send a JSON body in the Segment, PostHog or plain JSON event format",
            IngestError::Invalid(_) => "every event needs an event name and an installation ID",
            IngestError::TooLarge(_) => "send at most 32 KB per event and 500 KB per request; split the batch",
            IngestError::Unauthorized(_) => "send one of the keys the collector was started with (--key)",
            IngestError::BadOtlp(_) | IngestError::UnsupportedMediaType(_) => {
                "send an OTLP ExportLogsServiceRequest as application/x-protobuf or application/json"
            }
        }
    }
}

/// A parsed request whose key was accepted: the events to store.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events to store (messages that are acknowledged but not stored are left out).
    pub events: Vec<Event>,
    /// Records refused on their own while the others are stored (OTLP's partial success).
    pub refused: Refused,
}

/// How many records of a request were refused, and why the first was.
#[derive(Debug, Clone, Default)]
pub struct Refused {
    /// Records refused.
    pub count: u64,
    /// Why the first of them was refused.
    pub first: Option<String>,
}

/// Accepted keys; an empty list accepts any key (or none).
#[derive(Debug, Clone, Default)]
pub struct Keys(Vec<String>);

impl Keys {
    /// Accept exactly these keys, or anything if the list is empty.
    pub fn new(keys: Vec<String>) -> Keys {
        Keys(keys)
    }

    /// Checks the key a request carried.
    pub fn check(&self, key: Option<&str>) -> Result<(), IngestError> {
        if self.0.is_empty() {
            return Ok(());
        }
        match key {
            None => Err(IngestError::Unauthorized("missing write key".into())),
            // Every key is compared, so the time taken does not say which one came close.
            Some(k)
                if self
                    .0
                    .iter()
                    .fold(false, |found, known| found | crate::secret::same(k, known)) =>
            {
                Ok(())
            }
            Some(k) => Err(IngestError::Unauthorized(format!(
                "unknown write key {:?}",
                abbreviate(k)
            ))),
        }
    }
}

fn abbreviate(key: &str) -> String {
    let short: String = key.chars().take(12).collect();
    if short.len() < key.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// Undoes `Content-Encoding: gzip` (also recognised by its magic bytes), within the size limit.
pub fn decode_body(content_encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, IngestError> {
    let gzip =
        content_encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip")) || body.starts_with(&[0x1f, 0x8b]);
    if let Some(enc) = content_encoding.map(str::trim)
        && !enc.is_empty()
        && !enc.eq_ignore_ascii_case("gzip")
        && !enc.eq_ignore_ascii_case("identity")
    {
        return Err(IngestError::BadJson(format!(
            "unsupported Content-Encoding {enc:?}; use gzip or none"
        )));
    }
    if body.len() > MAX_REQUEST_BYTES {
        return Err(too_large(body.len()));
    }
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let limit = MAX_REQUEST_BYTES as u64 + 1;
    flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadJson(format!("body is not valid gzip: {e}")))?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(too_large(out.len()));
    }
    Ok(out)
}

/// The error for a body over [`MAX_REQUEST_BYTES`].
pub fn too_large(len: usize) -> IngestError {
    IngestError::TooLarge(format!(
        "request body of {len} bytes is over the {MAX_REQUEST_BYTES} byte limit"
    ))
}

/// Parses JSON, naming where it went wrong.
pub fn parse_json(body: &[u8]) -> Result<Value, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::BadJson("request body is empty".into()));
    }
    serde_json::from_slice(body).map_err(|e| IngestError::BadJson(format!("invalid JSON: {e}")))
}

/// Parses a body in the given protocol. `header_key` is the key from the `Authorization` header,
/// if any. The key is checked against `keys` before the events are validated, so a wrong key is a
/// 401 whatever else is wrong with the events. `default_type` is the Segment message type implied
/// by the endpoint (`track` for `/v1/batch` and `/v1/track`); `content_type` tells OTLP's two
/// encodings apart.
pub fn parse(
    protocol: Protocol,
    body: &[u8],
    header_key: Option<String>,
    default_type: &str,
    content_type: Option<&str>,
    keys: &Keys,
) -> Result<Batch, IngestError> {
    if protocol != Protocol::Posthog && header_key.is_some() {
        // The header key wins over any body key for these protocols: refuse before parsing.
        keys.check(header_key.as_deref())?;
    }
    match protocol {
        Protocol::Segment => segment::parse(parse_json(body)?, header_key, default_type, keys),
        Protocol::Posthog => posthog::parse(parse_json(body)?, header_key, keys),
        Protocol::Json => json::parse(parse_json(body)?, header_key, keys),
        Protocol::Otlp => otlp::parse(body, otlp::Encoding::of(content_type)?, header_key, keys),
    }
}

/// Fails if one event serialises to more than [`MAX_EVENT_BYTES`].
pub fn check_event_size(item: &Value, index: usize) -> Result<(), IngestError> {
    let mut counter = ByteCounter(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, item);
    if counter.0 > MAX_EVENT_BYTES {
        return Err(IngestError::TooLarge(format!(
            "event {index} is {} bytes, over the {MAX_EVENT_BYTES} byte limit",
            counter.0
        )));
    }
    Ok(())
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The object at `index`, or a message saying what it was instead.
pub fn as_object(item: Value, index: usize) -> Result<Map<String, Value>, IngestError> {
    match item {
        Value::Object(m) => Ok(m),
        other => Err(IngestError::BadJson(format!(
            "event {index} is {}, expected an object",
            kind(&other)
        ))),
    }
}

/// A required non-empty string (numbers are accepted and written as text).
pub fn required_text(obj: &Map<String, Value>, keys: &[&str], index: usize) -> Result<String, IngestError> {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(crate::event::as_text))
        .ok_or_else(|| IngestError::Invalid(format!("event {index} is missing {}", keys.join(" or "))))
}

/// An optional string field.
pub fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(crate::event::as_text)
}

/// The `properties` object (empty if absent); a non-object is an error.
pub fn properties(obj: &mut Map<String, Value>, index: usize) -> Result<Map<String, Value>, IngestError> {
    match obj.remove("properties") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(IngestError::Invalid(format!(
            "event {index} has properties of type {}, expected an object",
            kind(&other)
        ))),
    }
}

/// JSON type name for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Returns the array of items, checking the request is not empty.
pub fn items(value: Value, what: &str) -> Result<Vec<Value>, IngestError> {
    match value {
        Value::Array(items) if items.is_empty() => Err(IngestError::Invalid(format!("{what} is empty"))),
        Value::Array(items) => Ok(items),
        other => Err(IngestError::BadJson(format!(
            "{what} is {}, expected an array",
            kind(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn keys_empty_accepts_anything() {
        assert_eq!(Keys::default().check(None), Ok(()));
        let keys = Keys::new(vec!["k1".into()]);
        assert_eq!(keys.check(Some("k1")), Ok(()));
        assert_eq!(keys.check(None).map_err(|e| e.status()), Err(401));
        assert_eq!(keys.check(Some("nope")).map_err(|e| e.status()), Err(401));
    }

    #[test]
    fn gzip_bodies_are_decoded_and_limited() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"a\":1}").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode_body(Some("gzip"), &gz).unwrap(), b"{\"a\":1}");
        assert_eq!(decode_body(None, &gz).unwrap(), b"{\"a\":1}");

        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; MAX_REQUEST_BYTES + 10]).unwrap();
        let bomb = enc.finish().unwrap();
        assert_eq!(decode_body(Some("gzip"), &bomb).map_err(|e| e.status()), Err(413));
        assert_eq!(decode_body(Some("br"), b"{}").map_err(|e| e.status()), Err(400));
    }

    #[test]
    fn bad_json_names_the_problem() {
        let err = parse_json(b"{\"batch\": [").unwrap_err();
        assert!(err.message().contains("EOF"), "{}", err.message());
        assert_eq!(parse_json(b"  ").unwrap_err().message(), "request body is empty");
    }
}
