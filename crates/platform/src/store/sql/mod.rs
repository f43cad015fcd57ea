//! [`SqlStore`]: the one implementation of [`Store`] and its aggregate traits, over
//! `sqlx::AnyPool`, for SQLite and PostgreSQL.
//!
//! This module owns the connection pools, the per-backend connection settings, the
//! migrations (`migrations/sqlite`, `migrations/postgres`, embedded with `include_str!` and
//! run at [`SqlStore::connect`]), write transactions and the binding and decoding helpers.
//! The statements live beside it, one file per aggregate trait (the same names as
//! `store/traits/`), and `rows.rs` reads every model type back from a row.
//!
//! **Portability rules** — every statement here runs unchanged on both backends through `Any`:
//! - `$1..$n` placeholders; `ON CONFLICT … DO NOTHING / DO UPDATE` (with `excluded.`);
//!   `RETURNING`; `LIMIT/OFFSET`; no `FOR UPDATE`, no `= ANY($1)`, no dialect functions.
//! - The `Any` driver knows only integers, floats, text and blobs: times are epoch-ms `BIGINT`,
//!   booleans are `0/1` integers (bound as `i64`, never as `bool`), JSON is `TEXT`, and numeric
//!   aggregates are `CAST(… AS BIGINT)`.
//! - Dynamic SQL (`IN` lists, optional filters, patches) is assembled only from fixed column
//!   names and numbered placeholders, then passed as [`AssertSqlSafe`]; values are always bound.
//! - Where the group commit's cost asked for it, a statement has a form per backend, chosen by
//!   [`Backend`] beside the other: `INSERT OR IGNORE` and `json_each` id lists on SQLite
//!   (`attendance.rs`, [`ids_in`]), the per-person index's move (`person_index.rs`), and
//!   the rows of a write-behind sent as one JSON value ([`json_rows`]: `json_each` on SQLite,
//!   `jsonb_array_elements` on PostgreSQL).
//!
//! **Write serialisation.** SQLite has one writer at a time. A transaction that reads then
//! writes under a deferred `BEGIN` can fail with `SQLITE_BUSY` on the lock upgrade (which
//! `busy_timeout` cannot wait out), so every write transaction here starts with
//! `BEGIN IMMEDIATE`, and — on SQLite only — all writes of this process queue on one async
//! mutex first: writers wait in FIFO order on the mutex instead of sleeping in SQLite's busy
//! handler, and `busy_timeout` remains only for other processes (a backup tool). The writes
//! run on one connection of their own that stays open, so its page cache stays warm (a
//! connection that sees another connection's commit drops its cache), except the group
//! commit of attendance, which runs on a thread and a connection of its own
//! ([`group_writer`]) under the same mutex; reads use a pool of four. Readers are never blocked (WAL). On PostgreSQL, read-then-write transactions rely on compare-and-set
//! updates instead (see [`TaskStore::merge_into_pending_update`] in `tasks.rs`).
//!
//! **Durability.** SQLite runs with `journal_mode=WAL` and `synchronous=FULL`: an acknowledged
//! sign-in survives power loss (one fsync of the WAL per commit, amortised by the group commit
//! of [`AttendanceStore::insert_attendance`]).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::sealing::Keyring;
use super::{Store, StoreError, StoreResult};

/// Column lists, as literals so that `concat!` builds `&'static str` statements.
macro_rules! columns {
    (vendor) => {
        "id, name, access_id, access_key, access_secret, rsa_public_key, created_at"
    };
    (credential) => {
        "access_id, access_key, access_secret, vendor_id, revoked_at"
    };
    (project) => {
        "id, name, code, address, coordinate_system, fence, created_at"
    };
    (device) => {
        "sn, vendor_id, project_id, kind, direction, name, enabled, firmware_version, ip, \
         last_heartbeat_at, person_count, face_count, created_at"
    };
    (worker) => {
        "person_id, idcard_no, name, gender, nation, address, phone, face_key, created_at, \
         updated_at"
    };
    (task) => {
        "taskid, sn, apicode, param, state, created_at, delivered_at, finished_at"
    };
    (attendance) => {
        "record_id, sn, person_id, record_type, bit_type, record_time, received_at, project_id, \
         direction, photo_key, flags, temperature, extra"
    };
}

/// `SELECT <columns of a model> <rest>` as a `&'static str`.
macro_rules! select {
    ($model:ident, $rest:literal) => {
        concat!("SELECT ", columns!($model), " ", $rest)
    };
}

