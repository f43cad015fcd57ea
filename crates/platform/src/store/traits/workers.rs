//! [`WorkerStore`]: workers, one per person.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::model::*;

#[async_trait]
pub trait WorkerStore: Send + Sync + 'static {
    // --- workers ---------------------------------------------------------------------------
    /// Fails with `Conflict(person_id)` if the ID-card number is taken.
    async fn create_worker(&self, worker: &Worker) -> StoreResult<()>;
    async fn worker(&self, person_id: i64) -> StoreResult<Option<Worker>>;
    async fn worker_by_idcard(&self, idcard_no: &str) -> StoreResult<Option<Worker>>;
    /// The workers with these ids that exist, in id order.
    async fn workers_by_ids(&self, person_ids: &[i64]) -> StoreResult<Vec<Worker>>;
    async fn workers(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<Worker>>;

    /// Workers who are (or were) members of any of the projects, in person-id order.
    async fn workers_in_projects(
        &self,
        project_ids: &[i64],
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Worker>>;

    /// Applies a patch; the worker as it now is, or `None` if there is no such worker.
    async fn update_worker(
        &self,
        person_id: i64,
        patch: &WorkerPatch,
    ) -> StoreResult<Option<Worker>>;
}
