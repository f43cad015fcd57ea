//! [`SqlStore`]: the one implementation of [`Store`], over `sqlx::AnyPool`, for SQLite and
//! PostgreSQL.
//!
//! It owns the connection pool, the per-backend connection settings, the migrations
//! (`migrations/sqlite`, `migrations/postgres`, embedded with `include_str!` and run at
//! [`SqlStore::connect`]) and every SQL statement the platform runs.
//!
//! **Portability rules** — every statement here runs unchanged on both backends through `Any`:
//! - `$1..$n` placeholders; `ON CONFLICT … DO NOTHING / DO UPDATE` (with `excluded.`);
//!   `RETURNING`; `LIMIT/OFFSET`; no `FOR UPDATE`, no `= ANY($1)`, no dialect functions.
//! - The `Any` driver knows only integers, floats, text and blobs: times are epoch-ms `BIGINT`,
//!   booleans are `0/1` integers (bound as `i64`, never as `bool`), JSON is `TEXT`, and numeric
//!   aggregates are `CAST(… AS BIGINT)`.
//! - Dynamic SQL (`IN` lists, optional filters, patches) is assembled only from fixed column
//!   names and numbered placeholders, then passed as [`AssertSqlSafe`]; values are always bound.
//!
//! **Write serialisation.** SQLite has one writer at a time. A transaction that reads then
//! writes under a deferred `BEGIN` can fail with `SQLITE_BUSY` on the lock upgrade (which
//! `busy_timeout` cannot wait out), so every write transaction here starts with
//! `BEGIN IMMEDIATE`, and — on SQLite only — all writes of this process queue on one async
//! mutex first: writers wait in FIFO order on the mutex instead of sleeping in SQLite's busy
//! handler, and `busy_timeout` remains only for other processes (a backup tool). The writes
//! run on one connection of their own that stays open, so its page cache stays warm (a
//! connection that sees another connection's commit drops its cache); reads use a pool of
//! four. Readers are never blocked (WAL). On PostgreSQL, read-then-write transactions rely on compare-and-set
//! updates instead (see [`Store::merge_into_pending_update`] below).
//!
//! **Durability.** SQLite runs with `journal_mode=WAL` and `synchronous=FULL`: an acknowledged
//! sign-in survives power loss (one fsync of the WAL per commit, amortised by the group commit
//! of [`Store::insert_attendance`]).

mod console;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rollcall_protocol::{ids::Secret, time::now_ms};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::{Store, StoreError, StoreResult, model::*};
use crate::rules::geo::{CoordinateSystem, Fence};

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

/// The apicodes of person tasks (they run one at a time, supersede and merge).
macro_rules! person_apicodes {
    () => {
        "('T_SEND_PERSON', 'T_UPDATE_DEVICE_PERSON', 'T_DEL_DEVICE_PERSON', 'T_CLEAR_DEVICE_PERSON')"
    };
}

/// A task that still owes an outcome.
macro_rules! open_states {
    () => {
        "('pending', 'delivered')"
    };
}

/// Bound values per statement for `IN` lists and multi-row inserts (far below every limit).
const MAX_PARAMS: usize = 500;
/// Largest page of [`Store::attendance`].
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

