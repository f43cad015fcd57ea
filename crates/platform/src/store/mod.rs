//! Storage behind a trait: what the services need, nothing about SQL dialects.
//!
//! [`Store`] is implemented once in [`sql`] over `sqlx::Any`, with one migration set per
//! backend (`migrations/sqlite`, `migrations/postgres`), chosen by the database URL at
//! startup ([`connect`]). The SQL it runs is portable (`$n` placeholders, `ON CONFLICT`,
//! integers for booleans and times), so a backend is a migration set plus connection
//! settings, and services never see which one runs. [`faulty::FaultyStore`] wraps any store
//! to inject faults in tests (500_01).

pub mod blobs;
pub mod console;
pub mod copy;
pub mod faulty;
pub mod model;
pub mod sql;
pub mod test_db;

use async_trait::async_trait;

pub use console::ConsoleStore;
pub use model::*;

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
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that cannot be read back (a bad enum text, bad JSON).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A fault injected by a test.
    #[error("injected fault")]
    Injected,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The PostgreSQL notification channel of [`Store::announce_tasks`]; its payload is an sn.
pub const TASK_CHANNEL: &str = "rollcall_tasks";

/// Everything the platform keeps durably.
#[async_trait]
pub trait Store: ConsoleStore {
    /// Which backend this is ("sqlite", "postgres"), for logs and health.
    fn backend(&self) -> &'static str;
    /// Cheap liveness probe for `/healthz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Tells every node sharing this store that `sn` has new tasks, so the node holding its
    /// connection pushes them (PostgreSQL: `NOTIFY` on [`TASK_CHANNEL`]; an embedded store has
    /// no other node to tell).
    async fn announce_tasks(&self, sn: &str) -> StoreResult<()>;

    // --- vendors and credentials -------------------------------------------------------
    async fn create_vendor(&self, vendor: &Vendor) -> StoreResult<()>;
    async fn vendor(&self, id: i64) -> StoreResult<Option<Vendor>>;
    async fn vendors(&self) -> StoreResult<Vec<Vendor>>;
    /// Any credential ever issued with this access id, current or revoked.
    async fn credential(&self, access_id: &str) -> StoreResult<Option<Credential>>;
    /// Revokes the vendor's current credentials and installs the new ones (one transaction).
    async fn rotate_credentials(&self, vendor_id: i64, new: &Credential) -> StoreResult<()>;

