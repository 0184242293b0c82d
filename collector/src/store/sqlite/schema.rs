//! The tables and indexes, and bringing an older database up to the current schema.

use rusqlite::Connection;

use super::{StoreError, aggregates, codec, ingest, sql};

/// What `installations` computes from its times (in [`SCHEMA`] and [`MIGRATION_8`]), computed
/// when read.
fn outcome_columns() -> String {
    crate::store::outcome_columns("TEXT", "INTEGER", "VIRTUAL")
}

/// [`SCHEMA`] as run (on a new database, before the migrations).
pub(super) fn first_schema() -> String {
    sql(&SCHEMA.replace("{OUTCOME_COLUMNS}", &outcome_columns()))
}

/// The first schema. `events` keeps everything that was sent; `installations` and `instances` are
/// maintained in the same transaction so that reports aggregate one row per installation (through
/// covering indexes) instead of regrouping every event.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    protocol        TEXT NOT NULL,
    event           TEXT NOT NULL,
    installation_id TEXT NOT NULL,
    timestamp       TEXT,
    ts_ms           INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    product         TEXT,
    product_version TEXT,
    os              TEXT,
    os_version      TEXT,
    step            TEXT,
    exit_code       INTEGER,
    email           TEXT,
    duration_ms     INTEGER,
    properties      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS errors_by_step
    ON events (product, step, exit_code, ts_ms, installation_id) WHERE event = '{ERROR}';
CREATE INDEX IF NOT EXISTS support_requests
    ON events (product, ts_ms, email) WHERE event = '{SUPPORT}';

CREATE TABLE IF NOT EXISTS installations (
    product          TEXT NOT NULL,
    installation_id  TEXT NOT NULL,
    os               TEXT NOT NULL,
    os_version       TEXT NOT NULL,
    product_version  TEXT NOT NULL,
    first_at         INTEGER NOT NULL,
    started_at       INTEGER,
    success_at       INTEGER,
    error_at         INTEGER,
    success_duration INTEGER,
    {OUTCOME_COLUMNS}
    PRIMARY KEY (product, installation_id)
);
CREATE INDEX IF NOT EXISTS installations_cube
    ON installations (product, os, os_version, product_version, start_day, status, outcome_day, first_at, duration);

CREATE TABLE IF NOT EXISTS instances (
    product         TEXT NOT NULL,
    installation_id TEXT NOT NULL,
    last_active_at  INTEGER NOT NULL,
    PRIMARY KEY (product, installation_id)
);
CREATE INDEX IF NOT EXISTS instances_by_activity ON instances (last_active_at, product);
";

/// Schema version kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 8;

/// Version 8: events in fewer bytes (see `codec.rs`). `events` references its name (`names`),
/// product (`products`) and the properties its machine repeats (`facts`) by small integers, keeps IDs that are UUIDs
/// as 16 bytes and the other properties as JSONB; `installations` references its product and
/// facts (`profiles`) and, like `instances`, is keyed by (product, ID) without a second index. The
/// tables are copied over (events keep their row IDs, which the relay's queue refers to).
const MIGRATION_8: &str = "
CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE products (id INTEGER PRIMARY KEY, product TEXT NOT NULL UNIQUE);
CREATE TABLE facts (
    id              INTEGER PRIMARY KEY,
    protocol        TEXT NOT NULL,
    product_version TEXT,
    os              TEXT,
    os_version      TEXT,
    properties      TEXT NOT NULL
);
CREATE INDEX facts_by_properties ON facts (properties);
CREATE TABLE profiles (
    id              INTEGER PRIMARY KEY,
    os              TEXT NOT NULL,
    os_version      TEXT NOT NULL,
    product_version TEXT NOT NULL,
    arch            TEXT NOT NULL,
    container       TEXT NOT NULL,
    install_method  TEXT NOT NULL,
    agent           TEXT NOT NULL,
    ci              INTEGER NOT NULL,
    UNIQUE (os, os_version, product_version, arch, container, install_method, agent, ci)
);