/// `(version, description, sql)` of each migration, per backend (`NNNN_description.sql`).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "console",
        include_str!("../../migrations/sqlite/0002_console.sql"),
    ),
    (
        3,
        "attendance key",
        include_str!("../../migrations/sqlite/0003_attendance_key.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "console",
        include_str!("../../migrations/postgres/0002_console.sql"),
    ),
    (
        3,
        "attendance key",
        include_str!("../../migrations/postgres/0003_attendance_key.sql"),
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
    /// its backend's migrations. A SQLite file is created if missing. `sqlite::memory:` gives
    /// a private in-memory database on a single connection (tests only).
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
        Ok(SqlStore {
            pool,
            writes,
            backend,
            writer: Arc::new(Mutex::new(())),
        })
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

/// The readers' pool and the writer's: a file gets four readers and one writer connection of
/// its own, kept open; an in-memory database is one connection for both (every new
/// connection would open a new, empty database).
async fn sqlite_pools(url: &str) -> StoreResult<(AnyPool, AnyPool)> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let url = match (url.contains("mode="), url.contains('?')) {
        (true, _) => url.to_owned(),
        (false, true) => format!("{url}&mode=rwc"),
        (false, false) => format!("{url}?mode=rwc"),
    };
    let options = || {
        AnyPoolOptions::new().after_connect(|conn, _meta| {
            Box::pin(async move {
                for pragma in SQLITE_PRAGMAS {
                    conn.execute(pragma).await?;
                }
                Ok(())
            })
        })
    };
    let kept = |o: AnyPoolOptions| o.min_connections(1).idle_timeout(None).max_lifetime(None);
    let writes = kept(options().max_connections(1)).connect(&url).await?;
    if memory {
        return Ok((writes.clone(), writes));
    }
    let reads = options().max_connections(4).connect(&url).await?;
    Ok((reads, writes))
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
fn values_list(sqlite: bool, rows: usize, width: usize) -> String {
    let group = |r: usize| {
        if sqlite {
            format!("({})", vec!["?"; width].join(", "))
        } else {
            format!("({})", placeholders(r * width + 1, width))
        }
    };
    (0..rows).map(group).collect::<Vec<_>>().join(", ")
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

impl FromRow for Vendor {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Vendor {
            id: col(row, "id")?,
            name: col(row, "name")?,
            access_id: col(row, "access_id")?,
            access_key: Secret::new(col::<String>(row, "access_key")?),
            access_secret: Secret::new(col::<String>(row, "access_secret")?),
            rsa_public_key: col(row, "rsa_public_key")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Credential {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Credential {
            access_id: col(row, "access_id")?,
            access_key: Secret::new(col::<String>(row, "access_key")?),
            access_secret: Secret::new(col::<String>(row, "access_secret")?),
            vendor_id: col(row, "vendor_id")?,
            revoked_at: col(row, "revoked_at")?,
        })
    }
}

impl FromRow for Project {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        let system: String = col(row, "coordinate_system")?;
        let coordinate_system: CoordinateSystem =
            serde_json::from_value(serde_json::Value::String(system.clone())).map_err(|_| {
                StoreError::Corrupt(format!(
                    "column coordinate_system: unknown value {system:?}"
                ))
            })?;
        let fence = col::<Option<String>>(row, "fence")?
            .map(|text| serde_json::from_str::<Fence>(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("column fence: {e}")))?;
        Ok(Project {
            id: col(row, "id")?,
            name: col(row, "name")?,
            code: col(row, "code")?,
            address: col(row, "address")?,
            coordinate_system,
            fence,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Device {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Device {
            sn: col(row, "sn")?,
            vendor_id: col(row, "vendor_id")?,
            project_id: col(row, "project_id")?,
            kind: col_parsed(row, "kind", DeviceKind::parse)?,
            direction: col_parsed(row, "direction", Direction::parse)?,
            name: col(row, "name")?,
            enabled: col_bool(row, "enabled")?,
            firmware_version: col(row, "firmware_version")?,
            ip: col(row, "ip")?,
            last_heartbeat_at: col(row, "last_heartbeat_at")?,
            person_count: col(row, "person_count")?,
            face_count: col(row, "face_count")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for PresenceTransition {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(PresenceTransition {
            sn: col(row, "sn")?,
            online: col_bool(row, "online")?,
            at: col(row, "at")?,
        })
    }
}

impl FromRow for Worker {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Worker {
            person_id: col(row, "person_id")?,
            idcard_no: col(row, "idcard_no")?,
            name: col(row, "name")?,
            gender: col(row, "gender")?,
            nation: col(row, "nation")?,
            address: col(row, "address")?,
            phone: col(row, "phone")?,
            face_key: col(row, "face_key")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

impl FromRow for Task {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Task {
            taskid: col(row, "taskid")?,
            sn: col(row, "sn")?,
            apicode: col(row, "apicode")?,
            param: col(row, "param")?,
            state: col_parsed(row, "state", TaskState::parse)?,
            created_at: col(row, "created_at")?,
            delivered_at: col(row, "delivered_at")?,
            finished_at: col(row, "finished_at")?,
        })
    }
}

impl FromRow for PersonSync {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(PersonSync {
            person_id: col(row, "person_id")?,
            person_ok: col_bool(row, "person_ok")?,
            person_err: col(row, "person_err")?,
            face_ok: col_bool(row, "face_ok")?,
            face_err: col(row, "face_err")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

impl FromRow for ReconcilePage {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(ReconcilePage {
            taskid: col(row, "taskid")?,
            page: col_u32(row, "page")?,
            total_page: col_u32(row, "total_page")?,
            data: col(row, "data")?,
        })
    }
}

impl FromRow for Attendance {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        let flags: String = col(row, "flags")?;
        let bit_type = col::<Option<i64>>(row, "bit_type")?
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| StoreError::Corrupt(format!("column bit_type: {v} is not a u32")))
            })
            .transpose()?;
        Ok(Attendance {
            record_id: col(row, "record_id")?,
            sn: col(row, "sn")?,
            person_id: col(row, "person_id")?,
            r#type: col_u32(row, "record_type")?,
            bit_type,
            record_time: col(row, "record_time")?,
            received_at: col(row, "received_at")?,
            project_id: col(row, "project_id")?,
            direction: col_parsed(row, "direction", Direction::parse)?,
            photo_key: col(row, "photo_key")?,
            flags: flags
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            temperature: col(row, "temperature")?,
            extra: col(row, "extra")?,
        })
    }
}

/// Attendance flags are identifiers (`unknown_person`, …); stored comma-joined.
fn join_flags(flags: &[String]) -> String {
    flags.join(",")
}

/// Binds one attendance record in `columns!(attendance)` order.
fn bind_attendance<'q>(
    query: Query<'q, Any, AnyArguments>,
    r: &NewAttendance,
) -> Query<'q, Any, AnyArguments> {
    let query = query
        .bind(r.record_id)
        .bind(r.sn.clone())
        .bind(r.person_id.clone())
        .bind(i64::from(r.r#type))
        .bind(r.bit_type.map(i64::from))
        .bind(r.record_time)
        .bind(r.received_at)
        .bind(r.project_id)
        .bind(r.direction.as_str())
        .bind(r.photo_key.clone())
        .bind(join_flags(&r.flags));
    // sqlx 0.9.0's Any driver types a NULL `f64` as a 4-byte float for PostgreSQL; a later
    // non-null 8-byte value through the same prepared statement is then refused ("incorrect
    // binary data format"), failing the whole group commit (sqlx issue #4284). A NULL bound
    // as `f32` is typed so that both agree; values are still bound as `f64`.
    let query = match r.temperature {
        Some(t) => query.bind(t),
        None => query.bind(None::<f32>),
    };
    query.bind(r.extra.clone())
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

    // --- vendors and credentials ---------------------------------------------------------

    async fn create_vendor(&self, vendor: &Vendor) -> StoreResult<()> {
        let conflict = || format!("vendor {} or access id {}", vendor.id, vendor.access_id);
        let mut tx = self.write().await?;
        sqlx::query(concat!(
            "INSERT INTO vendors (",
            columns!(vendor),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(vendor.id)
        .bind(vendor.name.clone())
        .bind(vendor.access_id.clone())
        .bind(vendor.access_key.expose())
        .bind(vendor.access_secret.expose())
        .bind(vendor.rsa_public_key.clone())
        .bind(vendor.created_at)
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, conflict))?;
        insert_credential(
            tx.conn(),
            vendor.id,
            &vendor.access_id,
            &vendor.access_key,
            &vendor.access_secret,
        )
        .await
        .map_err(|e| constraint(e, conflict))?;
        tx.commit().await
    }

    async fn vendor(&self, id: i64) -> StoreResult<Option<Vendor>> {
        self.fetch_optional(sqlx::query(select!(vendor, "FROM vendors WHERE id = $1")).bind(id))
            .await
    }

    async fn vendors(&self) -> StoreResult<Vec<Vendor>> {
        self.fetch_all(sqlx::query(select!(vendor, "FROM vendors ORDER BY id")))
            .await
    }

    async fn credential(&self, access_id: &str) -> StoreResult<Option<Credential>> {
        self.fetch_optional(
            sqlx::query(select!(credential, "FROM credentials WHERE access_id = $1"))
                .bind(access_id),
        )
        .await
    }

    async fn rotate_credentials(&self, vendor_id: i64, new: &Credential) -> StoreResult<()> {
        let conflict = || format!("access id {}", new.access_id);
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE vendors SET access_id = $2, access_key = $3, access_secret = $4 WHERE id = $1",
        )
        .bind(vendor_id)
        .bind(new.access_id.clone())
        .bind(new.access_key.expose())
        .bind(new.access_secret.expose())
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, conflict))?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound(format!("vendor {vendor_id}")));
        }
        sqlx::query(
            "UPDATE credentials SET revoked_at = $2 WHERE vendor_id = $1 AND revoked_at IS NULL",
        )
        .bind(vendor_id)
        .bind(now_ms())
        .execute(tx.conn())
        .await?;
        insert_credential(
            tx.conn(),
            vendor_id,
            &new.access_id,
            &new.access_key,
            &new.access_secret,
        )
        .await
        .map_err(|e| constraint(e, conflict))?;
        tx.commit().await
    }

    // --- tokens --------------------------------------------------------------------------

    async fn insert_token(
        &self,
        token: &str,
        sn: &str,
        access_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "INSERT INTO tokens (token, sn, access_id, last_used_at, created_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(token)
            .bind(sn)
            .bind(access_id)
            .bind(now),
        )
        .await
        .map_err(|e| constraint(e, || "token".to_owned()))?;
        Ok(())
    }

    async fn token(&self, token: &str) -> StoreResult<Option<(String, String, i64)>> {
        let row = sqlx::query("SELECT sn, access_id, last_used_at FROM tokens WHERE token = $1")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok((
                col(&row, "sn")?,
                col(&row, "access_id")?,
                col(&row, "last_used_at")?,
            ))
        })
        .transpose()
    }

    async fn touch_tokens(&self, touches: &[(String, i64)]) -> StoreResult<()> {
        if touches.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for (token, at) in touches {
            // Never moves backwards (touches may arrive out of order from several nodes).
            sqlx::query(
                "UPDATE tokens SET last_used_at = $2 WHERE token = $1 AND last_used_at < $2",
            )
            .bind(token.clone())
            .bind(*at)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await
    }

    // --- projects ------------------------------------------------------------------------

    async fn create_project(&self, project: &Project) -> StoreResult<()> {
        let fence = project
            .fence
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("fence: {e}")))?;
        self.execute(
            sqlx::query(concat!(
                "INSERT INTO projects (",
                columns!(project),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(project.id)
            .bind(project.name.clone())
            .bind(project.code.clone())
            .bind(project.address.clone())
            .bind(project.coordinate_system.as_str())
            .bind(fence)
            .bind(project.created_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("project {}", project.id)))?;
        Ok(())
    }

    async fn project(&self, id: i64) -> StoreResult<Option<Project>> {
        self.fetch_optional(sqlx::query(select!(project, "FROM projects WHERE id = $1")).bind(id))
            .await
    }

    async fn projects(&self) -> StoreResult<Vec<Project>> {
        self.fetch_all(sqlx::query(select!(project, "FROM projects ORDER BY id")))
            .await
    }

    // --- devices -------------------------------------------------------------------------

    async fn create_device(&self, device: &Device) -> StoreResult<()> {
        self.execute(
            sqlx::query(concat!(
                "INSERT INTO devices (",
                columns!(device),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(device.sn.clone())
            .bind(device.vendor_id)
            .bind(device.project_id)
            .bind(device.kind.as_str())
            .bind(device.direction.as_str())
            .bind(device.name.clone())
            .bind(i64::from(device.enabled))
            .bind(device.firmware_version.clone())
            .bind(device.ip.clone())
            .bind(device.last_heartbeat_at)
            .bind(device.person_count)
            .bind(device.face_count)
            .bind(device.created_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("device {}", device.sn)))?;
        Ok(())
    }

    async fn device(&self, sn: &str) -> StoreResult<Option<Device>> {
        self.fetch_optional(sqlx::query(select!(device, "FROM devices WHERE sn = $1")).bind(sn))
            .await
    }

    async fn devices(&self, project_id: Option<i64>) -> StoreResult<Vec<Device>> {
        let query = match project_id {
            Some(id) => sqlx::query(select!(
                device,
                "FROM devices WHERE project_id = $1 ORDER BY sn"
            ))
            .bind(id),
            None => sqlx::query(select!(device, "FROM devices ORDER BY sn")),
        };
        self.fetch_all(query).await
    }

    async fn update_device(&self, sn: &str, patch: &DevicePatch) -> StoreResult<Device> {
        let mut sets = Vec::new();
        let mut args = vec![Arg::Text(Some(sn.to_owned()))];
        let mut set = |column: &str, arg: Arg| {
            args.push(arg);
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(project_id) = patch.project_id {
            set("project_id", Arg::Int(project_id));
        }
        if let Some(kind) = patch.kind {
            set("kind", Arg::Text(Some(kind.as_str().to_owned())));
        }
        if let Some(direction) = patch.direction {
            set("direction", Arg::Text(Some(direction.as_str().to_owned())));
        }
        if let Some(name) = &patch.name {
            set("name", Arg::Text(name.clone()));
        }
        if let Some(enabled) = patch.enabled {
            set("enabled", Arg::Int(Some(i64::from(enabled))));
        }
        let device = if sets.is_empty() {
            self.device(sn).await?
        } else {
            let sql = format!(
                "UPDATE devices SET {} WHERE sn = $1 RETURNING {}",
                sets.join(", "),
                columns!(device)
            );
            let _slot = self.write_slot().await;
            bind_all(sqlx::query(AssertSqlSafe(sql)), args)
                .fetch_optional(&self.writes)
                .await
                .map_err(|e| constraint(e, || format!("device {sn}")))?
                .as_ref()
                .map(Device::from_row)
                .transpose()?
        };
        device.ok_or_else(|| StoreError::NotFound(format!("device {sn}")))
    }

    async fn set_device_counts(&self, sn: &str, persons: i64, faces: i64) -> StoreResult<()> {
        let changed = self
            .execute(
                sqlx::query("UPDATE devices SET person_count = $2, face_count = $3 WHERE sn = $1")
                    .bind(sn)
                    .bind(persons)
                    .bind(faces),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("device {sn}")));
        }
        Ok(())
    }

    async fn record_presence(
        &self,
        updates: &[PresenceUpdate],
        transitions: &[PresenceTransition],
    ) -> StoreResult<()> {
        if updates.is_empty() && transitions.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for u in updates {
            // Unknown devices are skipped; the last heartbeat never moves backwards; a missing
            // version or IP keeps the one recorded.
            sqlx::query(
                "UPDATE devices SET last_heartbeat_at = $2, \
                 firmware_version = COALESCE($3, firmware_version), ip = COALESCE($4, ip) \
                 WHERE sn = $1 AND (last_heartbeat_at IS NULL OR last_heartbeat_at <= $2)",
            )
            .bind(u.sn.clone())
            .bind(u.last_heartbeat_at)
            .bind(u.firmware_version.clone())
            .bind(u.ip.clone())
            .execute(tx.conn())
            .await?;
        }
        let rows = transitions
            .iter()
            .map(|t| {
                vec![
                    Arg::Text(Some(t.sn.clone())),
                    Arg::Int(Some(i64::from(t.online))),
                    Arg::Int(Some(t.at)),
                ]
            })
            .collect();
        insert_rows(
            tx.conn(),
            "INSERT INTO presence_transitions (sn, online, at)",
            "",
            3,
            rows,
        )
        .await?;
        tx.commit().await
    }

    async fn presence_history(&self, sn: &str, limit: u32) -> StoreResult<Vec<PresenceTransition>> {
        self.fetch_all(
            sqlx::query(
                "SELECT sn, online, at FROM presence_transitions WHERE sn = $1 \
                 ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(sn)
            .bind(i64::from(limit)),
        )
        .await
    }

    // --- workers and rosters -------------------------------------------------------------

    async fn create_worker(&self, worker: &Worker) -> StoreResult<()> {
        let inserted = {
            let _slot = self.write_slot().await;
            sqlx::query(concat!(
                "INSERT INTO workers (",
                columns!(worker),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT DO NOTHING RETURNING person_id"
            ))
            .bind(worker.person_id)
            .bind(worker.idcard_no.clone())
            .bind(worker.name.clone())
            .bind(worker.gender.clone())
            .bind(worker.nation.clone())
            .bind(worker.address.clone())
            .bind(worker.phone.clone())
            .bind(worker.face_key.clone())
            .bind(worker.created_at)
            .bind(worker.updated_at)
            .fetch_optional(&self.writes)
            .await?
        };
        if inserted.is_some() {
            return Ok(());
        }
        // Either the ID-card number or the person id is taken: name the existing worker.
        let existing = sqlx::query("SELECT person_id FROM workers WHERE idcard_no = $1")
            .bind(worker.idcard_no.clone())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| col::<i64>(&row, "person_id"))
            .transpose()?;
        Err(StoreError::Conflict(
            existing.unwrap_or(worker.person_id).to_string(),
        ))
    }

    async fn worker(&self, person_id: i64) -> StoreResult<Option<Worker>> {
        self.fetch_optional(
            sqlx::query(select!(worker, "FROM workers WHERE person_id = $1")).bind(person_id),
        )
        .await
    }

    async fn worker_by_idcard(&self, idcard_no: &str) -> StoreResult<Option<Worker>> {
        self.fetch_optional(
            sqlx::query(select!(worker, "FROM workers WHERE idcard_no = $1")).bind(idcard_no),
        )
        .await
    }

    async fn workers_by_ids(&self, person_ids: &[i64]) -> StoreResult<Vec<Worker>> {
        let mut workers = Vec::with_capacity(person_ids.len());
        // Chunks of sorted ids come back in id order, so the concatenation is sorted too.
        for chunk in unique(person_ids).chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT {} FROM workers WHERE person_id IN ({}) ORDER BY person_id",
                columns!(worker),
                placeholders(1, chunk.len())
            );
            let args = chunk.iter().map(|&id| Arg::Int(Some(id))).collect();
            workers.extend(
                self.fetch_all::<Worker>(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
                    .await?,
            );
        }
        Ok(workers)
    }

    async fn workers(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<Worker>> {
        self.fetch_all(
            sqlx::query(select!(
                worker,
                "FROM workers WHERE person_id > $1 ORDER BY person_id LIMIT $2"
            ))
            .bind(after.unwrap_or(i64::MIN))
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn add_project_workers(
        &self,
        project_id: i64,
        person_ids: &[i64],
        now: i64,
    ) -> StoreResult<()> {
        let rows = unique(person_ids)
            .into_iter()
            .map(|id| {
                vec![
                    Arg::Int(Some(project_id)),
                    Arg::Int(Some(id)),
                    Arg::Text(Some("active".to_owned())),
                    Arg::Int(Some(now)),
                ]
            })
            .collect::<Vec<_>>();
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        insert_rows(
            tx.conn(),
            "INSERT INTO project_workers (project_id, person_id, status, joined_at)",
            // joined_at restarts when an exited worker comes back, and stays for an active one.
            "ON CONFLICT (project_id, person_id) DO UPDATE SET status = 'active', \
             exited_at = NULL, joined_at = CASE WHEN project_workers.status = 'active' \
             THEN project_workers.joined_at ELSE excluded.joined_at END",
            4,
            rows,
        )
        .await
        .map_err(|e| constraint(e, || format!("project {project_id} workers")))?;
        tx.commit().await
    }

    async fn remove_project_worker(
        &self,
        project_id: i64,
        person_id: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "UPDATE project_workers SET status = 'exited', exited_at = $3 \
                     WHERE project_id = $1 AND person_id = $2 AND status = 'active'",
                )
                .bind(project_id)
                .bind(person_id)
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    async fn roster(&self, project_id: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT person_id FROM project_workers \
             WHERE project_id = $1 AND status = 'active' AND blacklisted = 0 ORDER BY person_id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| col(row, "person_id")).collect()
    }

    async fn on_roster(&self, project_id: i64, person_id: i64) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT person_id FROM project_workers WHERE project_id = $1 AND person_id = $2 \
             AND status = 'active' AND blacklisted = 0",
        )
        .bind(project_id)
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    // --- tasks ---------------------------------------------------------------------------

    async fn create_task(&self, task: &NewTask) -> StoreResult<()> {
        let mut tx = self.write().await?;
        if task.supersede {
            sqlx::query(concat!(
                "UPDATE tasks SET state = 'cancelled', finished_at = $3 \
                 WHERE sn = $1 AND taskid < $2 AND state IN ",
                open_states!(),
                " AND apicode IN ",
                person_apicodes!()
            ))
            .bind(task.sn.clone())
            .bind(task.taskid)
            .bind(task.created_at)
            .execute(tx.conn())
            .await?;
        }
        sqlx::query(
            "INSERT INTO tasks (taskid, sn, apicode, param, state, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5)",
        )
        .bind(task.taskid)
        .bind(task.sn.clone())
        .bind(task.apicode.clone())
        .bind(task.param.clone())
        .bind(task.created_at)
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, || format!("task {}", task.taskid)))?;
        insert_task_persons(tx.conn(), task.taskid, &task.persons).await?;
        tx.commit().await
    }

    /// Read-then-write: on SQLite the whole transaction holds the write lock. On PostgreSQL
    /// (read committed) the pending task's row is locked by a no-op compare-and-set update
    /// (so a concurrent `mark_delivered` or supersede waits, and a task delivered meanwhile
    /// is not merged into), and after adding the persons the task is checked to still be the
    /// newest person task (a newer one committed meanwhile, e.g. a delete, rolls the merge
    /// back: a delete is never overtaken).
    async fn merge_into_pending_update(
        &self,
        sn: &str,
        person_ids: &[i64],
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.write().await?;
        let Some(taskid) = newest_person_task(tx.conn(), sn, true).await? else {
            return Ok(None);
        };
        let locked = sqlx::query(
            "UPDATE tasks SET state = 'pending' WHERE taskid = $1 AND state = 'pending'",
        )
        .bind(taskid)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if locked == 0 {
            return Ok(None);
        }
        insert_task_persons(tx.conn(), taskid, person_ids).await?;
        if newest_person_task(tx.conn(), sn, false).await? != Some(taskid) {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(taskid))
    }

    async fn task(&self, taskid: i64) -> StoreResult<Option<Task>> {
        self.fetch_optional(sqlx::query(select!(task, "FROM tasks WHERE taskid = $1")).bind(taskid))
            .await
    }

    async fn tasks_of_device(&self, sn: &str, limit: u32) -> StoreResult<Vec<Task>> {
        self.fetch_all(
            sqlx::query(select!(
                task,
                "FROM tasks WHERE sn = $1 ORDER BY taskid DESC LIMIT $2"
            ))
            .bind(sn)
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn due_tasks(
        &self,
        sn: &str,
        redeliver_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<Task>> {
        self.fetch_all(
            sqlx::query(select!(
                task,
                "FROM tasks WHERE sn = $1 AND (state = 'pending' \
                 OR (state = 'delivered' AND delivered_at < $2)) ORDER BY taskid LIMIT $3"
            ))
            .bind(sn)
            .bind(redeliver_before)
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn mark_delivered(&self, taskids: &[i64], now: i64) -> StoreResult<Vec<i64>> {
        let taskids = unique(taskids);
        if taskids.is_empty() {
            return Ok(Vec::new());
        }
        let mut changed = Vec::with_capacity(taskids.len());
        let mut tx = self.write().await?;
        for chunk in taskids.chunks(MAX_PARAMS) {
            let sql = format!(
                concat!(
                    "UPDATE tasks SET state = 'delivered', delivered_at = $1 WHERE state IN ",
                    open_states!(),
                    " AND taskid IN ({}) RETURNING taskid"
                ),
                placeholders(2, chunk.len())
            );
            let mut args = vec![Arg::Int(Some(now))];
            args.extend(chunk.iter().map(|&id| Arg::Int(Some(id))));
            for row in bind_all(sqlx::query(AssertSqlSafe(sql)), args)
                .fetch_all(tx.conn())
                .await?
            {
                changed.push(col::<i64>(&row, "taskid")?);
            }
        }
        tx.commit().await?;
        changed.sort_unstable();
        Ok(changed)
    }

    async fn finish_task(&self, taskid: i64, state: TaskState, now: i64) -> StoreResult<bool> {
        let changed = self
            .execute(
                sqlx::query(concat!(
                    "UPDATE tasks SET state = $2, finished_at = $3 WHERE taskid = $1 AND state IN ",
                    open_states!()
                ))
                .bind(taskid)
                .bind(state.as_str())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    async fn task_persons(
        &self,
        taskid: i64,
        offset: u32,
        limit: u32,
    ) -> StoreResult<(Vec<i64>, u32)> {
        let rows = sqlx::query(
            "SELECT person_id FROM task_persons WHERE taskid = $1 \
             ORDER BY person_id LIMIT $2 OFFSET $3",
        )
        .bind(taskid)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let persons = rows
            .iter()
            .map(|row| col(row, "person_id"))
            .collect::<StoreResult<Vec<i64>>>()?;
        let total = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS total FROM task_persons WHERE taskid = $1",
        )
        .bind(taskid)
        .fetch_one(&self.pool)
        .await?;
        let total = col::<i64>(&total, "total")?;
        let total = u32::try_from(total)
            .map_err(|_| StoreError::Corrupt(format!("task {taskid} has {total} persons")))?;
        Ok((persons, total))
    }

    /// A person of the task is accepted unless listed in failedPersons; their face is accepted
    /// unless the person was refused or the face is listed in failedFaces. A report replaces
    /// the failures recorded earlier for the same task.
    async fn record_sync(&self, report: &SyncReport) -> StoreResult<()> {
        let failed = |list: &[SyncFailure]| -> HashMap<i64, String> {
            list.iter()
                .filter_map(|f| Some((f.person_id.trim().parse().ok()?, f.err_code.clone())))
                .collect()
        };
        let (failed_persons, failed_faces) =
            (failed(&report.failed_persons), failed(&report.failed_faces));
        let sync_rows = unique(&report.persons)
            .into_iter()
            .map(|id| {
                let person_err = failed_persons.get(&id).cloned();
                let face_err = failed_faces.get(&id).cloned();
                let person_ok = person_err.is_none();
                let face_ok = person_ok && face_err.is_none();
                vec![
                    Arg::Text(Some(report.sn.clone())),
                    Arg::Int(Some(id)),
                    Arg::Int(Some(i64::from(person_ok))),
                    Arg::Text(person_err),
                    Arg::Int(Some(i64::from(face_ok))),
                    Arg::Text(face_err),
                    Arg::Int(Some(report.at)),
                ]
            })
            .collect();
        let failure_rows = [
            ("person", &report.failed_persons),
            ("face", &report.failed_faces),
        ]
        .into_iter()
        .flat_map(|(kind, list)| {
            list.iter().map(move |f| {
                vec![
                    Arg::Int(Some(report.taskid)),
                    Arg::Text(Some(kind.to_owned())),
                    Arg::Text(Some(f.person_id.clone())),
                    Arg::Text(Some(f.err_code.clone())),
                ]
            })
        })
        .collect();

        let mut tx = self.write().await?;
        insert_rows(
            tx.conn(),
            "INSERT INTO person_sync \
             (sn, person_id, person_ok, person_err, face_ok, face_err, updated_at)",
            "ON CONFLICT (sn, person_id) DO UPDATE SET person_ok = excluded.person_ok, \
             person_err = excluded.person_err, face_ok = excluded.face_ok, \
             face_err = excluded.face_err, updated_at = excluded.updated_at",
            7,
            sync_rows,
        )
        .await?;
        sqlx::query("DELETE FROM task_failures WHERE taskid = $1")
            .bind(report.taskid)
            .execute(tx.conn())
            .await?;
        insert_rows(
            tx.conn(),
            "INSERT INTO task_failures (taskid, kind, person_id, err_code)",
            "ON CONFLICT DO NOTHING",
            4,
            failure_rows,
        )
        .await
        .map_err(|e| constraint(e, || format!("task {}", report.taskid)))?;
        tx.commit().await
    }

    async fn person_sync(&self, sn: &str) -> StoreResult<Vec<PersonSync>> {
        self.fetch_all(
            sqlx::query(
                "SELECT person_id, person_ok, person_err, face_ok, face_err, updated_at \
                 FROM person_sync WHERE sn = $1 ORDER BY person_id",
            )
            .bind(sn),
        )
        .await
    }

    async fn task_failures(
        &self,
        taskid: i64,
    ) -> StoreResult<(Vec<SyncFailure>, Vec<SyncFailure>)> {
        let rows = sqlx::query(
            "SELECT kind, person_id, err_code FROM task_failures WHERE taskid = $1 \
             ORDER BY kind, person_id",
        )
        .bind(taskid)
        .fetch_all(&self.pool)
        .await?;
        let (mut persons, mut faces) = (Vec::new(), Vec::new());
        for row in &rows {
            let failure = SyncFailure {
                person_id: col(row, "person_id")?,
                err_code: col(row, "err_code")?,
            };
            match col::<String>(row, "kind")?.as_str() {
                "person" => persons.push(failure),
                "face" => faces.push(failure),
                other => {
                    return Err(StoreError::Corrupt(format!("task_failures.kind {other:?}")));
                }
            }
        }
        Ok((persons, faces))
    }

    async fn put_reconcile_page(&self, page: &ReconcilePage) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "INSERT INTO reconcile_pages (taskid, page, total_page, data) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (taskid, page) DO UPDATE \
                 SET total_page = excluded.total_page, data = excluded.data",
            )
            .bind(page.taskid)
            .bind(i64::from(page.page))
            .bind(i64::from(page.total_page))
            .bind(page.data.clone()),
        )
        .await
        .map_err(|e| constraint(e, || format!("task {}", page.taskid)))?;
        Ok(())
    }

    async fn reconcile_pages(&self, taskid: i64) -> StoreResult<Vec<ReconcilePage>> {
        self.fetch_all(
            sqlx::query(
                "SELECT taskid, page, total_page, data FROM reconcile_pages \
                 WHERE taskid = $1 ORDER BY page",
            )
            .bind(taskid),
        )
        .await
    }

    async fn open_task_count(&self) -> StoreResult<i64> {
        let row = sqlx::query(concat!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS open FROM tasks WHERE state IN ",
            open_states!()
        ))
        .fetch_one(&self.pool)
        .await?;
        col(&row, "open")
    }

    // --- attendance ----------------------------------------------------------------------

    /// Records are inserted in key order (stable, so the first of equal keys in the batch
    /// wins): concurrent batches with overlapping keys then lock them in the same order and
    /// cannot deadlock on PostgreSQL. A key already stored by a concurrent transaction is
    /// waited for by `ON CONFLICT DO NOTHING` and then found by the follow-up select.
    ///
    /// The batch goes in as multi-row `INSERT … RETURNING record_id` statements (64 rows at
    /// most, smaller ones in powers of two so a handful of statement shapes stay prepared): a
    /// statement per record cost more than the rest of a sign-in (BENCHMARKS.md, "backlog
    /// profile"). The rows not returned are the rare resends, looked up one by one.
    async fn insert_attendance(&self, batch: &[NewAttendance]) -> StoreResult<Vec<Inserted>> {
        /// Rows per statement: 256 × 13 bound values, far below both backends' limits
        /// (SQLite 32,766, PostgreSQL 65,535). Every statement is a round trip to sqlx's
        /// SQLite worker thread, so a group commit of 256 records is one.
        const ROWS: usize = 256;
        let key = attendance_key;
        // Key order avoids deadlocks between concurrent batches on PostgreSQL; among records
        // of one key, the earliest arrival (smallest record id) is the one stored.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| (key(&batch[i]), batch[i].record_id));
        // The first record of each key (equal keys are adjacent once sorted), and the others
        // paired with their first.
        let mut firsts: Vec<usize> = Vec::with_capacity(batch.len());
        let mut copies: Vec<(usize, usize)> = Vec::new();
        for i in order {
            match firsts.last() {
                Some(&f) if key(&batch[f]) == key(&batch[i]) => copies.push((i, f)),
                _ => firsts.push(i),
            }
        }

        let mut results: Vec<Option<Inserted>> = vec![None; batch.len()];
        let mut stored = std::collections::HashSet::with_capacity(firsts.len());
        let mut tx = self.write().await?;
        let mut rest = &firsts[..];
        while !rest.is_empty() {
            let n = if rest.len() >= ROWS {
                ROWS
            } else {
                1 << rest.len().ilog2()
            };
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let values = values_list(matches!(self.backend, Backend::Sqlite), n, 13);
            let sql = format!(
                "INSERT INTO attendance ({}) VALUES {values} \
                 ON CONFLICT DO NOTHING RETURNING record_id",
                columns!(attendance)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for &i in chunk {
                query = bind_attendance(query, &batch[i]);
            }
            for row in query.fetch_all(tx.conn()).await? {
                stored.insert(col::<i64>(&row, "record_id")?);
            }
        }
        for &i in &firsts {
            let record = &batch[i];
            results[i] = Some(if stored.contains(&record.record_id) {
                Inserted {
                    record_id: record.record_id,
                    duplicate: false,
                }
            } else {
                stored_attendance(tx.conn(), record).await?
            });
        }
        for (copy, first) in copies {
            let record_id = results[first]
                .as_ref()
                .map(|r| r.record_id)
                .ok_or_else(|| StoreError::Corrupt("attendance batch result missing".into()))?;
            results[copy] = Some(Inserted {
                record_id,
                duplicate: true,
            });
        }
        tx.commit().await?;
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| StoreError::Corrupt("attendance batch result missing".into())))
            .collect()
    }

    /// Filters combine with AND; `from` is inclusive and `to` exclusive (record time).
    async fn attendance(&self, query: &AttendanceQuery) -> StoreResult<Vec<Attendance>> {
        let mut filters = Vec::new();
        let mut args = Vec::new();
        let mut filter = |condition: &str, arg: Arg| {
            args.push(arg);
            filters.push(format!("{condition} ${}", args.len()));
        };
        if let Some(project_id) = query.project_id {
            filter("project_id =", Arg::Int(Some(project_id)));
        }
        if let Some(person_id) = &query.person_id {
            filter("person_id =", Arg::Text(Some(person_id.clone())));
        }
        if let Some(sn) = &query.sn {
            filter("sn =", Arg::Text(Some(sn.clone())));
        }
        if let Some(from) = query.from {
            filter("record_time >=", Arg::Int(Some(from)));
        }
        if let Some(to) = query.to {
            filter("record_time <", Arg::Int(Some(to)));
        }
        if let Some(cursor) = query.before_record_id {
            filter("record_id <", Arg::Int(Some(cursor)));
        }
        args.push(Arg::Int(Some(i64::from(
            query.limit.clamp(1, MAX_ATTENDANCE_PAGE),
        ))));
        let sql = format!(
            "SELECT {} FROM attendance {} ORDER BY record_id DESC LIMIT ${}",
            columns!(attendance),
            if filters.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", filters.join(" AND "))
            },
            args.len()
        );
        self.fetch_all(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
            .await
    }

    async fn attendance_record(&self, record_id: i64) -> StoreResult<Option<Attendance>> {
        self.fetch_optional(
            sqlx::query(select!(attendance, "FROM attendance WHERE record_id = $1"))
                .bind(record_id),
        )
        .await
    }
}