// After the macros above, which they use.
mod accounts;
mod attendance;
mod devices;
mod group_writer;
mod person_index;
mod rosters;
mod rows;
mod tasks;
mod uplink;
mod vendors;
mod webhooks;
mod workers;

/// Bound values per statement for `IN` lists and multi-row inserts (far below every limit).
const MAX_PARAMS: usize = 500;
/// Largest page of [`AttendanceStore::attendance`].
const MAX_ATTENDANCE_PAGE: u32 = 1000;

/// Settings of every SQLite connection.
const SQLITE_PRAGMAS: [&str; 6] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    // Statement journals (a multi-row insert that may fail needs one) stay in memory instead
    // of a temporary file opened, written and unlinked per statement.
    "PRAGMA temp_store = MEMORY",
    // Checkpoint every 8,000 WAL pages (32 MiB) instead of SQLite's 1,000: the attendance
    // indexes' hot pages are rewritten by every commit, and each checkpoint copies them back
    // to the database again, in the committing writer's turn (backlog: 2.5–2.8 s → 2.2–2.5 s,
    // BENCHMARKS.md). Durability is the WAL's fsync on commit, not the checkpoint.
    "PRAGMA wal_autocheckpoint = 8000",
];

/// Settings of the writing connections (sqlx's writer and the group commit's,
/// [`group_writer`]) on top of [`SQLITE_PRAGMAS`].
const WRITER_PRAGMAS: &[&str] = &[
    // A 256 KiB page cache instead of SQLite's 2 MiB. The writer's hot pages are the B-trees'
    // right edges and interior pages, which fit (since the per-person index moves in bulk, a
    // group commit no longer dirties a leaf per worker); the rest filled with the rows written
    // once (a device's registration, token, session) and stayed, the largest part of what the
    // first thousand idle devices cost, at no measurable cost to the backlog or the sign-ins
    // (BENCHMARKS.md, "third machine" and session 12). Reads go through the readers' pool.
    "PRAGMA cache_size = -256",
];

/// `(version, description, sql)` of each migration, per backend (`NNNN_description.sql`).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "console",
        include_str!("../../../migrations/sqlite/0002_console.sql"),
    ),
    (
        3,
        "attendance key",
        include_str!("../../../migrations/sqlite/0003_attendance_key.sql"),
    ),
    (
        4,
        "hashed device tokens",
        include_str!("../../../migrations/sqlite/0004_hashed_device_tokens.sql"),
    ),
    (
        5,
        "device sessions",
        include_str!("../../../migrations/sqlite/0005_device_sessions.sql"),
    ),
    (
        6,
        "uplink",
        include_str!("../../../migrations/sqlite/0006_uplink.sql"),
    ),
    (
        7,
        "person index",
        include_str!("../../../migrations/sqlite/0007_person_index.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "console",
        include_str!("../../../migrations/postgres/0002_console.sql"),
    ),
    (
        3,
        "attendance key",
        include_str!("../../../migrations/postgres/0003_attendance_key.sql"),
    ),
    (
        4,
        "hashed device tokens",
        include_str!("../../../migrations/postgres/0004_hashed_device_tokens.sql"),
    ),
    (
        5,
        "device sessions",
        include_str!("../../../migrations/postgres/0005_device_sessions.sql"),
    ),
    (
        6,
        "uplink",
        include_str!("../../../migrations/postgres/0006_uplink.sql"),
    ),
    (
        7,
        "person index",
        include_str!("../../../migrations/postgres/0007_person_index.sql"),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> StoreResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StoreError::Database(sqlx::Error::Configuration(
                format!("unsupported database URL scheme {scheme:?} (sqlite: or postgres:)").into(),
            )))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn migrator(self) -> Migrator {
        migrator_of(match self {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        })
    }
}

/// A migrator running `set`, in order.
fn migrator_of(set: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    {
        Migrator::with_migrations(
            set.iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        description.into(),
                        MigrationType::Simple,
                        sqlx::SqlStr::from_static(sql),
                        false,
                    )
                })
                .collect(),
        )
    }
}

/// The SQL store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// Where writes go. SQLite: one connection of its own, kept open, so its page cache stays
    /// warm (a connection that sees another one's commit drops its cache and reads every page
    /// again). PostgreSQL: the same pool.
    writes: AnyPool,
    backend: Backend,
    /// SQLite only: this process's writers queue here (see the module docs).
    writer: Arc<Mutex<()>>,
    /// SQLite only: the thread that runs the group commit of attendance.
    group_writer: Option<group_writer::GroupWriter>,
    /// Seals and opens vendor secrets ([`crate::store::sealing`]); empty until
    /// [`SqlStore::with_keys`], and then reading or writing a vendor secret fails.
    keys: Keyring,
    /// When the group commit moves its queue into the per-person index ([`person_index`]).
    person_index: person_index::PersonIndex,
}

