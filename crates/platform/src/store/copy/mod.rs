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
//! **Photos** are not rows: face and attendance photos live in the photo store (`DIR/files/`).
//! Either the platform on the new database is pointed at the same files (`photo_store` /
//! `--data-dir`), or [`photos`] copies them into an S3-compatible store and re-keys the
//! attendance photos in the new database (`migrate-data --photos-to`).

use std::fmt;
use std::time::{Duration, Instant};

use sqlx::AnyConnection;

pub mod photos;
mod plan;
mod rows;
mod safety;
mod transfer;
mod verify;

use plan::{check_tables, columns, count, plan};
use safety::{clear, same_database, sqlite_file};
use transfer::{copy_table, reset_identities};
use verify::digest_table;

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
    table("device_sessions", "sn"),
    table("workers", "person_id"),
    table("project_workers", "project_id, person_id"),
    table("tasks", "taskid"),
    table("task_persons", "taskid, person_id"),
    table("task_failures", "taskid, kind, person_id"),
    table("person_sync", "sn, person_id"),
    table("reconcile_pages", "taskid, page"),
    table("attendance", "record_id"),
    table("attendance_by_person", "person_id, record_id"),
    table("attendance_to_index", "record_id"),
    table("users", "id"),
    table("user_projects", "user_id, project_id"),
    table("sessions", "token_hash"),
    table("api_tokens", "id"),
    table("audit_log", "id"),
    table("teams", "id"),
    table("blacklist", "person_id"),
    table("firmware", "id"),
    table("uplink_configs", "project_id"),
    table("uplink_outbox", "id"),
    table("uplink_teams", "team_id"),
    table("worker_national", "person_id"),
    table("dictionaries", "kind, code"),
    table("webhook_endpoints", "id"),
    table("webhook_deliveries", "id"),
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
        include_str!("../../../migrations/sqlite/0001_init.sql"),
        include_str!("../../../migrations/sqlite/0002_console.sql"),
        include_str!("../../../migrations/sqlite/0005_device_sessions.sql"),
        include_str!("../../../migrations/sqlite/0006_uplink.sql"),
        include_str!("../../../migrations/sqlite/0007_person_index.sql")
    );
    const POSTGRES: &str = concat!(
        include_str!("../../../migrations/postgres/0001_init.sql"),
        include_str!("../../../migrations/postgres/0002_console.sql"),
        include_str!("../../../migrations/postgres/0005_device_sessions.sql"),
        include_str!("../../../migrations/postgres/0006_uplink.sql"),
        include_str!("../../../migrations/postgres/0007_person_index.sql")
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
}
