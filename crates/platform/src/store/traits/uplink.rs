//! [`UplinkStore`]: per-project uplink settings, the uplink outbox and its sender lease
//! (docs/UPLINK.md). What is queued is written by the other aggregates' own transactions
//! (a team, a membership, an attendance record); this trait reads and moves the queue.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::model::*;

#[async_trait]
pub trait UplinkStore: Send + Sync + 'static {
    // --- settings ------------------------------------------------------------------------
    /// Creates or replaces a project's settings (the secret sealed). Enabling a project for
    /// the first time queues what it already has — its teams, its active workers (worker
    /// and entry) and attendance recorded from `backfill_from` on — in the same transaction.
    async fn put_uplink_config(&self, config: &UplinkConfig, backfill_from: i64)
    -> StoreResult<()>;
    async fn uplink_config(&self, project_id: i64) -> StoreResult<Option<UplinkConfig>>;
    /// Every enabled project's settings.
    async fn enabled_uplinks(&self) -> StoreResult<Vec<UplinkConfig>>;
    /// Takes or renews the project's sender lease for `owner` until `until`; `false` when
    /// another owner holds an unexpired one.
    async fn take_uplink_lease(
        &self,
        project_id: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool>;
    /// Records a request-level result: `Ok(at)` resets the backoff and sets
    /// `last_success_at`; `Err((message, retry_at))` counts a failure and waits.
    async fn record_uplink_attempt(
        &self,
        project_id: i64,
        result: Result<i64, (String, i64)>,
    ) -> StoreResult<()>;

    // --- the outbox ----------------------------------------------------------------------
    /// Items sending or sent (a request's answer or result not recorded yet), in queue order.
    async fn uplink_in_flight(&self, project_id: i64) -> StoreResult<Vec<UplinkItem>>;
    /// Pending items due at `now`, in queue order.
    async fn uplink_due(
        &self,
        project_id: i64,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<UplinkItem>>;
    /// Marks pending items as carried by `request` (committed before the request is sent).
    async fn uplink_mark_sending(&self, ids: &[i64], request: &str, now: i64) -> StoreResult<()>;
    /// Marks the items of `request` taken, awaiting the async result `serial`.
    async fn uplink_mark_sent(&self, ids: &[i64], request: &str, serial: &str) -> StoreResult<()>;
    /// Ends (or requeues) items that are not accepted yet, and — for an accepted team —
    /// records its `teamSysNo`, in one transaction.
    async fn uplink_settle(
        &self,
        ids: &[i64],
        outcome: &UplinkOutcome,
        now: i64,
        team_sys_no: Option<(i64, i64)>,
    ) -> StoreResult<()>;
    async fn uplink_team_sys_no(&self, team_id: i64) -> StoreResult<Option<i64>>;
    /// A project's items, newest first, optionally of one state.
    async fn uplink_items(
        &self,
        project_id: i64,
        state: Option<UplinkState>,
        before_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<UplinkItem>>;
    /// The items reporting one thing (an attendance record, a team, a person).
    async fn uplink_items_of(&self, kind: UplinkKind, ref_id: i64) -> StoreResult<Vec<UplinkItem>>;
    /// Queue counts; `day` is `[from, to)` of record times for `today_*`.
    async fn uplink_stats(&self, project_id: i64, day: (i64, i64)) -> StoreResult<UplinkStats>;
    /// Requeues the project's refused items (after the operator fixed the data); how many.
    async fn uplink_requeue_refused(&self, project_id: i64, now: i64) -> StoreResult<u64>;
    /// Makes a person's waiting items due now (their data changed).
    async fn uplink_wake_person(&self, person_id: i64) -> StoreResult<()>;

    // --- worker data and dictionaries --------------------------------------------------
    async fn worker_national(&self, person_id: i64) -> StoreResult<Option<WorkerNational>>;
    /// The national data of those of `person_ids` who have some.
    async fn worker_nationals(&self, person_ids: &[i64]) -> StoreResult<Vec<WorkerNational>>;
    /// Replaces a worker's national data and makes their waiting uplink items due, in one
    /// transaction.
    async fn put_worker_national(&self, data: &WorkerNational) -> StoreResult<()>;
    /// A worker edit: their own fields and their national data in one transaction (a sender
    /// that sees the new national data sees the new worker too); `None` if no such worker.
    async fn edit_worker(
        &self,
        person_id: i64,
        patch: &WorkerPatch,
        data: &WorkerNational,
    ) -> StoreResult<Option<Worker>>;
    /// The operator's dictionary entries (the built-in ones are in `uplink::dictionaries`).
    async fn dictionary_entries(&self) -> StoreResult<Vec<DictionaryEntry>>;
    async fn put_dictionary_entry(&self, entry: &DictionaryEntry) -> StoreResult<()>;
}
