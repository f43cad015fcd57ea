//! A database for one test: SQLite in the test's temp dir by default; PostgreSQL when
//! `ROLLCALL_TEST_DATABASE_URL` is set, in a schema of its own, so parallel tests and CI runs
//! never collide. Shared by the test suites of every crate of the workspace (platform, device
//! SDK, binary), so the rule of how a test finds its database exists once.
//!
//! Schemas are not dropped when a test ends: a platform may still hold connections (and
//! locks) while the test's runtime winds down. Each new test drops its prefix's schemas older
//! than [`STALE_SCHEMA_MS`] instead.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AnyConnection, Connection, Row};

use super::StoreResult;
use super::sealing::Keyring;
use super::sql::SqlStore;
use rollcall_protocol::time::now_ms;

/// The variable naming the PostgreSQL server tests use (e.g.
/// `postgres://postgres@127.0.0.1:5432/test`).
pub const TEST_DATABASE_URL: &str = "ROLLCALL_TEST_DATABASE_URL";

/// The PostgreSQL server of the tests that exist only on PostgreSQL (the storage story's
/// PostgreSQL half, SQLite → PostgreSQL copying, two nodes on one database) when
/// [`TEST_DATABASE_URL`] is unset: the server every machine of the project's kind runs. Those
/// tests never skip; without a server they fail with [`postgres_missing`]'s instruction.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server for PostgreSQL-only tests: [`TEST_DATABASE_URL`], else
/// [`DEFAULT_POSTGRES_URL`].
pub fn postgres_server_url() -> String {
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.is_empty() => url,
        _ => DEFAULT_POSTGRES_URL.to_owned(),
    }
}

/// The one-line instruction a PostgreSQL-only test fails with when it cannot reach the server.
pub fn postgres_missing(url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "this test needs PostgreSQL at {url} ({error}): start it (pg_ctlcluster 15 main start) \
         or point {TEST_DATABASE_URL} at a server"
    )
}

/// The secret key of test stores (a fixed one, so a store reopened by a test opens what it
/// sealed before). Never a production key: production keys are generated per installation.
pub const TEST_SECRET_KEY: &str = "cm9sbGNhbGwtdGVzdC1rZXktbm90LWEtc2VjcmV0ISE=";

/// A keyring of [`TEST_SECRET_KEY`], for test stores opened without [`TestDb`].
#[allow(
    clippy::expect_used,
    reason = "test support: the constant is a valid key, checked by this module's use"
)]
pub fn test_keys() -> Keyring {
    Keyring::parse(TEST_SECRET_KEY).expect("the test key parses")
}

/// Test schemas older than this are dropped by later tests of the same prefix.
pub const STALE_SCHEMA_MS: i64 = 30 * 60 * 1000;

/// One test's database.
#[derive(Debug)]
pub struct TestDb {
    /// The URL a platform under test is configured with.
    pub url: String,
    /// `(server URL, schema)` on PostgreSQL.
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// SQLite at `dir/rollcall.db` whatever the environment: for tests of SQLite's own paths.
    pub fn sqlite(dir: &Path) -> TestDb {
        TestDb {
            url: format!("sqlite://{}?mode=rwc", dir.join("rollcall.db").display()),
            postgres: None,
        }
    }

    /// SQLite at `dir/rollcall.db`, or a new PostgreSQL schema `{prefix}_{pid}_{n}_{ms}` when
    /// [`TEST_DATABASE_URL`] is set. `prefix` is lowercase letters only.
    pub fn new(prefix: &str, dir: &Path) -> TestDb {
        match std::env::var(TEST_DATABASE_URL) {
            Ok(base) if !base.is_empty() => TestDb::on_postgres(prefix, base),
            _ => TestDb::sqlite(dir),
        }
    }

    /// A new PostgreSQL schema whatever the suite's backend, for the tests that exist only on
    /// PostgreSQL: on [`postgres_server_url`]. Open it with [`TestDb::open_postgres`].
    pub fn postgres(prefix: &str) -> TestDb {
        TestDb::on_postgres(prefix, postgres_server_url())
    }

    fn on_postgres(prefix: &str, base: String) -> TestDb {
        debug_assert!(prefix.bytes().all(|b| b.is_ascii_lowercase()));
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            now_ms()
        );
        let sep = if base.contains('?') { '&' } else { '?' };
        TestDb {
            url: format!("{base}{sep}options[search_path]={schema}"),
            postgres: Some((base, schema)),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Opens and migrates the database; on PostgreSQL this creates the schema (after dropping
    /// stale schemas of the same prefix).
    /// Vendor secrets are sealed under [`TEST_SECRET_KEY`].
    pub async fn open(&self) -> StoreResult<SqlStore> {
        let store = match &self.postgres {
            Some((base, schema)) => {
                let prefix = schema.split('_').next().unwrap_or(schema);
                drop_stale_schemas(base, prefix).await;
                SqlStore::connect_with_schema(base, schema).await
            }
            None => SqlStore::connect(&self.url).await,
        }?;
        Ok(store.with_keys(test_keys()))
    }

    /// [`TestDb::open`] for a PostgreSQL-only test: a server that cannot be reached fails the
    /// test with a one-line instruction instead of skipping it.
    #[allow(
        clippy::panic,
        reason = "test support: the PostgreSQL-only test fails here, with its instruction"
    )]
    pub async fn open_postgres(&self) -> SqlStore {
        match self.open().await {
            Ok(store) => store,
            Err(e) => {
                let server = self.postgres.as_ref().map_or("", |(base, _)| base.as_str());
                panic!("{}", postgres_missing(server, &e))
            }
        }
    }
}

/// Best effort: drops `{prefix}_*` schemas whose creation time (the name's last part) is old.
async fn drop_stale_schemas(base: &str, prefix: &str) {
    sqlx::any::install_default_drivers();
    let Ok(mut conn) = AnyConnection::connect(base).await else {
        return;
    };
    let Ok(rows) = sqlx::query(
        "SELECT CAST(schema_name AS TEXT) AS name FROM information_schema.schemata \
         WHERE schema_name LIKE $1",
    )
    .bind(format!("{prefix}\\_%"))
    .fetch_all(&mut conn)
    .await
    else {
        return;
    };
    let cutoff = now_ms() - STALE_SCHEMA_MS;
    for row in rows {
        let Ok(name) = row.try_get::<String, _>("name") else {
            continue;
        };
        let created = name.rsplit('_').next().and_then(|t| t.parse::<i64>().ok());
        let ours = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ours && created.is_some_and(|t| t < cutoff) {
            let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await;
        }
    }
    let _ = conn.close().await;
}
