//! Moving an installation to another database (`rollcall migrate-data`): copies every row
//! of one [`SqlStore`] into another, typically an embedded SQLite installation into a fresh
//! PostgreSQL database, and proves that the copy is complete.
//!
//! **How.** Both databases are opened with [`SqlStore::connect`], which applies this build's
//! migrations, so both have the same schema version (a database migrated by a newer build is
//! refused by the migrator). The tables are copied in foreign-key order ([`TABLES`]). Each
//! table's columns and their types are read from the live schema (`pragma_table_info` on
//! SQLite, `information_schema.columns` on PostgreSQL) and must agree on both sides; every
//! value travels as one of the four kinds the `Any` driver knows (integer, float, text,
//! blob), with typed NULLs. Rows are read from one **snapshot** of the source (a single read
//! transaction: SQLite's WAL snapshot, PostgreSQL's `REPEATABLE READ`), streamed in primary
//! key order, and written to the target in batches of [`Options::batch_rows`] rows, one
//! transaction per batch, with multi-row `INSERT`s. Identity columns keep their values
//! (`OVERRIDING SYSTEM VALUE` on PostgreSQL) and their sequences are moved past the copied
//! maximum, so the target keeps numbering where the source stopped.
//!
//! **Safety.** The target must be empty: a non-empty target is refused unless
//! [`Options::force`], which deletes its rows first. Before deleting anything, a probe row
//! written to the target and looked for in the source makes sure the two URLs do not name
//! the same database. A SQLite source file must exist (opening it would otherwise create an
//! empty one). A failed copy leaves the target partly filled: run it again with `force`.
//!
//! **Proof.** After the copy every table is read back from the target: its row count and an
//! order-independent digest of its rows (the sum of a SHA-256 per row, so the differing sort
//! orders of text keys across backends do not matter) must equal those of the source
//! snapshot, or the copy fails with [`CopyError::Verify`].
//!
//! **Not copied: photos.** Face and attendance photos live as files under the photo store
//! (`DIR/files/`), not in the database; they stay where they are, and the platform on the
//! new database must be pointed at the same files (`photo_store` / `--data-dir`).

use std::fmt;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use super::sql::SqlStore;
use super::{Store, StoreError};

/// One table of the schema and the key its rows are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    /// Primary key columns (`ORDER BY` of the copy).
    pub key: &'static str,
}

/// Every table of the schema, in foreign-key order: a table comes after every table it
/// references. A table found in a database but missing here stops the copy
/// ([`CopyError::UnknownTable`]), so a migration that adds a table must add it here too.
pub const TABLES: &[Table] = &[
    table("vendors", "id"),
    table("credentials", "access_id"),
    table("tokens", "token"),
    table("projects", "id"),
    table("devices", "sn"),
    table("presence_transitions", "id"),
    table("workers", "person_id"),
    table("project_workers", "project_id, person_id"),
    table("tasks", "taskid"),
    table("task_persons", "taskid, person_id"),
    table("task_failures", "taskid, kind, person_id"),
    table("person_sync", "sn, person_id"),
    table("reconcile_pages", "taskid, page"),
    table("attendance", "record_id"),
    table("users", "id"),
    table("user_projects", "user_id, project_id"),
    table("sessions", "token_hash"),
    table("api_tokens", "id"),
    table("audit_log", "id"),
    table("teams", "id"),
    table("blacklist", "person_id"),
    table("firmware", "id"),
];

const fn table(name: &'static str, key: &'static str) -> Table {
    Table { name, key }
}

/// Bound values per `INSERT` statement (far below SQLite's and PostgreSQL's limits).
const MAX_PARAMS: usize = 900;

/// How a copy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Delete the rows of a non-empty target first instead of refusing it.
    pub force: bool,
    /// Rows per target transaction (at least 1).
    pub batch_rows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            force: false,
            batch_rows: 1000,
        }
    }
}

