//! Moving rows: values in transit ([`Cell`]), streaming a table out of the source snapshot
//! and writing it to the target in batches, and moving identity sequences on.

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::plan::Plan;
use super::rows::{Cell, read_row};
use super::verify::TableDigest;
use super::{CopyError, MAX_PARAMS, Progress, Side, db};
use crate::store::sql::SqlStore;

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
