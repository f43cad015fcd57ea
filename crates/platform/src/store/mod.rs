//! Storage behind traits: what the services need, nothing about SQL dialects.
//!
//! The platform's storage is one trait per aggregate, in [`traits`]: [`VendorStore`],
//! [`DeviceStore`], [`WorkerStore`], [`RosterStore`], [`TaskStore`], [`AttendanceStore`] and
//! [`AccountStore`], [`UplinkStore`] and [`WebhookStore`]. [`Store`] is all of them together plus what is about the store itself
//! (`backend`, `ping`, `announce_tasks`), so `Arc<dyn Store>` is what the application holds.
//! A method of an aggregate trait is called with that trait in scope: call sites write
//! `use crate::store::prelude::*;` (every storage trait) rather than one import per trait.
//!
//! The traits are implemented once in [`sql`] over `sqlx::Any` (one file per aggregate
//! there too), with one migration set per backend (`migrations/sqlite`,
//! `migrations/postgres`), chosen by the database URL at startup ([`connect`]). The SQL it
//! runs is portable (`$n` placeholders, `ON CONFLICT`, integers for booleans and times), so
//! a backend is a migration set plus connection settings, and services never see which one
//! runs. Business rules (which tasks are person tasks, which merge or supersede) are decided
//! above the store and reach it as data; the SQL only executes them.
//!
//! Beside them: [`model`] and [`console`] (the stored types), [`faulty::FaultyStore`] (wraps
//! any store to inject faults in tests, 500_01), [`copy`] (copies one database into another
//! and verifies), [`blobs`] (photo and file storage outside the database) and [`test_db`].

pub mod blobs;
pub mod console;
pub mod copy;
pub mod faulty;
pub mod model;
pub mod sealing;
pub mod sql;
pub mod test_db;
pub mod test_s3;
pub mod traits;

use async_trait::async_trait;

pub use model::*;
pub use traits::*;

/// A storage failure. Services map it to `500_01` (device API) or a 500 (admin API) and log
/// the detail; it never reaches a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (an sn, an ID-card number, an access id).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A failure of SQLite's group commit, which writes through rusqlite
    /// (`store/sql/group_writer.rs`). Boxed: unboxed, it made this enum, and with it every
    /// request's future that may hold one, 16 bytes larger, past the size glibc serves from
    /// its per-thread cache (BENCHMARKS.md, session 28).
    #[error("database: {0}")]
    Sqlite(Box<rusqlite::Error>),
    /// The thread of SQLite's group commit could not start or is gone.
    #[error("the SQLite writer thread: {0}")]
    WriterStopped(String),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that cannot be read back (a bad enum text, bad JSON).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A stored secret that cannot be sealed or opened with the keys given.
    #[error("secret key: {0}")]
    Sealing(#[from] sealing::SealError),
    /// A fault injected by a test.
    #[error("injected fault")]
    Injected,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The PostgreSQL notification channel of [`Store::announce_tasks`]; its payload is an sn.
pub const TASK_CHANNEL: &str = "rollcall_tasks";

/// The PostgreSQL notification channel of [`DeviceStore::claim_session`]; its payload is an sn.
pub const SESSION_CHANNEL: &str = "rollcall_sessions";

/// Everything the platform keeps durably: every aggregate's store, and the store itself.
#[async_trait]
pub trait Store:
    VendorStore
    + DeviceStore
    + WorkerStore
    + RosterStore
    + TaskStore
    + AttendanceStore
    + AccountStore
    + UplinkStore
    + WebhookStore
{
    /// Which backend this is ("sqlite", "postgres"), for logs and health.
    fn backend(&self) -> &'static str;
    /// Cheap liveness probe for `/healthz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Tells every node sharing this store that `sn` has new tasks, so the node holding its
    /// connection pushes them (PostgreSQL: `NOTIFY` on [`TASK_CHANNEL`]; an embedded store has
    /// no other node to tell).
    async fn announce_tasks(&self, sn: &str) -> StoreResult<()>;
}

/// Opens the store a database URL names and applies its migrations:
/// `sqlite://path/to/rollcall.db` or `postgres://…`.
pub async fn connect(url: &str) -> StoreResult<sql::SqlStore> {
    sql::SqlStore::connect(url).await
}

/// Every storage trait, for `use crate::store::prelude::*;` at a call site.
pub mod prelude {
    pub use super::Store;
    pub use super::traits::*;
}