/// Which of the two databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// Why a copy did not happen or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The database cannot be opened or migrated.
    #[error("cannot open the {side} database: {source}")]
    Open {
        side: Side,
        #[source]
        source: StoreError,
    },
    /// The SQLite source file does not exist (opening it would create an empty database).
    #[error("the source database file {0} does not exist")]
    SourceMissing(String),
    /// Both URLs name the same database.
    #[error("the source and the target are the same database")]
    SameDatabase,
    /// The target holds rows and `force` was not given: `(table, rows)` of the non-empty ones.
    #[error(
        "the target database is not empty ({}); it must be freshly migrated, or forced (its rows are then deleted)",
        .0.iter().map(|(t, n)| format!("{t}: {n} rows")).collect::<Vec<_>>().join(", ")
    )]
    TargetNotEmpty(Vec<(String, u64)>),
    /// A database has a table this build does not know how to copy.
    #[error("the {side} database has a table {table:?} this build does not know how to copy")]
    UnknownTable { side: Side, table: String },
    /// A database lacks one of [`TABLES`].
    #[error("the {side} database has no table {table:?}")]
    MissingTable { side: Side, table: &'static str },
    /// The two schemas disagree about a table's columns, or a column has a type the copy
    /// cannot carry.
    #[error("table {table}: {detail}")]
    Schema { table: &'static str, detail: String },
    /// A statement failed on one side.
    #[error("{side} database, table {table}: {source}")]
    Database {
        side: Side,
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The target does not hold what the source held.
    #[error("verification of table {table} failed: {detail}")]
    Verify { table: &'static str, detail: String },
}

/// What a copy is doing, for progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// `force` deleted this many rows from the target before copying.
    Cleared { rows: u64 },
    /// Copying of a table with `rows` rows begins.
    Started { table: &'static str, rows: u64 },
    /// `copied` rows of the table are committed on the target.
    Copied {
        table: &'static str,
        copied: u64,
        rows: u64,
    },
    /// A table was read back from the target and matches the source.
    Verified(&'a TableSummary),
}

/// One copied and verified table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub table: &'static str,
    /// Rows in the source snapshot.
    pub source_rows: u64,
    /// Rows read back from the target (equal to `source_rows`, or the copy fails).
    pub target_rows: u64,
    /// Time spent copying the table.
    pub elapsed: Duration,
}

/// The outcome of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Backends ("sqlite", "postgres").
    pub source_backend: &'static str,
    pub target_backend: &'static str,
    /// Rows `force` deleted from the target first.
    pub cleared_rows: u64,
    /// Every table, in [`TABLES`] order.
    pub tables: Vec<TableSummary>,
    /// Wall time of the whole copy, verification included.
    pub elapsed: Duration,
}

impl Summary {
    /// Rows copied, over all tables.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.target_rows).sum()
    }
}

/// Opens both databases (applying migrations), copies `from_url` into `to_url`, verifies
/// and closes them. See the module docs for what is refused and what is checked.
pub async fn copy_database(
    from_url: &str,
    to_url: &str,
    options: &Options,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Summary, CopyError> {
    if from_url.trim() == to_url.trim() {
        return Err(CopyError::SameDatabase);
    }
    if let Some(path) = sqlite_file(from_url)
        && !std::path::Path::new(&path).exists()
    {
        return Err(CopyError::SourceMissing(path));
    }
    let from = SqlStore::connect(from_url)
        .await
        .map_err(|source| CopyError::Open {
            side: Side::Source,
            source,
        })?;
    let to = match SqlStore::connect(to_url).await {
        Ok(to) => to,
        Err(source) => {
            from.close().await;
            return Err(CopyError::Open {
                side: Side::Target,
                source,
            });
        }
    };
    let result = copy_stores(&from, &to, options, progress).await;
    from.close().await;
    to.close().await;
    result
}

/// Copies every row of `from` into `to` (both already open and migrated) and verifies the
/// copy. See the module docs.
pub async fn copy_stores(
    from: &SqlStore,
    to: &SqlStore,
    options: &Options,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Summary, CopyError> {
    let started = Instant::now();
    let source_backend = from.backend();
    let target_backend = to.backend();
    let batch_rows = options.batch_rows.max(1);

    // The target: its schema, and whether it is empty.
    let mut target_schema = Vec::with_capacity(TABLES.len());
    let mut occupied = Vec::new();
    {
        let mut conn = to
            .pool()
            .acquire()
            .await
            .map_err(db(Side::Target, "(connect)"))?;
        check_tables(&mut conn, target_backend, Side::Target).await?;
        for table in TABLES {
            target_schema.push(columns(&mut conn, target_backend, Side::Target, table.name).await?);
            let rows = count(&mut conn, table.name, Side::Target).await?;
            if rows > 0 {
                occupied.push((table.name.to_owned(), rows));
            }
        }
    }
    let mut cleared_rows = 0;
    if !occupied.is_empty() {
        if !options.force {
            return Err(CopyError::TargetNotEmpty(occupied));
        }
        if same_database(from, to).await? {
            return Err(CopyError::SameDatabase);
        }
        cleared_rows = clear(to, target_backend).await?;
        progress(Progress::Cleared { rows: cleared_rows });
    }

    // One snapshot of the source for the whole copy.
    let mut snapshot = match source_backend {
        "postgres" => {
            from.pool()
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
        }
        _ => from.pool().begin().await,
    }
    .map_err(db(Side::Source, "(begin)"))?;
    let src: &mut AnyConnection = &mut snapshot;
    check_tables(src, source_backend, Side::Source).await?;

    let mut plans = Vec::with_capacity(TABLES.len());
    for (table, target_columns) in TABLES.iter().zip(target_schema) {
        let source_columns = columns(src, source_backend, Side::Source, table.name).await?;
        plans.push(plan(table, source_columns, target_columns)?);
    }
    let mut source_counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        source_counts.push(count(src, table.name, Side::Source).await?);
    }

    // Copy, table by table, in foreign-key order.
    let mut copied = Vec::with_capacity(TABLES.len());
    for (plan, &rows) in plans.iter().zip(&source_counts) {
        progress(Progress::Started {
            table: plan.table.name,
            rows,
        });
        let t0 = Instant::now();
        let (n, digest) =
            copy_table(src, to, target_backend, plan, rows, batch_rows, progress).await?;
        if n != rows {
            return Err(CopyError::Verify {
                table: plan.table.name,
                detail: format!("{n} rows read from a snapshot that counted {rows}"),
            });
        }
        if target_backend == "postgres" {
            reset_identities(to, plan).await?;
        }
        copied.push((n, digest, t0.elapsed()));
    }
    // The snapshot only read; ending it is all that is left to do.
    snapshot
        .rollback()
        .await
        .map_err(db(Side::Source, "(end)"))?;

    // Read everything back from the target.
    let mut tables = Vec::with_capacity(TABLES.len());
    let mut conn = to
        .pool()
        .acquire()
        .await
        .map_err(db(Side::Target, "(connect)"))?;
    for (plan, (rows, digest, elapsed)) in plans.iter().zip(copied) {
        let name = plan.table.name;
        let target_rows = count(&mut conn, name, Side::Target).await?;
        if target_rows != rows {
            return Err(CopyError::Verify {
                table: name,
                detail: format!("the source has {rows} rows, the target {target_rows}"),
            });
        }
        let (read, target_digest) = digest_table(&mut conn, plan).await?;
        if read != rows || target_digest != digest {
            return Err(CopyError::Verify {
                table: name,
                detail: "the rows read back differ from the rows copied".into(),
            });
        }
        let summary = TableSummary {
            table: name,
            source_rows: rows,
            target_rows,
            elapsed,
        };
        progress(Progress::Verified(&summary));
        tables.push(summary);
    }

    Ok(Summary {
        source_backend,
        target_backend,
        cleared_rows,
        tables,
        elapsed: started.elapsed(),
    })
}

// --- schema ------------------------------------------------------------------------------

/// The kinds of value the `Any` driver carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

impl Kind {
    /// The kind of a declared column type (SQLite's `INTEGER`, PostgreSQL's `bigint`, …).
    fn of_declared(declared: &str) -> Option<Kind> {
        let d = declared.to_ascii_lowercase();
        if d.contains("int") {
            Some(Kind::Int)
        } else if d.contains("real") || d.contains("double") || d.contains("float") {
            Some(Kind::Real)
        } else if d.contains("char") || d.contains("text") || d.contains("clob") {
            Some(Kind::Text)
        } else if d.contains("blob") || d == "bytea" {
            Some(Kind::Blob)
        } else {
            None
        }
    }
}

/// A column as the live schema describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    declared: String,
    /// A PostgreSQL identity column (explicit values need `OVERRIDING SYSTEM VALUE`).
    identity: bool,
}

/// How one table is copied.
#[derive(Debug)]
struct Plan {
    table: &'static Table,
    /// Column names and kinds, in the source's order.
    columns: Vec<(String, Kind)>,
    /// Identity columns of the target.
    identities: Vec<String>,
}

impl Plan {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn select(&self, ordered: bool) -> String {
        let mut sql = format!("SELECT {} FROM {}", self.column_list(), self.table.name);
        if ordered {
            sql.push_str(" ORDER BY ");
            sql.push_str(self.table.key);
        }
        sql
    }
}

/// Checks that a database holds exactly the tables of [`TABLES`] (plus the migrator's own).
async fn check_tables(
    conn: &mut AnyConnection,
    backend: &str,
    side: Side,
) -> Result<(), CopyError> {
    let sql = match backend {
        "postgres" => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let rows = sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(db(side, "(schema)"))?;
    let mut names = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.try_get("name").map_err(db(side, "(schema)"))?;
        if !(name.starts_with("sqlite_") || name.starts_with("_sqlx")) {
            names.push(name);
        }
    }
    if let Some(unknown) = names
        .iter()
        .find(|n| !TABLES.iter().any(|t| t.name == n.as_str()))
    {
        return Err(CopyError::UnknownTable {
            side,
            table: unknown.clone(),
        });
    }
    if let Some(missing) = TABLES.iter().find(|t| !names.iter().any(|n| n == t.name)) {
        return Err(CopyError::MissingTable {
            side,
            table: missing.name,
        });
    }
    Ok(())
}

/// The columns of a table, in declaration order.
async fn columns(
    conn: &mut AnyConnection,
    backend: &str,
    side: Side,
    table: &'static str,
) -> Result<Vec<Column>, CopyError> {
    let fail = db(side, table);
    let rows =
        match backend {
            "postgres" => sqlx::query(
                "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS declared, \
                 CAST(is_identity AS TEXT) AS identity FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await,
            _ => {
                sqlx::query(
                    "SELECT name, type AS declared, 'NO' AS identity FROM pragma_table_info($1) \
                 ORDER BY cid",
                )
                .bind(table)
                .fetch_all(&mut *conn)
                .await
            }
        }
        .map_err(&fail)?;
    rows.iter()
        .map(|row| {
            Ok(Column {
                name: row.try_get("name")?,
                declared: row.try_get("declared")?,
                identity: row.try_get::<String, _>("identity")? == "YES",
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(fail)
}

/// Matches a table's source and target columns (same names, same kinds).
fn plan(
    table: &'static Table,
    source: Vec<Column>,
    target: Vec<Column>,
) -> Result<Plan, CopyError> {
    let schema = |detail: String| CopyError::Schema {
        table: table.name,
        detail,
    };
    let mut columns = Vec::with_capacity(source.len());
    for column in &source {
        if column.name.is_empty()
            || !column
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(schema(format!("unexpected column name {:?}", column.name)));
        }
        let kind = Kind::of_declared(&column.declared).ok_or_else(|| {
            schema(format!(
                "column {} has type {:?}, which cannot be copied",
                column.name, column.declared
            ))
        })?;
        let Some(theirs) = target.iter().find(|c| c.name == column.name) else {
            return Err(schema(format!(
                "column {} is missing in the target",
                column.name
            )));
        };
        if Kind::of_declared(&theirs.declared) != Some(kind) {
            return Err(schema(format!(
                "column {} is {:?} in the source but {:?} in the target",
                column.name, column.declared, theirs.declared
            )));
        }
        columns.push((column.name.clone(), kind));
    }
    if let Some(extra) = target
        .iter()
        .find(|c| !source.iter().any(|s| s.name == c.name))
    {
        return Err(schema(format!(
            "column {} is missing in the source",
            extra.name
        )));
    }
    let identities = target
        .iter()
        .filter(|c| c.identity)
        .map(|c| c.name.clone())
        .collect();
    Ok(Plan {
        table,
        columns,
        identities,
    })
}

async fn count(
    conn: &mut AnyConnection,
    table: &'static str,
    side: Side,
) -> Result<u64, CopyError> {
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}");
    let n: i64 = sqlx::query(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get("n"))
        .map_err(db(side, table))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

// --- values ------------------------------------------------------------------------------

/// One value in transit, typed by its column's kind (so a NULL is bound with its type).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Cell {
    fn read(row: &AnyRow, index: usize, kind: Kind) -> Result<Cell, sqlx::Error> {
        Ok(match kind {
            Kind::Int => Cell::Int(row.try_get(index)?),
            Kind::Real => Cell::Real(row.try_get(index)?),
            Kind::Text => Cell::Text(row.try_get(index)?),
            Kind::Blob => Cell::Blob(row.try_get(index)?),
        })
    }

    fn bind(self, query: Query<'_, Any, AnyArguments>) -> Query<'_, Any, AnyArguments> {
        match self {
            Cell::Int(v) => query.bind(v),
            Cell::Real(Some(v)) => query.bind(v),
            // sqlx 0.9.0's `Any` swaps the typed NULLs of f32 and f64 (sqlx issue #4284): an
            // f64 NULL reaches PostgreSQL as `float4`, and the statement, prepared with that
            // type and cached, then rejects the next non-NULL f64 ("incorrect binary data
            // format"). An f32 NULL is sent as `float8`, which is what the column is.
            Cell::Real(None) => query.bind(Option::<f32>::None),
            Cell::Text(v) => query.bind(v),
            Cell::Blob(v) => query.bind(v),
        }
    }

    /// Feeds an unambiguous encoding of the value to a hash.
    fn hash(&self, h: &mut Sha256) {
        match self {
            Cell::Int(None) | Cell::Real(None) | Cell::Text(None) | Cell::Blob(None) => {
                h.update([0]);
            }
            Cell::Int(Some(v)) => {
                h.update([1]);
                h.update(v.to_le_bytes());
            }
            Cell::Real(Some(v)) => {
                h.update([2]);
                h.update(v.to_bits().to_le_bytes());
            }
            Cell::Text(Some(s)) => {
                h.update([3]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            Cell::Blob(Some(b)) => {
                h.update([4]);
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
        }
    }
}

/// A table's digest: the wrapping sum of a hash per row, so the order rows come in does not
/// matter (text keys sort differently on SQLite and PostgreSQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TableDigest(u128);

impl TableDigest {
    fn add(&mut self, row: &[Cell]) {
        let mut h = Sha256::new();
        for cell in row {
            cell.hash(&mut h);
        }
        let out = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&out[..16]);
        self.0 = self.0.wrapping_add(u128::from_le_bytes(first));
    }
}

fn read_row(row: &AnyRow, plan: &Plan) -> Result<Vec<Cell>, sqlx::Error> {
    plan.columns
        .iter()
        .enumerate()
        .map(|(i, &(_, kind))| Cell::read(row, i, kind))
        .collect()
}

// --- copying -----------------------------------------------------------------------------

/// Streams one table out of the source snapshot into the target, a batch per transaction.
/// Returns the rows copied and their digest.
async fn copy_table(
    src: &mut AnyConnection,
    to: &SqlStore,
    target_backend: &str,
    plan: &Plan,
    rows: u64,
    batch_rows: usize,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(u64, TableDigest), CopyError> {
    let name = plan.table.name;
    let select = plan.select(true);
    let mut stream = sqlx::query(AssertSqlSafe(select)).fetch(&mut *src);
    let mut digest = TableDigest::default();
    let mut batch = Vec::with_capacity(batch_rows);
    let mut copied = 0u64;
    loop {
        let next = stream.try_next().await.map_err(db(Side::Source, name))?;
        let done = next.is_none();
        if let Some(row) = next {
            let cells = read_row(&row, plan).map_err(db(Side::Source, name))?;
            digest.add(&cells);
            batch.push(cells);
        }
        if batch.len() >= batch_rows || (done && !batch.is_empty()) {
            let n = batch.len() as u64;
            write_batch(to, target_backend, plan, std::mem::take(&mut batch))
                .await
                .map_err(db(Side::Target, name))?;
            copied += n;
            progress(Progress::Copied {
                table: name,
                copied,
                rows,
            });
        }
        if done {
            return Ok((copied, digest));
        }
    }
}

/// Inserts rows in one transaction, with multi-row `INSERT`s.
async fn write_batch(
    to: &SqlStore,
    target_backend: &str,
    plan: &Plan,
    rows: Vec<Vec<Cell>>,
) -> Result<(), sqlx::Error> {
    let width = plan.columns.len().max(1);
    let per_statement = (MAX_PARAMS / width).max(1);
    let head = format!(
        "INSERT INTO {} ({}) {}VALUES ",
        plan.table.name,
        plan.column_list(),
        if plan.identities.is_empty() {
            ""
        } else {
            "OVERRIDING SYSTEM VALUE "
        }
    );
    let mut tx = match target_backend {
        "postgres" => to.pool().begin().await?,
        _ => to.pool().begin_with("BEGIN IMMEDIATE").await?,
    };
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Cell>> = rows.by_ref().take(per_statement).collect();
        let mut sql = head.clone();
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", r * width + c + 1));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for cell in chunk.into_iter().flatten() {
            query = cell.bind(query);
        }
        let conn: &mut AnyConnection = &mut tx;
        query.execute(conn).await?;
    }
    tx.commit().await
}

/// Moves each identity sequence of a PostgreSQL target past the copied maximum.
async fn reset_identities(to: &SqlStore, plan: &Plan) -> Result<(), CopyError> {
    let name = plan.table.name;
    for column in &plan.identities {
        let max_sql = format!("SELECT CAST(MAX(\"{column}\") AS BIGINT) AS m FROM {name}");
        let max: Option<i64> = sqlx::query(AssertSqlSafe(max_sql))
            .fetch_one(to.pool())
            .await
            .and_then(|row| row.try_get("m"))
            .map_err(db(Side::Target, name))?;
        if let Some(max) = max {
            sqlx::query("SELECT CAST(setval(pg_get_serial_sequence($1, $2), $3) AS BIGINT)")
                .bind(name)
                .bind(column.clone())
                .bind(max)
                .execute(to.pool())
                .await
                .map_err(db(Side::Target, name))?;
        }
    }
    Ok(())
}

/// Reads a table back: its rows and their digest.
async fn digest_table(
    conn: &mut AnyConnection,
    plan: &Plan,
) -> Result<(u64, TableDigest), CopyError> {
    let name = plan.table.name;
    let mut stream = sqlx::query(AssertSqlSafe(plan.select(false))).fetch(&mut *conn);
    let mut digest = TableDigest::default();
    let mut n = 0u64;
    while let Some(row) = stream.try_next().await.map_err(db(Side::Target, name))? {
        digest.add(&read_row(&row, plan).map_err(db(Side::Target, name))?);
        n += 1;
    }
    Ok((n, digest))
}

// --- safety ------------------------------------------------------------------------------

/// Whether `from` and `to` are one database: a probe token committed on the target is
/// looked for in the source, then removed.
async fn same_database(from: &SqlStore, to: &SqlStore) -> Result<bool, CopyError> {
    let probe = format!(
        "rollcall-migrate-probe-{}",
        crate::runtime::util::random_hex128()
    );
    sqlx::query(
        "INSERT INTO tokens (token, sn, access_id, last_used_at, created_at) \
         VALUES ($1, '', '', 0, 0)",
    )
    .bind(probe.clone())
    .execute(to.pool())
    .await
    .map_err(db(Side::Target, "tokens"))?;
    let seen = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM tokens WHERE token = $1")
        .bind(probe.clone())
        .fetch_one(from.pool())
        .await
        .and_then(|row| row.try_get::<i64, _>("n"))
        .map_err(db(Side::Source, "tokens"));
    sqlx::query("DELETE FROM tokens WHERE token = $1")
        .bind(probe)
        .execute(to.pool())
        .await
        .map_err(db(Side::Target, "tokens"))?;
    Ok(seen? > 0)
}

/// Deletes every row of the target (reverse foreign-key order, one transaction).
async fn clear(to: &SqlStore, target_backend: &str) -> Result<u64, CopyError> {
    let mut tx = match target_backend {
        "postgres" => to.pool().begin().await,
        _ => to.pool().begin_with("BEGIN IMMEDIATE").await,
    }
    .map_err(db(Side::Target, "(begin)"))?;
    let mut deleted = 0;
    for table in TABLES.iter().rev() {
        let conn: &mut AnyConnection = &mut tx;
        deleted += sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", table.name)))
            .execute(conn)
            .await
            .map_err(db(Side::Target, table.name))?
            .rows_affected();
    }
    tx.commit().await.map_err(db(Side::Target, "(commit)"))?;
    Ok(deleted)
}

/// The file a `sqlite:` URL names; `None` for other URLs and in-memory databases.
fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        None
    } else {
        Some(path.to_owned())
    }
}

fn db(side: Side, table: &'static str) -> impl Fn(sqlx::Error) -> CopyError {
    move |source| CopyError::Database {
        side,
        table,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQLITE: &str = concat!(
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/sqlite/0002_console.sql")
    );
    const POSTGRES: &str = concat!(
        include_str!("../../migrations/postgres/0001_init.sql"),
        include_str!("../../migrations/postgres/0002_console.sql")
    );

    /// `(table, tables it references)` in declaration order.
    fn declared(sql: &str) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for line in sql.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                out.push((name.to_owned(), Vec::new()));
            } else if let Some((_, rest)) = line.split_once("REFERENCES ")
                && let Some(last) = out.last_mut()
            {
                let target = rest.split_whitespace().next().unwrap_or_default();
                last.1.push(target.to_owned());
            }
        }
        out
    }

    #[test]
    fn tables_cover_the_schema_in_foreign_key_order() {
        for sql in [SQLITE, POSTGRES] {
            let declared = declared(sql);
            let mut names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
            let mut ours: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
            names.sort_unstable();
            ours.sort_unstable();
            assert_eq!(names, ours, "TABLES lists every table of the schema");
            for (table, references) in &declared {
                let at = TABLES.iter().position(|t| t.name == table).unwrap();
                for r in references {
                    let parent = TABLES.iter().position(|t| t.name == r).unwrap();
                    assert!(parent < at, "{table} references {r}, which must come first");
                }
            }
        }
    }

    #[test]
    fn declared_types_map_to_kinds() {
        assert_eq!(Kind::of_declared("INTEGER"), Some(Kind::Int));
        assert_eq!(Kind::of_declared("bigint"), Some(Kind::Int));
        assert_eq!(Kind::of_declared("REAL"), Some(Kind::Real));
        assert_eq!(Kind::of_declared("double precision"), Some(Kind::Real));
        assert_eq!(Kind::of_declared("TEXT"), Some(Kind::Text));
        assert_eq!(Kind::of_declared("character varying"), Some(Kind::Text));
        assert_eq!(Kind::of_declared("bytea"), Some(Kind::Blob));
        assert_eq!(Kind::of_declared("BLOB"), Some(Kind::Blob));
        assert_eq!(Kind::of_declared("jsonb"), None);
    }

    #[test]
    fn digests_ignore_row_order_but_not_values() {
        let a = vec![Cell::Int(Some(1)), Cell::Text(Some("x".into()))];
        let b = vec![Cell::Int(Some(2)), Cell::Text(None)];
        let (mut d1, mut d2) = (TableDigest::default(), TableDigest::default());
        d1.add(&a);
        d1.add(&b);
        d2.add(&b);
        d2.add(&a);
        assert_eq!(d1, d2);
        let mut d3 = TableDigest::default();
        d3.add(&a);
        d3.add(&[Cell::Int(Some(2)), Cell::Text(Some(String::new()))]);
        assert_ne!(d1, d3, "NULL and empty text differ");
    }

    #[test]
    fn sqlite_files_are_found_in_urls() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/r.db?mode=rwc").as_deref(),
            Some("/var/lib/r.db")
        );
        assert_eq!(
            sqlite_file("sqlite://data/r.db").as_deref(),
            Some("data/r.db")
        );
        assert_eq!(
            sqlite_file("sqlite:data/r.db").as_deref(),
            Some("data/r.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x@h/db"), None);
    }
}