// --- statements shared by several methods -------------------------------------------------

async fn insert_credential(
    conn: &mut AnyConnection,
    vendor_id: i64,
    access_id: &str,
    access_key: &Secret,
    access_secret: &Secret,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO credentials (",
        columns!(credential),
        ") VALUES ($1, $2, $3, $4, NULL)"
    ))
    .bind(access_id)
    .bind(access_key.expose())
    .bind(access_secret.expose())
    .bind(vendor_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds persons to a task's frozen list (persons already on it are left alone).
async fn insert_task_persons(
    conn: &mut AnyConnection,
    taskid: i64,
    person_ids: &[i64],
) -> StoreResult<()> {
    let rows = unique(person_ids)
        .into_iter()
        .map(|id| vec![Arg::Int(Some(taskid)), Arg::Int(Some(id))])
        .collect();
    insert_rows(
        conn,
        "INSERT INTO task_persons (taskid, person_id)",
        "ON CONFLICT DO NOTHING",
        2,
        rows,
    )
    .await?;
    Ok(())
}

/// The device's newest person task (any state); with `mergeable`, only if it is a pending
/// T_UPDATE_DEVICE_PERSON.
async fn newest_person_task(
    conn: &mut AnyConnection,
    sn: &str,
    mergeable: bool,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(concat!(
        "SELECT taskid, apicode, state FROM tasks WHERE sn = $1 AND apicode IN ",
        person_apicodes!(),
        " ORDER BY taskid DESC LIMIT 1"
    ))
    .bind(sn)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let taskid: i64 = col(&row, "taskid")?;
    if mergeable
        && (col::<String>(&row, "apicode")? != "T_UPDATE_DEVICE_PERSON"
            || col::<String>(&row, "state")? != TaskState::Pending.as_str())
    {
        return Ok(None);
    }
    Ok(Some(taskid))
}

/// The idempotency key of an attendance record.
type AttendanceKey<'a> = (&'a str, &'a str, i64, u32);

fn attendance_key(r: &NewAttendance) -> AttendanceKey<'_> {
    (&r.sn, &r.person_id, r.record_time, r.r#type)
}

/// The stored record under `record`'s key (its insert did nothing): a duplicate.
async fn stored_attendance(
    conn: &mut AnyConnection,
    record: &NewAttendance,
) -> StoreResult<Inserted> {
    let existing = sqlx::query(
        "SELECT record_id FROM attendance \
         WHERE sn = $1 AND person_id = $2 AND record_time = $3 AND record_type = $4",
    )
    .bind(record.sn.clone())
    .bind(record.person_id.clone())
    .bind(record.record_time)
    .bind(i64::from(record.r#type))
    .fetch_optional(&mut *conn)
    .await?;
    match existing {
        Some(row) => Ok(Inserted {
            record_id: col(&row, "record_id")?,
            duplicate: true,
        }),
        // Nothing under this key, so the record id itself was taken by another record.
        None => Err(StoreError::Conflict(format!(
            "attendance record id {}",
            record.record_id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Direction;

    fn record(record_id: i64, person_id: &str, record_time: i64) -> NewAttendance {
        NewAttendance {
            record_id,
            sn: "SN1".into(),
            person_id: person_id.into(),
            r#type: 1,
            bit_type: None,
            record_time,
            received_at: record_time + 5,
            project_id: None,
            direction: Direction::In,
            photo_key: None,
            flags: Vec::new(),
            temperature: None,
            extra: None,
        }
    }

    /// A database made before `0003_attendance_key` (which rebuilds the table on SQLite)
    /// keeps its records, and the reordered key still knows a resent one.
    #[tokio::test]
    async fn records_survive_the_attendance_key_migration() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        sqlx::any::install_default_drivers();
        let (pool, writes) = sqlite_pools(&url).await.unwrap();
        migrator_of(&SQLITE_MIGRATIONS[..2])
            .run(&writes)
            .await
            .unwrap();
        let old = record(7, "42", 1_000);
        bind_attendance(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO attendance ({}) VALUES {}",
                columns!(attendance),
                values_list(true, 1, 13)
            ))),
            &old,
        )
        .execute(&writes)
        .await
        .unwrap();
        pool.close().await;
        writes.close().await;

        let store = SqlStore::connect(&url).await.unwrap();
        let got = store
            .insert_attendance(&[record(8, "42", 1_000), record(9, "43", 1_000)])
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![
                Inserted {
                    record_id: 7,
                    duplicate: true
                },
                Inserted {
                    record_id: 9,
                    duplicate: false
                },
            ]
        );
        let key: String = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'attendance'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert!(
            key.contains("UNIQUE (sn, record_time, person_id, record_type)"),
            "{key}"
        );
    }
}