/// A write transaction, holding the SQLite writer slot until it is committed or dropped.
struct WriteTx<'a> {
    // Field order matters: the transaction rolls back (on drop) before the slot is released.
    tx: Transaction<'static, Any>,
    _slot: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl SqlStore {
    /// Opens the database a URL names (`sqlite:…` or `postgres:…`/`postgresql:…`) and applies
    /// its backend's migrations. A SQLite file is created if missing; an in-memory SQLite
    /// database is refused, as the group commit's thread needs a connection of its own to it.
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        Self::open(url, None).await
    }

    /// Like [`SqlStore::connect`], but on PostgreSQL every connection works in `schema`
    /// (created if missing) — isolates tests sharing one database. `schema` must be
    /// `[a-z0-9_]+`. Ignored on SQLite, where a file is already isolated.
    pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<SqlStore> {
        Self::open(url, Some(schema)).await
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writes.close().await;
    }

    /// The connection pool, for whole-database tools inside the crate ([`super::migrate`]).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn open(url: &str, schema: Option<&str>) -> StoreResult<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let (pool, writes) = match backend {
            Backend::Sqlite => sqlite_pools(url).await?,
            Backend::Postgres => {
                let pool = postgres_pool(url, schema).await?;
                (pool.clone(), pool)
            }
        };
        backend.migrator().run(&writes).await?;
        let queued = person_index::queued(&mut *writes.acquire().await?).await?;
        let group_writer = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(url).ok_or_else(|| config_error(IN_MEMORY))?;
                let pragmas: Vec<&str> = SQLITE_PRAGMAS
                    .iter()
                    .chain(WRITER_PRAGMAS)
                    .copied()
                    .collect();
                Some(group_writer::GroupWriter::start(
                    std::path::Path::new(path),
                    &pragmas,
                )?)
            }
            Backend::Postgres => None,
        };
        Ok(SqlStore {
            pool,
            writes,
            backend,
            writer: Arc::new(Mutex::new(())),
            group_writer,
            keys: Keyring::default(),
            person_index: person_index::PersonIndex::new(queued, person_index::DEFAULT_BATCH),
        })
    }

    /// The store, moving queued attendance into the per-person index every `batch` records
    /// instead of [`person_index::DEFAULT_BATCH`] (tests that need both of its tables filled).
    pub fn with_person_index_batch(mut self, batch: usize) -> SqlStore {
        self.person_index = self.person_index.with_batch(batch);
        self
    }

    /// The store, sealing vendor secrets under `keys` (the first seals, all open).
    pub fn with_keys(mut self, keys: Keyring) -> SqlStore {
        self.keys = keys;
        self
    }

    /// The SQLite writer slot; `None` on PostgreSQL.
    async fn write_slot(&self) -> Option<MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, after the writer slot).
    async fn write(&self) -> StoreResult<WriteTx<'_>> {
        let slot = self.write_slot().await;
        let tx = match self.backend {
            Backend::Sqlite => self.writes.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writes.begin().await?,
        };
        Ok(WriteTx { tx, _slot: slot })
    }

    /// Runs one write statement on its own (autocommit), in the writer slot on SQLite.
    async fn execute(&self, query: Query<'_, Any, AnyArguments>) -> Result<u64, sqlx::Error> {
        let _slot = self.write_slot().await;
        Ok(query.execute(&self.writes).await?.rows_affected())
    }

    async fn fetch_optional<T: FromRow>(
        &self,
        query: Query<'_, Any, AnyArguments>,
    ) -> StoreResult<Option<T>> {
        query
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(T::from_row)
            .transpose()
    }

    async fn fetch_all<T: FromRow>(
        &self,
        query: Query<'_, Any, AnyArguments>,
    ) -> StoreResult<Vec<T>> {
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(T::from_row)
            .collect()
    }
}

/// Why an in-memory SQLite database is refused.
const IN_MEMORY: &str = "an in-memory SQLite database is not supported: give a file \
     (sqlite://path/to/rollcall.db), as the group commit writes through a connection of its own";

/// A configuration error with `message`.
fn config_error(message: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Configuration(message.to_owned().into()))
}

