//! How an event is stored in few bytes, and read back as it was sent.
//!
//! - IDs (message and installation) that are UUIDs in their canonical lower-case text are stored
//!   as their 16 bytes, anything else as text; an ID retention made anonymous is 12 random bytes.
//! - Event names and products are small integers (`names`, where the checkpoints have fixed
//!   codes, and `products`).
//! - The properties a machine repeats in every event (product, versions, OS, arch, container, CI,
//!   agent, install method) are stored once in `facts` and referenced by its row ID; the rest
//!   of the properties (attempt, CPUs, memory, the step's fields) as SQLite JSONB.
//! - The sent timestamp is NULL when it is the event time in the beacon's own format (and
//!   trusted: see [`crate::store::trusted_times`]), and the receipt time an offset from the event
//!   time.

use std::collections::HashMap;

use beacon_wire::prop;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Map, Value};

use crate::clock;
use crate::event::{Event, Fallbacks, Protocol, names};

/// The checkpoint names and their codes in `events.name`; other names are numbered from 64 on.
pub const NAMES: [(i64, &str); 6] = [
    (1, names::STARTED),
    (2, names::SUCCESS),
    (3, names::ERROR),
    (4, names::SUPPORT),
    (5, names::INSTANCE_ACTIVE),
    (6, names::BEACON_UNAVAILABLE),
];

/// The code of a checkpoint name (one of [`NAMES`]).
pub fn code(name: &str) -> i64 {
    NAMES.iter().find(|(_, n)| *n == name).map_or(0, |(c, _)| *c)
}

/// [`crate::store::sql`], with `{#ERROR}` and the like replaced by the checkpoints' codes.
pub fn sql(template: &str) -> String {
    let mut text = template.to_string();
    for (placeholder, name) in [
        ("{#STARTED}", names::STARTED),
        ("{#SUCCESS}", names::SUCCESS),
        ("{#ERROR}", names::ERROR),
        ("{#SUPPORT}", names::SUPPORT),
        ("{#INSTANCE_ACTIVE}", names::INSTANCE_ACTIVE),
        ("{#BEACON_UNAVAILABLE}", names::BEACON_UNAVAILABLE),
    ] {
        text = text.replace(placeholder, &code(name).to_string());
    }
    crate::store::sql(&text)
}

/// The rows of the dictionaries (`names`, `products`, `facts`, `profiles`) the writer has
/// looked up or added, by their text, so that most events find their codes without a query.
/// Rows are only ever added; [`Codes::forget`] after a transaction that failed, whose rows are gone.
#[derive(Default)]
pub struct Codes([HashMap<String, i64>; 4]);

/// The dictionaries [`Codes`] caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dictionary {
    Names,
    Products,
    Facts,
    Profiles,
}

impl Codes {
    /// The code of `key` in `dictionary`: cached, else found by `find`, else added by `add`.
    pub fn get(
        &mut self,
        dictionary: Dictionary,
        key: &str,
        find: impl FnOnce() -> rusqlite::Result<Option<i64>>,
        add: impl FnOnce() -> rusqlite::Result<i64>,
    ) -> rusqlite::Result<i64> {
        let cached = &mut self.0[dictionary as usize];
        if let Some(code) = cached.get(key) {
            return Ok(*code);
        }
        let code = match find()? {
            Some(code) => code,
            None => add()?,
        };
        cached.insert(key.to_string(), code);
        Ok(code)
    }

    /// Forgets every code (after a transaction that may have added rows failed).
    pub fn forget(&mut self) {
        self.0.iter_mut().for_each(HashMap::clear);
    }
}

/// The code of event name `name`, adding it to `names` if it is new.
pub fn name_code(conn: &Connection, codes: &mut Codes, name: &str) -> rusqlite::Result<i64> {
    if let Some((c, _)) = NAMES.iter().find(|(_, n)| *n == name) {
        return Ok(*c);
    }
    let add = "INSERT INTO names (id, name) SELECT MAX(max(id) + 1, 64), ?1 FROM names RETURNING id";
    text_code(
        conn,
        codes,
        Dictionary::Names,
        name,
        "SELECT id FROM names WHERE name = ?1",
        add,
    )
}

/// The code of product `name` (`NO_PRODUCT` for none) in `products`, adding it if it is new.
pub fn product_code(conn: &Connection, codes: &mut Codes, name: &str) -> rusqlite::Result<i64> {
    let (find, add) = (
        "SELECT id FROM products WHERE product = ?1",
        "INSERT INTO products (product) VALUES (?1) RETURNING id",
    );
    text_code(conn, codes, Dictionary::Products, name, find, add)
}

