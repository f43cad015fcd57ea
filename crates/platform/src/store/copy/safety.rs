//! What keeps a copy from destroying data: telling whether two URLs name one database,
//! clearing a target (only with `force`), and finding a SQLite source's file.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{CopyError, Side, TABLES, db};
use crate::store::sql::SqlStore;

/// Whether `from` and `to` are one database: a probe token committed on the target is
/// looked for in the source, then removed.
pub(super) async fn same_database(from: &SqlStore, to: &SqlStore) -> Result<bool, CopyError> {
    // Unique among copies running at once: this process, this instant.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let probe = format!("rollcall-copy-probe-{}-{nanos}", std::process::id());
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
pub(super) async fn clear(to: &SqlStore, target_backend: &str) -> Result<u64, CopyError> {
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
pub(super) fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        None
    } else {
        Some(path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