ALTER TABLE events RENAME TO events_7;
DROP INDEX IF EXISTS errors_by_time;
DROP INDEX IF EXISTS support_requests;
DROP INDEX IF EXISTS beacon_unavailable;
CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    message_id     BLOB NOT NULL UNIQUE,
    name           INTEGER NOT NULL,
    product        INTEGER NOT NULL,
    installation_id BLOB NOT NULL,
    ts_ms          INTEGER NOT NULL,
    received_after INTEGER NOT NULL,
    facts          INTEGER NOT NULL,
    step           TEXT,
    exit_code      INTEGER,
    email          TEXT,
    duration_ms    INTEGER,
    timestamp      BLOB,
    properties     BLOB,
    message TEXT GENERATED ALWAYS AS (json_extract(properties, '$.{MESSAGE}')) VIRTUAL
);

ALTER TABLE installations RENAME TO installations_7;
DROP INDEX IF EXISTS installations_by_first;
INSERT OR IGNORE INTO products (product) SELECT DISTINCT product FROM installations_7;
INSERT INTO profiles (os, os_version, product_version, arch, container, install_method, agent, ci)
    SELECT DISTINCT os, os_version, product_version, arch, container, install_method, agent, ci FROM installations_7;
CREATE TABLE installations (
    product           INTEGER NOT NULL,
    installation_id   BLOB NOT NULL,
    profile           INTEGER NOT NULL,
    first_at          INTEGER NOT NULL,
    started_at        INTEGER,
    success_at        INTEGER,
    error_at          INTEGER,
    success_duration  INTEGER,
    attempt           INTEGER NOT NULL,
    earlier_succeeded INTEGER NOT NULL,
    earlier_failed    INTEGER NOT NULL,
    error_steps       TEXT NOT NULL,
    {OUTCOME_COLUMNS}
    PRIMARY KEY (product, installation_id)
) WITHOUT ROWID;
INSERT INTO installations (product, installation_id, profile, first_at, started_at, success_at, error_at,
    success_duration, attempt, earlier_succeeded, earlier_failed, error_steps)
SELECT pr.id, {ID}, p.id, i.first_at, i.started_at, i.success_at, i.error_at, i.success_duration,
       i.attempt, i.earlier_succeeded, i.earlier_failed, i.error_steps
FROM installations_7 i JOIN products pr ON pr.product = i.product
    JOIN profiles p USING (os, os_version, product_version, arch, container, install_method, agent, ci);
DROP TABLE installations_7;
CREATE INDEX installations_by_first ON installations (first_at);

ALTER TABLE instances RENAME TO instances_7;
DROP INDEX IF EXISTS instances_by_activity;
INSERT OR IGNORE INTO products (product) SELECT DISTINCT product FROM instances_7;
CREATE TABLE instances (
    product         INTEGER NOT NULL,
    installation_id BLOB NOT NULL,
    last_active_at  INTEGER NOT NULL,
    PRIMARY KEY (product, installation_id)
) WITHOUT ROWID;
INSERT INTO instances SELECT pr.id, {ID}, i.last_active_at FROM instances_7 i JOIN products pr ON pr.product = i.product;
DROP TABLE instances_7;
CREATE INDEX instances_by_activity ON instances (last_active_at, product);
";