/// The code of `text` in a dictionary keyed by one text column: `find` looks it up, `add` adds
/// it, both with it as ?1.
fn text_code(
    conn: &Connection,
    codes: &mut Codes,
    dictionary: Dictionary,
    text: &str,
    find: &str,
    add: &str,
) -> rusqlite::Result<i64> {
    codes.get(
        dictionary,
        text,
        || conn.prepare_cached(find)?.query_row([text], |r| r.get(0)).optional(),
        || conn.prepare_cached(add)?.query_row([text], |r| r.get(0)),
    )
}

/// The properties stored once per distinct value in `facts`.
const FACT_KEYS: [&str; 11] = [
    prop::PRODUCT,
    prop::PRODUCT_VERSION,
    prop::OS,
    prop::OS_VERSION,
    prop::ARCH,
    prop::CONTAINER,
    prop::CI,
    prop::CONTEXT,
    prop::AGENT,
    prop::INSTALL_METHOD,
    prop::BEACON_VERSION,
];

/// An ID as stored: see the module's documentation.
pub struct Id<'a> {
    text: &'a str,
    bytes: Option<[u8; 16]>,
}

impl Id<'_> {
    /// The ID `text`, as it is stored.
    pub fn new(text: &str) -> Id<'_> {
        Id {
            text,
            bytes: uuid_bytes(text),
        }
    }
}

impl ToSql for Id<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match &self.bytes {
            Some(bytes) => ValueRef::Blob(bytes),
            None => ValueRef::Text(self.text.as_bytes()),
        }))
    }
}

/// The 16 bytes of `text` if it is a UUID written the canonical way (lower case, hyphens).
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let canonical = text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    canonical
        .then(|| uuid::Uuid::try_parse(text).ok())
        .flatten()
        .map(uuid::Uuid::into_bytes)
}

/// An ID read back as the text it was received as.
pub struct IdText(pub String);

/// How retention writes an ID it made anonymous (`expired:` and 12 random bytes in hex).
pub const EXPIRED_PREFIX: &str = "expired:";

impl FromSql for IdText {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<IdText> {
        match value {
            ValueRef::Blob(bytes) if bytes.len() == 16 => {
                let id = uuid::Uuid::from_slice(bytes).map_err(|e| FromSqlError::Other(e.into()))?;
                Ok(IdText(id.hyphenated().to_string()))
            }
            ValueRef::Blob(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                Ok(IdText(format!("{EXPIRED_PREFIX}{hex}")))
            }
            ValueRef::Text(_) => String::column_result(value).map(IdText),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// What of an event is stored apart from its columns, worked out before the write transaction
/// (it needs no database).
pub struct Encoded {
    /// The repeated properties as a JSON object, then the protocol, product version, OS and OS
    /// version: the event's key in `facts` (see [`Encoded::facts_code`]).
    facts_key: String,
    /// Where the JSON object ends in `facts_key`.
    facts_len: usize,
    /// The other properties as JSON text (stored as JSONB), `None` when there are none.
    pub rest: Option<String>,
    /// The event time, when its sent timestamp is written as the beacon writes them and lies in
    /// the trusted window: the timestamp is then stored as NULL.
    pub sent_at: Option<i64>,
}

/// The properties of `map` whose key is (or is not) one of [`FACT_KEYS`], serialised as an
/// object without copying them.
struct Part<'a>(&'a Map<String, Value>, bool);

impl serde::Serialize for Part<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().filter(|(k, _)| FACT_KEYS.contains(&k.as_str()) == self.1))
    }
}

impl Encoded {
    /// Splits `e`'s properties into the repeated ones and the rest; `trusted` is the window of
    /// sent times taken as the event time.
    pub fn of(e: &Event, trusted: (i64, i64)) -> Encoded {
        let mut facts_key = serde_json::to_string(&Part(&e.properties, true)).unwrap_or_else(|_| "{}".into());
        let facts_len = facts_key.len();
        for part in [
            Some(e.protocol.name()),
            e.product_version.as_deref(),
            e.os.as_deref(),
            e.os_version.as_deref(),
        ] {
            facts_key.push(if part.is_some() { '\n' } else { '\0' });
            facts_key.push_str(part.unwrap_or_default());
        }
        let has_rest = e.properties.keys().any(|k| !FACT_KEYS.contains(&k.as_str()));
        let rest = has_rest.then(|| serde_json::to_string(&Part(&e.properties, false)).unwrap_or_else(|_| "{}".into()));
        let sent_at = e.timestamp.as_deref().and_then(|t| {
            let at = humantime::parse_rfc3339(t).ok()?;
            let ms = i64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
            (ms >= trusted.0 && ms <= trusted.1 && clock::iso(ms) == t).then_some(ms)
        });
        Encoded {
            facts_key,
            facts_len,
            rest,
            sent_at,
        }
    }