/// The readers' pool and the writer's: four readers and one writer connection of its own,
/// kept open.
async fn sqlite_pools(url: &str) -> StoreResult<(AnyPool, AnyPool)> {
    let path = match sqlite_path(url) {
        Some(path) if !url.contains("mode=memory") => path,
        _ => return Err(config_error(IN_MEMORY)),
    };
    create_private(path).map_err(|e| config_error(&format!("creating the database file: {e}")))?;
    let url = match (url.contains("mode="), url.contains('?')) {
        (true, _) => url.to_owned(),
        (false, true) => format!("{url}&mode=rwc"),
        (false, false) => format!("{url}?mode=rwc"),
    };
    // No ping before each acquire (sqlx's default): a local file cannot have hung up, and the
    // ping is one more round trip to the connection's worker thread for every statement and
    // every group commit.
    let options = |own: &'static [&'static str]| {
        AnyPoolOptions::new()
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    for pragma in SQLITE_PRAGMAS.iter().chain(own) {
                        conn.execute(*pragma).await?;
                    }
                    Ok(())
                })
            })
    };
    let kept = |o: AnyPoolOptions| o.min_connections(1).idle_timeout(None).max_lifetime(None);
    let writes = kept(options(WRITER_PRAGMAS).max_connections(1))
        .connect(&url)
        .await?;
    let reads = options(&[]).max_connections(4).connect(&url).await?;
    Ok((reads, writes))
}

/// Tests of a migration: a SQLite database at `dir/old.db` migrated only up to `version`, as
/// a database made by an earlier build; returns its URL and its (reads, writes) pools.
#[cfg(test)]
async fn sqlite_at_version(dir: &std::path::Path, version: usize) -> (String, AnyPool, AnyPool) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("old.db").display());
    sqlx::any::install_default_drivers();
    let (pool, writes) = sqlite_pools(&url).await.unwrap();
    migrator_of(&SQLITE_MIGRATIONS[..version])
        .run(&writes)
        .await
        .unwrap();
    (url, pool, writes)
}

/// The file of a `sqlite:` URL (`sqlite://path?…`, `sqlite:path`); `None` for memory.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(':')).then_some(path)
}

/// Creates a missing database file with mode 0600 before SQLite opens it: the database
/// holds personal data, and SQLite gives its `-wal` and `-shm` files the mode of the
/// database file. An existing file is left as it is (the data directory is 0700).
fn create_private(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

async fn postgres_pool(url: &str, schema: Option<&str>) -> StoreResult<AnyPool> {
    let mut options = AnyPoolOptions::new().max_connections(16);
    if let Some(schema) = schema {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("invalid schema name {schema:?}").into(),
            )));
        }
        let mut conn = AnyConnection::connect(url).await?;
        conn.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .await?;
        conn.close().await?;
        let set_path: Arc<str> = format!("SET search_path TO \"{schema}\"").into();
        options = options.after_connect(move |conn, _meta| {
            let set_path = set_path.clone();
            Box::pin(async move {
                conn.execute(AssertSqlSafe(set_path)).await?;
                Ok(())
            })
        });
    }
    Ok(options.connect(url).await?)
}

// --- errors, binding, decoding ----------------------------------------------------------

/// Maps constraint violations to domain errors: a taken unique key is `Conflict(conflict())`,
/// a missing referenced row is `NotFound`. Everything else stays a database error.
fn constraint(e: sqlx::Error, conflict: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict()),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(format!("referenced row ({})", db.message()))
        }
        _ => StoreError::Database(e),
    }
}

/// A value bound to a dynamically built statement.
enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments>,
    args: Vec<Arg>,
) -> Query<'q, Any, AnyArguments> {
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    query
}

/// `column IN (…)` over `ids`, whose values are bound from `$first` on; returns the
/// condition and the values. SQLite gets the ids as one JSON array through `json_each`, so
/// the statement's text is the same for any number of ids: prepared once and kept in the
/// statement cache, where a list of `$n`s is a new statement for every count (a group commit's
/// batch size varies), parsed again, with every `$n` bound through SQLite's linear lookup of
/// parameter names. PostgreSQL keeps the list.
fn ids_in(backend: Backend, column: &str, first: usize, ids: &[i64]) -> (String, Vec<Arg>) {
    match backend {
        Backend::Sqlite => (
            format!("{column} IN (SELECT value FROM json_each(${first}))"),
            vec![Arg::Text(Some(json_ids(ids)))],
        ),
        Backend::Postgres => (
            format!("{column} IN ({})", placeholders(first, ids.len())),
            ids.iter().map(|&id| Arg::Int(Some(id))).collect(),
        ),
    }
}

/// `ids` as one JSON array, the value [`ids_in`]'s SQLite condition binds.
fn json_ids(ids: &[i64]) -> String {
    use std::fmt::Write as _;
    let mut json = String::with_capacity(2 + ids.len() * 20);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        // Writing into a String cannot fail.
        let _ = write!(json, "{sep}{id}");
    }
    json.push(']');
    json
}

