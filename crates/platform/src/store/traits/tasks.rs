//! [`TaskStore`]: tasks for devices, their person lists, sync reports and reconcile pages.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::model::*;

#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
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
    /// Marks a task delivered if it is still as the caller read it (`state`, `delivered_at`):
    /// a compare-and-set, so of two pushes of one task read alike only one claims it. The
    /// claim's mark ([`claim_mark`]), which [`Self::release_delivery`] takes; `None` when the
    /// task has changed since.
    async fn claim_delivery(
        &self,
        taskid: i64,
        state: TaskState,
        delivered_at: Option<i64>,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// Undoes the [`Self::claim_delivery`] that set `claimed` when its command could not be
    /// sent: the task is as it was read (`state`, `delivered_at`) again, unless it changed
    /// since the claim (another claim or delivery has a mark of its own).
    async fn release_delivery(
        &self,
        taskid: i64,
        state: TaskState,
        delivered_at: Option<i64>,
        claimed: i64,
    ) -> StoreResult<()>;
    /// Finishes an open task (compare-and-set); `false` if it was not open. The device's
    /// report about the task's persons, if any, is recorded in the same transaction, so
    /// whoever sees the task finished also sees its failures.
    async fn finish_task(
        &self,
        taskid: i64,
        state: TaskState,
        now: i64,
        sync: Option<&SyncReport>,
    ) -> StoreResult<bool>;
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
}

/// The `delivered_at` a claim at `now` sets on a task it read delivered at `delivered_at`:
/// `now`, or one past the delivery it replaces when the clock has not moved beyond it (the
/// same millisecond, or a clock set back). Each claim of a task thus marks it with a time no
/// earlier claim or delivery used, and a release finds only its own claim.
pub fn claim_mark(delivered_at: Option<i64>, now: i64) -> i64 {
    delivered_at.map_or(now, |d| now.max(d.saturating_add(1)))
}
