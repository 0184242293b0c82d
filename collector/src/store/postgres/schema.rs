//! The tables and indexes, created at start under an advisory lock, so that replicas starting
//! together migrate once.

use postgres::Client;

use super::aggregates;
use crate::store::{StoreError, sql};

/// Schema version kept in `beacon_schema`.
const SCHEMA_VERSION: i32 = 2;

/// The SQLite schema's tables (see `sqlite/schema.rs`) in PostgreSQL terms: text compares
/// byte-wise (`COLLATE "C"`, as in SQLite) so that reports order alike on both; the derived
/// columns are stored; `beacon_sent_ms` parses what SQLite's `julianday` parses (ISO 8601, `Z` or
/// `±HH:MM`, naive times in UTC). The relay's queue rows can be claimed by one replica at a time.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      TEXT COLLATE "C" NOT NULL UNIQUE,
    protocol        TEXT COLLATE "C" NOT NULL,
    event           TEXT COLLATE "C" NOT NULL,
    installation_id TEXT COLLATE "C" NOT NULL,
    timestamp       TEXT COLLATE "C",
    ts_ms           BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    product         TEXT COLLATE "C",
    product_version TEXT COLLATE "C",
    os              TEXT COLLATE "C",
    os_version      TEXT COLLATE "C",
    step            TEXT COLLATE "C",
    exit_code       BIGINT,
    email           TEXT COLLATE "C",
    duration_ms     BIGINT,
    properties      TEXT NOT NULL,
    message         TEXT COLLATE "C" GENERATED ALWAYS AS (properties::jsonb ->> '{MESSAGE}') STORED
);
CREATE INDEX IF NOT EXISTS events_by_installation ON events (installation_id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (ts_ms);
CREATE INDEX IF NOT EXISTS errors_by_message
    ON events (product, step, exit_code, message, ts_ms) WHERE event = '{ERROR}';
CREATE INDEX IF NOT EXISTS support_requests ON events (product, ts_ms, email) WHERE event = '{SUPPORT}';
CREATE INDEX IF NOT EXISTS beacon_unavailable ON events (product, ts_ms) WHERE event = '{BEACON_UNAVAILABLE}';

CREATE TABLE IF NOT EXISTS installations (
    product           TEXT COLLATE "C" NOT NULL,
    installation_id   TEXT COLLATE "C" NOT NULL,
    os                TEXT COLLATE "C" NOT NULL,
    os_version        TEXT COLLATE "C" NOT NULL,
    product_version   TEXT COLLATE "C" NOT NULL,
    arch              TEXT COLLATE "C" NOT NULL DEFAULT 'unknown',
    container         TEXT COLLATE "C" NOT NULL DEFAULT 'unknown',
    ci                BOOLEAN NOT NULL DEFAULT false,
    agent             TEXT COLLATE "C" NOT NULL DEFAULT '',
    install_method    TEXT COLLATE "C" NOT NULL DEFAULT 'unknown',
    first_at          BIGINT NOT NULL,
    started_at        BIGINT,
    success_at        BIGINT,
    error_at          BIGINT,
    success_duration  BIGINT,
    attempt           BIGINT NOT NULL DEFAULT 1,
    earlier_succeeded BIGINT NOT NULL DEFAULT 0,
    earlier_failed    BIGINT NOT NULL DEFAULT 0,
    {OUTCOME_COLUMNS}
    PRIMARY KEY (product, installation_id)
);
CREATE INDEX IF NOT EXISTS installations_by_id ON installations (installation_id);
CREATE INDEX IF NOT EXISTS installations_by_first ON installations (first_at, product);

CREATE TABLE IF NOT EXISTS instances (
    product         TEXT COLLATE "C" NOT NULL,
    installation_id TEXT COLLATE "C" NOT NULL,
    last_active_at  BIGINT NOT NULL,
    PRIMARY KEY (product, installation_id)
);
CREATE INDEX IF NOT EXISTS instances_by_activity ON instances (last_active_at, product);

CREATE TABLE IF NOT EXISTS error_days (
    product       TEXT COLLATE "C" NOT NULL,
    day           BIGINT NOT NULL,
    step          TEXT COLLATE "C" NOT NULL,
    exit_code     BIGINT,
    message       TEXT COLLATE "C" NOT NULL,
    events        BIGINT NOT NULL,
    installations BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS error_days_by_product ON error_days (product, day);
CREATE TABLE IF NOT EXISTS support_days (
    product  TEXT COLLATE "C" NOT NULL,
    day      BIGINT NOT NULL,
    requests BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS support_days_by_product ON support_days (product, day);
CREATE TABLE IF NOT EXISTS unavailable_days (
    product TEXT COLLATE "C" NOT NULL,
    day     BIGINT NOT NULL,
    events  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS unavailable_days_by_product ON unavailable_days (product, day);

CREATE TABLE IF NOT EXISTS forward_queue (
    target        TEXT COLLATE "C" NOT NULL,
    event_id      BIGINT NOT NULL,
    claimed_by    TEXT,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (target, event_id)
);
CREATE TABLE IF NOT EXISTS forward_status (
    target          TEXT COLLATE "C" PRIMARY KEY,
    url             TEXT NOT NULL,
    forwarded       BIGINT NOT NULL DEFAULT 0,
    rejected        BIGINT NOT NULL DEFAULT 0,
    last_success_at BIGINT,
    failing_since   BIGINT,
    last_error      TEXT
);

CREATE OR REPLACE FUNCTION beacon_sent_ms(t text) RETURNS bigint
LANGUAGE plpgsql STABLE SET timezone = 'UTC' AS $fn$
BEGIN
    IF t IS NULL OR t !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?$' THEN
        RETURN NULL;
    END IF;
    RETURN round(extract(epoch FROM t::timestamptz) * 1000)::bigint;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$fn$;
"#;

/// Version 2: the report's aggregates, kept at ingest, as SQLite's version 7 (see
/// `sqlite/schema.rs`): `tallies`, `error_counts` and `day_counts` take over what retention kept
/// in `error_days`, `support_days` and `unavailable_days`; `active_hours` counts instances by the
/// hour of their last activity, and `meta` remembers the retention
/// cutoff. They are filled by `rebuild` in the same transaction.
const MIGRATION_2: &str = r#"
ALTER TABLE installations ADD COLUMN IF NOT EXISTS error_steps TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE TABLE tallies (
    product           TEXT COLLATE "C" NOT NULL,
    dim               BIGINT NOT NULL,
    tier              BIGINT NOT NULL,
    period            BIGINT NOT NULL,
    ci                BOOLEAN NOT NULL,
    agent             BOOLEAN NOT NULL,
    value             TEXT COLLATE "C" NOT NULL,
    status            BIGINT NOT NULL,
    installations     BIGINT NOT NULL,
    attempts          BIGINT NOT NULL,
    earlier_succeeded BIGINT NOT NULL,
    earlier_failed    BIGINT NOT NULL,
    had_failed        BIGINT NOT NULL,
    durations         BYTEA NOT NULL,
    PRIMARY KEY (product, dim, tier, period, ci, agent, value, status)
);
CREATE TABLE error_counts (
    product       TEXT COLLATE "C" NOT NULL,
    day           BIGINT NOT NULL,
    step          TEXT COLLATE "C" NOT NULL,
    exit_code     BIGINT NOT NULL,
    message       TEXT COLLATE "C" NOT NULL,
    events        BIGINT NOT NULL,
    installations BIGINT NOT NULL,
    PRIMARY KEY (product, day, step, exit_code, message)
);
CREATE TABLE day_counts (
    kind    BIGINT NOT NULL,
    product TEXT COLLATE "C" NOT NULL,
    day     BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (kind, product, day)
);
CREATE TABLE active_hours (
    product   TEXT COLLATE "C" NOT NULL,
    hour      BIGINT NOT NULL,
    instances BIGINT NOT NULL,
    PRIMARY KEY (product, hour)
);
CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO error_counts
    SELECT product, day, step, COALESCE(exit_code, {NO_EXIT_CODE}), message, SUM(events), SUM(installations)
    FROM error_days GROUP BY 1, 2, 3, 4, 5;
INSERT INTO day_counts SELECT 0, product, day, SUM(requests) FROM support_days GROUP BY 2, 3;
INSERT INTO day_counts SELECT 1, product, day, SUM(events) FROM unavailable_days GROUP BY 2, 3;
INSERT INTO meta SELECT 'retained_before', (MAX(day) + 1) * 86400000 FROM (
    SELECT MAX(day) AS day FROM error_days UNION ALL SELECT MAX(day) FROM support_days
    UNION ALL SELECT MAX(day) FROM unavailable_days) AS retained HAVING MAX(day) IS NOT NULL;
DROP TABLE error_days, support_days, unavailable_days;
"#;

/// Key of the advisory lock migrations hold (any fixed number; "beacon" in ASCII).
const MIGRATION_LOCK: i64 = 0x6265_6163_6f6e;

/// Creates the schema if it is missing and brings an older one up to [`SCHEMA_VERSION`], in one
/// transaction holding [`MIGRATION_LOCK`], so that replicas starting together wait for the first.
/// A database already at [`SCHEMA_VERSION`] is only read.
pub fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let current = || "SELECT COALESCE(MAX(version), 0) FROM beacon_schema";
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS beacon_schema (version INTEGER NOT NULL)")
        .or_else(|e| {
            // Two replicas creating the table at once: one loses the race and finds it there.
            if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    let version: i32 = client.query_one(current(), &[])?.get(0);
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let version: i32 = tx.query_one(current(), &[])?.get(0);
    if version < 1 {
        let outcome = crate::store::outcome_columns(r#"TEXT COLLATE "C""#, "BIGINT", "STORED");
        tx.batch_execute(&sql(&SCHEMA.replace("{OUTCOME_COLUMNS}", &outcome)))?;
    }
    if version < 2 {
        tx.batch_execute(&sql(MIGRATION_2))?;
        aggregates::rebuild(&mut tx)?;
    }
    if version < SCHEMA_VERSION {
        tx.execute("DELETE FROM beacon_schema", &[])?;
        tx.execute("INSERT INTO beacon_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])?;
    }
    tx.commit()?;
    Ok(())
}