/// The type of a column of [`json_rows`].
#[derive(Debug, Clone, Copy)]
enum JsonCol {
    Text,
    Int,
}

/// How many rows one statement over [`json_rows`] carries: bounds the statement's one value.
const JSON_ROWS_PER_STATEMENT: usize = 1000;

/// A subquery whose rows are the arrays of the JSON array bound as `$param` (`[[a, b], …]`),
/// each array's items being `columns` in order (JSON `null` is SQL `NULL`). Many rows then go
/// to the database as one value of one statement whose text is the same for any number of
/// rows (prepared once): the housekeeper writing a thousand devices' heartbeats and token
/// touches behind, one statement a row, was a thousand round trips a second through sqlx's
/// SQLite thread (BENCHMARKS.md, session 18).
fn json_rows(backend: Backend, param: usize, columns: &[(&str, JsonCol)]) -> String {
    let items = columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| match (backend, ty) {
            (Backend::Sqlite, _) => format!("json_extract(value, '$[{i}]') AS {name}"),
            (Backend::Postgres, JsonCol::Text) => format!("(e->>{i}) AS {name}"),
            (Backend::Postgres, JsonCol::Int) => format!("CAST(e->>{i} AS BIGINT) AS {name}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    match backend {
        Backend::Sqlite => format!("SELECT {items} FROM json_each(${param})"),
        Backend::Postgres => {
            format!("SELECT {items} FROM jsonb_array_elements(CAST(${param} AS JSONB)) AS e")
        }
    }
}

/// `$first, $first+1, …` (`n` placeholders).
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parameter list of a multi-row `VALUES`: `rows` groups of `width` placeholders, and
/// no other parameter in the statement. SQLite gets anonymous `?`s (bound in order): sqlx
/// asks SQLite for every parameter's name to bind it, and SQLite finds a numbered name by
/// scanning all of them, which made an 832-value insert quadratic — 14 % of the server's CPU
/// while draining a backlog (BENCHMARKS.md, "third round").
///
/// Written into one string: a group commit's list is 256 groups, and building each group as
/// strings of its own and joining them was three allocations a record (BENCHMARKS.md, session
/// 19).
fn values_list(sqlite: bool, rows: usize, width: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(rows * width * if sqlite { 3 } else { 8 } + rows * 4);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            if sqlite {
                out.push('?');
            } else {
                // Writing into a `String` cannot fail.
                let _ = write!(out, "${}", r * width + c + 1);
            }
        }
        out.push(')');
    }
    out
}

/// Sorted, deduplicated ids.
fn unique(ids: &[i64]) -> Vec<i64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Runs `head VALUES (…), (…) tail` over `rows` (each `width` values) in chunks.
async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    width: usize,
    rows: Vec<Vec<Arg>>,
) -> Result<(), sqlx::Error> {
    let per_statement = (MAX_PARAMS / width).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Arg>> = rows.by_ref().take(per_statement).collect();
        let sqlite = conn.backend_name().eq_ignore_ascii_case("sqlite");
        let values = values_list(sqlite, chunk.len(), width);
        let sql = format!("{head} VALUES {values} {tail}");
        let query = bind_all(
            sqlx::query(AssertSqlSafe(sql)),
            chunk.into_iter().flatten().collect(),
        );
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn col<'r, T>(row: &'r AnyRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

fn col_bool(row: &AnyRow, name: &str) -> StoreResult<bool> {
    Ok(col::<i64>(row, name)? != 0)
}

fn col_u32(row: &AnyRow, name: &str) -> StoreResult<u32> {
    let v: i64 = col(row, name)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("column {name}: {v} is not a u32")))
}

fn col_parsed<T>(row: &AnyRow, name: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let text: String = col(row, name)?;
    parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("column {name}: unknown value {text:?}")))
}

/// A model type read from a row selected with its `columns!` list.
trait FromRow: Sized {
    fn from_row(row: &AnyRow) -> StoreResult<Self>;
}

// --- the store ---------------------------------------------------------------------------

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn announce_tasks(&self, sn: &str) -> StoreResult<()> {
        if matches!(self.backend, Backend::Postgres) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::TASK_CHANNEL)
                .bind(sn)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::values_list;

    #[test]
    fn a_values_list_has_one_group_of_placeholders_per_row() {
        assert_eq!(values_list(true, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(values_list(false, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_list(true, 1, 1), "(?)");
        assert_eq!(values_list(false, 0, 3), "");
    }
}
