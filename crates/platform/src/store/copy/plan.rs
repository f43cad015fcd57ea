//! The schema side of a copy: which tables a database holds, their columns and kinds, and
//! the [`Plan`] each table is copied by.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{CopyError, Side, TABLES, Table, db};

/// The kinds of value the `Any` driver carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

impl Kind {
    /// The kind of a declared column type (SQLite's `INTEGER`, PostgreSQL's `bigint`, …).
    pub(super) fn of_declared(declared: &str) -> Option<Kind> {
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
pub(super) struct Column {
    pub(super) name: String,
    pub(super) declared: String,
    /// A PostgreSQL identity column (explicit values need `OVERRIDING SYSTEM VALUE`).
    pub(super) identity: bool,
}

/// How one table is copied.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) table: &'static Table,
    /// Column names and kinds, in the source's order.
    pub(super) columns: Vec<(String, Kind)>,
    /// Identity columns of the target.
    pub(super) identities: Vec<String>,
}

impl Plan {
    pub(super) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(super) fn select(&self, ordered: bool) -> String {
        let mut sql = format!("SELECT {} FROM {}", self.column_list(), self.table.name);
        if ordered {
            sql.push_str(" ORDER BY ");
            sql.push_str(self.table.key);
        }
        sql
    }
}

/// Checks that a database holds exactly the tables of [`TABLES`] (plus the migrator's own).
pub(super) async fn check_tables(
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
pub(super) async fn columns(
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
pub(super) fn plan(
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

pub(super) async fn count(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