    /// The `facts` row of event `e` (encoded as `self`), added if it is new.
    pub fn facts_code(&self, conn: &Connection, codes: &mut Codes, e: &Event) -> rusqlite::Result<i64> {
        let row = params![
            &self.facts_key[..self.facts_len],
            e.protocol.name(),
            e.product_version,
            e.os,
            e.os_version
        ];
        codes.get(
            Dictionary::Facts,
            &self.facts_key,
            || {
                conn.prepare_cached(
                    "SELECT id FROM facts WHERE properties = ?1 AND protocol = ?2 AND product_version IS ?3
                     AND os IS ?4 AND os_version IS ?5",
                )?
                .query_row(row, |r| r.get(0))
                .optional()
            },
            || {
                conn.prepare_cached(
                    "INSERT INTO facts (properties, protocol, product_version, os, os_version)
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                )?
                .query_row(row, |r| r.get(0))
            },
        )
    }
}

/// The columns [`decode`] reads, of `events e JOIN names n JOIN facts f`.
pub const EVENT_COLUMNS: &str = "e.message_id, n.name, e.installation_id, e.ts_ms, e.ts_ms + e.received_after,
    e.timestamp, json(e.properties), f.protocol, f.os, f.os_version, f.properties";

/// How many columns [`EVENT_COLUMNS`] has (a query's further columns start here).
pub const DECODED_COLUMNS: usize = 11;

/// The tables [`EVENT_COLUMNS`] come from.
pub const EVENT_TABLES: &str = "events e JOIN names n ON n.id = e.name JOIN facts f ON f.id = e.facts";

/// A stored event as it was received: the event, its time and when it was received (ms).
pub fn decode(r: &Row<'_>) -> rusqlite::Result<(Event, i64, i64)> {
    let ts: i64 = r.get(3)?;
    let timestamp = match r.get_ref(5)? {
        ValueRef::Null => Some(clock::iso(ts)),
        ValueRef::Text(_) => Some(r.get(5)?),
        _ => None,
    };
    let mut properties = object(r.get_ref(10)?.as_str()?);
    if let Some(rest) = r.get_ref(6)?.as_str_or_null()? {
        properties.extend(object(rest));
    }
    let protocol: String = r.get(7)?;
    let event = Event::new(
        Protocol::from_name(&protocol).unwrap_or(Protocol::Json),
        Some(r.get::<_, IdText>(0)?.0),
        r.get(1)?,
        r.get::<_, IdText>(2)?.0,
        timestamp,
        properties,
        Fallbacks {
            os: r.get(8)?,
            os_version: r.get(9)?,
        },
    );
    Ok((event, ts, r.get(4)?))
}

/// The JSON object `json`, or an empty one.
pub fn object(json: &str) -> Map<String, Value> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The SQL expression that stores text ID column `column` of an older schema as [`Id`] does.
pub fn id_sql(column: &str) -> String {
    let hex = "[0-9a-f]";
    let uuid = [8, 4, 4, 4, 12].map(|n| hex.repeat(n)).join("-");
    format!(
        "CASE WHEN {column} GLOB '{uuid}' THEN unhex(replace({column}, '-', ''))
              WHEN {column} GLOB '{EXPIRED_PREFIX}*' AND length({column}) = 32
                   AND unhex(substr({column}, 9)) IS NOT NULL THEN unhex(substr({column}, 9))
              ELSE {column} END"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_stored_as_bytes() {
        let canonical = "1d1bbc9e-745e-49c7-a271-7eef126d3a5a";
        assert_eq!(uuid_bytes(canonical).map(|b| b[0]), Some(0x1d));
        for other in [
            "1D1BBC9E-745E-49C7-A271-7EEF126D3A5A",
            "1d1bbc9e745e49c7a2717eef126d3a5a",
            "{1d1bbc9e-745e-49c7-a271-7eef126d3a5a}",
            "inst-7",
            "",
        ] {
            assert_eq!(uuid_bytes(other), None, "{other}");
        }
    }

    #[test]
    fn ids_read_back_as_they_were_written() {
        let conn = Connection::open_in_memory().unwrap();
        for id in [
            "1d1bbc9e-745e-49c7-a271-7eef126d3a5a",
            "1D1BBC9E-745E-49C7-A271-7EEF126D3A5A",
            "inst-7",
            "expired:00112233445566778899aabb",
        ] {
            let stored: IdText = conn
                .query_row(&format!("SELECT {}", id_sql("?1")), [id], |r| r.get(0))
                .unwrap();
            assert_eq!(stored.0, id, "through SQL");
            let stored: IdText = conn.query_row("SELECT ?1", [Id::new(id)], |r| r.get(0)).unwrap();
            assert_eq!(stored.0, id, "through Rust");
        }
        let kind: String = conn
            .query_row(
                &format!("SELECT typeof({})", id_sql("?1")),
                ["1d1bbc9e-745e-49c7-a271-7eef126d3a5a"],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kind, "blob");
    }
}