/// Version 8's indexes on `events`, made after its rows are copied.
const INDEXES_8: &str = "
CREATE INDEX errors_by_time ON events (ts_ms) WHERE name = {#ERROR};
CREATE INDEX support_requests ON events (product, ts_ms, email) WHERE name = {#SUPPORT};
CREATE INDEX beacon_unavailable ON events (product, ts_ms) WHERE name = {#BEACON_UNAVAILABLE};
";

/// Version 5: install attempts, agents and install methods. An installation's outcome is that of
/// its latest attempt (`attempt`); the outcomes of the attempts before it are counted in
/// `earlier_succeeded` and `earlier_failed`. Agent installs (`agent`, empty for none) are counted
/// apart like CI ones, and `install_method` is a breakdown: both join the report cube. Events of
/// a beacon that could not be fetched (`Beacon Unavailable`) get a partial index.
const MIGRATION_5: &str = "
ALTER TABLE installations ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE installations ADD COLUMN earlier_succeeded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE installations ADD COLUMN earlier_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE installations ADD COLUMN agent TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN install_method TEXT NOT NULL DEFAULT 'unknown';
UPDATE installations SET agent = f.agent, install_method = f.install_method FROM (
    SELECT COALESCE(product, '{NO_PRODUCT}') AS product, installation_id,
           COALESCE(MAX(json_extract(properties, '$.{AGENT}')), '') AS agent,
           COALESCE(MAX(json_extract(properties, '$.{INSTALL_METHOD}')), 'unknown') AS install_method
    FROM events
    WHERE event IN ('{STARTED}', '{SUCCESS}', '{ERROR}')
      AND (json_extract(properties, '$.{AGENT}') IS NOT NULL
           OR json_extract(properties, '$.{INSTALL_METHOD}') IS NOT NULL)
    GROUP BY 1, 2) AS f
WHERE installations.product = f.product AND installations.installation_id = f.installation_id;
DROP INDEX IF EXISTS installations_cube;
CREATE INDEX installations_cube ON installations (
    product, ci, agent, os, os_version, product_version, arch, container, install_method, start_day, status,
    outcome_day, first_at, duration, attempt, earlier_succeeded, earlier_failed);
CREATE INDEX IF NOT EXISTS beacon_unavailable ON events (product, ts_ms) WHERE event = '{BEACON_UNAVAILABLE}';
";

/// Version 7: the report's aggregates, kept at ingest (see `store/tally.rs`). `tallies` counts
/// installations per product, breakdown, day and 16-day block; `error_counts` and `day_counts`
/// count errors, support requests and unavailable beacons per day, `active_hours` instances by the
/// hour of their last activity (taking over what retention
/// kept in `error_days`, `support_days` and `unavailable_days`); `meta` remembers the retention
/// cutoff, before which raw events are gone. They are filled by `rebuild` in the same transaction.
/// The indexes the report scanned give way to ones by time, for the parts of days a report
/// still reads from installations and events.
const MIGRATION_7: &str = "
ALTER TABLE installations ADD COLUMN error_steps TEXT NOT NULL DEFAULT '';
CREATE TABLE tallies (
    product           TEXT NOT NULL,
    dim               INTEGER NOT NULL,
    tier              INTEGER NOT NULL,
    period            INTEGER NOT NULL,
    ci                INTEGER NOT NULL,
    agent             INTEGER NOT NULL,
    value             TEXT NOT NULL,
    status            INTEGER NOT NULL,
    installations     INTEGER NOT NULL,
    attempts          INTEGER NOT NULL,
    earlier_succeeded INTEGER NOT NULL,
    earlier_failed    INTEGER NOT NULL,
    had_failed        INTEGER NOT NULL,
    durations         BLOB NOT NULL,
    PRIMARY KEY (product, dim, tier, period, ci, agent, value, status)
) WITHOUT ROWID;
CREATE TABLE error_counts (
    product       TEXT NOT NULL,
    day           INTEGER NOT NULL,
    step          TEXT NOT NULL,
    exit_code     INTEGER NOT NULL,
    message       TEXT NOT NULL,
    events        INTEGER NOT NULL,
    installations INTEGER NOT NULL,
    PRIMARY KEY (product, day, step, exit_code, message)
) WITHOUT ROWID;
CREATE TABLE day_counts (
    kind    INTEGER NOT NULL,
    product TEXT NOT NULL,
    day     INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (kind, product, day)
) WITHOUT ROWID;
CREATE TABLE active_hours (
    product   TEXT NOT NULL,
    hour      INTEGER NOT NULL,
    instances INTEGER NOT NULL,
    PRIMARY KEY (product, hour)
) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);

INSERT INTO error_counts SELECT product, day, step, COALESCE(exit_code, {NO_EXIT_CODE}), message, SUM(events), SUM(installations)
    FROM error_days GROUP BY 1, 2, 3, 4, 5;
INSERT INTO day_counts SELECT 0, product, day, SUM(requests) FROM support_days GROUP BY 2, 3;
INSERT INTO day_counts SELECT 1, product, day, SUM(events) FROM unavailable_days GROUP BY 2, 3;
INSERT INTO meta SELECT 'retained_before', (MAX(day) + 1) * 86400000 FROM (
    SELECT MAX(day) AS day FROM error_days UNION ALL SELECT MAX(day) FROM support_days
    UNION ALL SELECT MAX(day) FROM unavailable_days) HAVING MAX(day) IS NOT NULL;
DROP TABLE error_days;
DROP TABLE support_days;
DROP TABLE unavailable_days;
";

/// Version 7's indexes (also where a reset version re-created the old ones).
const INDEXES_7: &str = "
DROP INDEX IF EXISTS installations_cube;
DROP INDEX IF EXISTS errors_by_step;
DROP INDEX IF EXISTS errors_by_message;
CREATE INDEX IF NOT EXISTS installations_by_first ON installations (first_at);
CREATE INDEX IF NOT EXISTS errors_by_time ON events (ts_ms) WHERE event = '{ERROR}';
";

/// Version 6: what retention keeps of the `Beacon Unavailable` events it deletes (see
/// `retention.rs`): their counts per product and day.
const MIGRATION_6: &str = "
CREATE TABLE IF NOT EXISTS unavailable_days (
    product TEXT NOT NULL,
    day     INTEGER NOT NULL,
    events  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS unavailable_days_by_product ON unavailable_days (product, day);
";

/// Version 4: the relay's queue (see `queue.rs`); databases that forwarded before have it already.
const MIGRATION_4: &str = "
CREATE TABLE IF NOT EXISTS forward_queue (
    target   TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (target, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forward_status (
    target          TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    forwarded       INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    last_success_at INTEGER,
    failing_since   INTEGER,
    last_error      TEXT
);
";

/// Version 3: what retention keeps of the raw events it deletes (see `retention.rs`): error
/// counts per day, step, exit code and message, and support request counts per day.
const MIGRATION_3: &str = "
CREATE TABLE IF NOT EXISTS error_days (
    product       TEXT NOT NULL,
    day           INTEGER NOT NULL,
    step          TEXT NOT NULL,
    exit_code     INTEGER,
    message       TEXT NOT NULL,
    events        INTEGER NOT NULL,
    installations INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS error_days_by_product ON error_days (product, day);
CREATE TABLE IF NOT EXISTS support_days (
    product  TEXT NOT NULL,
    day      INTEGER NOT NULL,
    requests INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS support_days_by_product ON support_days (product, day);
";

/// Version 2: the drill-down facts. Installations learn their architecture, container and CI flag
/// (backfilled from their events) and the report cube covers them, in the order the report groups
/// by; error messages become an indexed (virtual) column of `events`, so the top messages per step
/// come from an index.
const MIGRATION_2: &str = "
ALTER TABLE installations ADD COLUMN arch TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE installations ADD COLUMN container TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE installations ADD COLUMN ci INTEGER NOT NULL DEFAULT 0;
UPDATE installations SET arch = f.arch, container = f.container, ci = f.ci FROM (
    SELECT COALESCE(product, '{NO_PRODUCT}') AS product, installation_id,
           COALESCE(MAX(json_extract(properties, '$.{ARCH}')), 'unknown') AS arch,
           COALESCE(MAX(json_extract(properties, '$.{CONTAINER}')), 'unknown') AS container,
           COALESCE(MAX(json_extract(properties, '$.{CI}') IN (1, 'true')), 0) AS ci
    FROM events
    WHERE event IN ('{STARTED}', '{SUCCESS}', '{ERROR}')
    GROUP BY 1, 2) AS f
WHERE installations.product = f.product AND installations.installation_id = f.installation_id;
DROP INDEX IF EXISTS installations_cube;
CREATE INDEX installations_cube ON installations (
    product, ci, os, os_version, product_version, arch, container, start_day, status, outcome_day,
    first_at, duration);
ALTER TABLE events ADD COLUMN message TEXT GENERATED ALWAYS AS (json_extract(properties, '$.{MESSAGE}')) VIRTUAL;
CREATE INDEX errors_by_message
    ON events (product, step, exit_code, message, ts_ms) WHERE event = '{ERROR}';
";

/// Fills `installations` and `instances` from `events`, for databases written before those
/// tables existed (a no-op on a new database).
const BACKFILL: &str = "
INSERT OR IGNORE INTO installations (
    product, installation_id, os, os_version, product_version,
    first_at, started_at, success_at, error_at, success_duration)
SELECT COALESCE(product, '{NO_PRODUCT}'), installation_id,
       COALESCE(MAX(os), 'unknown'), COALESCE(MAX(os_version), ''), COALESCE(MAX(product_version), 'unknown'),
       MIN(ts_ms),
       MIN(CASE WHEN event = '{STARTED}' THEN ts_ms END),
       MAX(CASE WHEN event = '{SUCCESS}' THEN ts_ms END),
       MAX(CASE WHEN event = '{ERROR}' THEN ts_ms END),
       MAX(CASE WHEN event = '{SUCCESS}' THEN duration_ms END)
FROM events
WHERE event IN ('{STARTED}', '{SUCCESS}', '{ERROR}')
GROUP BY 1, 2;
INSERT OR IGNORE INTO instances (product, installation_id, last_active_at)
SELECT COALESCE(product, '{NO_PRODUCT}'), installation_id, MAX(ts_ms)
FROM events WHERE event = '{INSTANCE_ACTIVE}' GROUP BY 1, 2;
";

/// Creates missing tables and indexes, and brings an older database up to [`SCHEMA_VERSION`],
/// in one write transaction (the version is read again under the lock, so two processes starting
/// together migrate once). A database already at [`SCHEMA_VERSION`] is only read (one pragma).
pub fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let user_version = || conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    if user_version()? >= SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let steps = || -> Result<(), StoreError> {
        let version = user_version()?;
        if version < 1 {
            conn.execute_batch(&first_schema())?;
            conn.execute_batch(&sql(BACKFILL))?;
        }
        // A column the migration adds may be there already (a database whose version was reset).
        let has_column = |name: &str| -> Result<bool, rusqlite::Error> {
            conn.query_row(
                "SELECT COUNT(*) FROM pragma_table_info('installations') WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
        };
        if version < 2 && !has_column("arch")? {
            conn.execute_batch(&sql(MIGRATION_2))?;
        }
        if version < 3 {
            conn.execute_batch(MIGRATION_3)?;
        }
        if version < 4 {
            conn.execute_batch(MIGRATION_4)?;
        }
        if version < 5 && !has_column("attempt")? {
            conn.execute_batch(&sql(MIGRATION_5))?;
        }
        if version < 6 {
            conn.execute_batch(MIGRATION_6)?;
        }
        if version < 7 {
            if has_column("error_steps")? {
                conn.execute_batch("DROP TABLE error_days; DROP TABLE support_days; DROP TABLE unavailable_days;")?;
            } else {
                conn.execute_batch(&sql(MIGRATION_7))?;
            }
            conn.execute_batch(&sql(INDEXES_7))?;
        }
        if version < 8 {
            let names = codec::NAMES.map(|(c, n)| format!("({c}, '{n}')")).join(", ");
            let migration = MIGRATION_8
                .replace("{ID}", &codec::id_sql("i.installation_id"))
                .replace("{OUTCOME_COLUMNS}", &outcome_columns());
            conn.execute_batch(&codec::sql(&migration))?;
            conn.execute_batch(&format!("INSERT INTO names (id, name) VALUES {names}"))?;
            ingest::copy_events_7(conn)?;
            conn.execute_batch(&codec::sql(INDEXES_8))?;
        }
        if version < 7 {
            // The aggregates of version 7, computed from the tables as they are now.
            aggregates::rebuild(conn)?;
        }
        Ok(conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?)
    };
    match steps() {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}
