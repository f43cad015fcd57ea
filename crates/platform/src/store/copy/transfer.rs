//! Moving rows: values in transit ([`Cell`]), streaming a table out of the source snapshot
//! and writing it to the target in batches, and moving identity sequences on.

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::any::AnyArguments;
use sqlx::any::AnyRow;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use super::plan::{Kind, Plan};
use super::verify::TableDigest;
use super::{CopyError, MAX_PARAMS, Progress, Side, db};
use crate::store::sql::SqlStore;

/// One value in transit, typed by its column's kind (so a NULL is bound with its type).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Cell {
    pub(super) fn read(row: &AnyRow, index: usize, kind: Kind) -> Result<Cell, sqlx::Error> {
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
    pub(super) fn hash(&self, h: &mut Sha256) {
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
pub(super) fn read_row(row: &AnyRow, plan: &Plan) -> Result<Vec<Cell>, sqlx::Error> {
    plan.columns
        .iter()
        .enumerate()
        .map(|(i, &(_, kind))| Cell::read(row, i, kind))
        .collect()
}

// --- copying -----------------------------------------------------------------------------

/// Streams one table out of the source snapshot into the target, a batch per transaction.
/// Returns the rows copied and their digest.
pub(super) async fn copy_table(
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
pub(super) async fn write_batch(
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
pub(super) async fn reset_identities(to: &SqlStore, plan: &Plan) -> Result<(), CopyError> {
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
