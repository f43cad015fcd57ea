//! The on-disk schema of the device store, and opening it.
//!
//! ```sql
//! meta(key TEXT PRIMARY KEY, value TEXT)                -- token-free settings: firmware version
//! persons(person_id TEXT PRIMARY KEY, name, phone, idcard_no,
//!         sync_tag TEXT, updated_at INTEGER)            -- the roster the terminal recognises
//! faces(person_id TEXT PRIMARY KEY, format TEXT,        -- one face photo per person (BLOB)
//!       sha256 TEXT, photo BLOB, updated_at INTEGER)
//! records(id INTEGER PRIMARY KEY AUTOINCREMENT,         -- the durable attendance queue;
//!         person_id, type, record_time, param TEXT,     --   ids only grow, drained in id order
//!         photo BLOB, taken_at INTEGER)
//! dead_letters(id INTEGER PRIMARY KEY, person_id, type, record_time, param, photo,
//!              error_code TEXT, error_message TEXT, failed_at INTEGER)
//! task_log(taskid TEXT PRIMARY KEY, apicode, status INTEGER, report TEXT,
//!          finished_at INTEGER, reported INTEGER)      -- outcomes, until reported
//! ```
//!
//! WAL journal with `synchronous=FULL` (a committed record survives power loss), foreign keys
//! off (faces are removed with their person explicitly). `PRAGMA user_version` numbers the
//! schema; [`open`] migrates older files forward.

use std::path::Path;

use rusqlite::Connection;

/// The schema version this build writes.
pub const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS persons (
    person_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    phone      TEXT,
    idcard_no  TEXT,
    sync_tag   TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    person_id  TEXT PRIMARY KEY,
    format     TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    photo      BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id   TEXT NOT NULL,
    type        INTEGER NOT NULL,
    record_time INTEGER NOT NULL,
    param       TEXT NOT NULL,
    photo       BLOB,
    taken_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id            INTEGER PRIMARY KEY,
    person_id     TEXT NOT NULL,
    type          INTEGER NOT NULL,
    record_time   INTEGER NOT NULL,
    param         TEXT NOT NULL,
    photo         BLOB,
    error_code    TEXT NOT NULL,
    error_message TEXT NOT NULL,
    failed_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS task_log (
    taskid      TEXT PRIMARY KEY,
    apicode     TEXT NOT NULL,
    status      INTEGER NOT NULL,
    report      TEXT NOT NULL,
    finished_at INTEGER NOT NULL,
    reported    INTEGER NOT NULL DEFAULT 0
);
";

/// Opens the store file, creating and migrating it.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("creating {}: {e}", dir.display())),
            )
        })?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 1 {
        conn.execute_batch(&format!("BEGIN; {V1} PRAGMA user_version = 1; COMMIT;"))?;
    }
    Ok(())
}