    // --- tokens --------------------------------------------------------------------------
    async fn insert_token(
        &self,
        token: &str,
        sn: &str,
        access_id: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// `(sn, access_id, last_used_at)` of a token.
    async fn token(&self, token: &str) -> StoreResult<Option<(String, String, i64)>>;
    /// Writes sliding-expiry touches behind, in one transaction.
    async fn touch_tokens(&self, touches: &[(String, i64)]) -> StoreResult<()>;

    // --- projects ------------------------------------------------------------------------
    async fn create_project(&self, project: &Project) -> StoreResult<()>;
    async fn project(&self, id: i64) -> StoreResult<Option<Project>>;
    async fn projects(&self) -> StoreResult<Vec<Project>>;

    // --- devices -------------------------------------------------------------------------
    /// Fails with `Conflict` if the sn is taken.
    async fn create_device(&self, device: &Device) -> StoreResult<()>;
    async fn device(&self, sn: &str) -> StoreResult<Option<Device>>;
    async fn devices(&self, project_id: Option<i64>) -> StoreResult<Vec<Device>>;
    /// Applies a patch and returns the device as it now is.
    async fn update_device(&self, sn: &str, patch: &DevicePatch) -> StoreResult<Device>;
    async fn set_device_counts(&self, sn: &str, persons: i64, faces: i64) -> StoreResult<()>;
    /// Heartbeat state and online/offline transitions, written behind in one transaction.
    async fn record_presence(
        &self,
        updates: &[PresenceUpdate],
        transitions: &[PresenceTransition],
    ) -> StoreResult<()>;
    /// A device's transitions, newest first.
    async fn presence_history(&self, sn: &str, limit: u32) -> StoreResult<Vec<PresenceTransition>>;

    // --- workers and rosters -------------------------------------------------------------
    /// Fails with `Conflict(person_id)` if the ID-card number is taken.
    async fn create_worker(&self, worker: &Worker) -> StoreResult<()>;
    async fn worker(&self, person_id: i64) -> StoreResult<Option<Worker>>;
    async fn worker_by_idcard(&self, idcard_no: &str) -> StoreResult<Option<Worker>>;
    /// The workers with these ids that exist, in id order.
    async fn workers_by_ids(&self, person_ids: &[i64]) -> StoreResult<Vec<Worker>>;
    async fn workers(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<Worker>>;
    /// Makes the workers active members of the project (re-activating exited ones).
    async fn add_project_workers(
        &self,
        project_id: i64,
        person_ids: &[i64],
        now: i64,
    ) -> StoreResult<()>;
    /// Marks a worker exited from the project. `false` if they were not active in it.
    async fn remove_project_worker(
        &self,
        project_id: i64,
        person_id: i64,
        now: i64,
    ) -> StoreResult<bool>;
    /// The project's roster: active, non-blacklisted workers, sorted by person id.
    async fn roster(&self, project_id: i64) -> StoreResult<Vec<i64>>;
    async fn on_roster(&self, project_id: i64, person_id: i64) -> StoreResult<bool>;

    // --- tasks ---------------------------------------------------------------------------
    /// Creates a task with its frozen person list; with `supersede`, cancels the device's
    /// older open person tasks in the same transaction.
    async fn create_task(&self, task: &NewTask) -> StoreResult<()>;
    /// If the device's newest person task is a pending T_UPDATE_DEVICE_PERSON, adds the
    /// persons to it and returns its id; else `None` (the caller creates a new task).
    async fn merge_into_pending_update(
        &self,
        sn: &str,
        person_ids: &[i64],
    ) -> StoreResult<Option<i64>>;
    async fn task(&self, taskid: i64) -> StoreResult<Option<Task>>;
    /// The device's tasks, newest first.
    async fn tasks_of_device(&self, sn: &str, limit: u32) -> StoreResult<Vec<Task>>;
    /// Pending tasks and tasks delivered before `redeliver_before`, oldest first.
    async fn due_tasks(
        &self,
        sn: &str,
        redeliver_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<Task>>;
    /// Marks open tasks delivered (compare-and-set on an open state); returns those changed.
    async fn mark_delivered(&self, taskids: &[i64], now: i64) -> StoreResult<Vec<i64>>;
    /// Finishes an open task (compare-and-set); `false` if it was not open.
    async fn finish_task(&self, taskid: i64, state: TaskState, now: i64) -> StoreResult<bool>;
    /// A page of a task's frozen person list and the list's length.
    async fn task_persons(
        &self,
        taskid: i64,
        offset: u32,
        limit: u32,
    ) -> StoreResult<(Vec<i64>, u32)>;
    /// Records which persons and faces a device accepted (per person and device).
    async fn record_sync(&self, report: &SyncReport) -> StoreResult<()>;
    async fn person_sync(&self, sn: &str) -> StoreResult<Vec<PersonSync>>;
    /// Failures reported for a task: (failedPersons, failedFaces).
    async fn task_failures(&self, taskid: i64)
    -> StoreResult<(Vec<SyncFailure>, Vec<SyncFailure>)>;
    /// Stores (replacing) one page of a T_POST_DEVICE_PERSON upload.
    async fn put_reconcile_page(&self, page: &ReconcilePage) -> StoreResult<()>;
    async fn reconcile_pages(&self, taskid: i64) -> StoreResult<Vec<ReconcilePage>>;
    /// Open tasks across all devices (the task backlog metric).
    async fn open_task_count(&self) -> StoreResult<i64>;

    // --- attendance ----------------------------------------------------------------------
    /// Inserts a batch in one transaction (group commit). A record whose key is already
    /// stored — or appears earlier in the batch — is a duplicate: nothing new is stored and
    /// the first record's id is returned.
    async fn insert_attendance(&self, batch: &[NewAttendance]) -> StoreResult<Vec<Inserted>>;
    async fn attendance(&self, query: &AttendanceQuery) -> StoreResult<Vec<Attendance>>;
    async fn attendance_record(&self, record_id: i64) -> StoreResult<Option<Attendance>>;
}

/// Opens the store a database URL names and applies its migrations:
/// `sqlite://path/to/rollcall.db` or `postgres://…`.
pub async fn connect(url: &str) -> StoreResult<sql::SqlStore> {
    sql::SqlStore::connect(url).await
}
