//! [`RosterStore`]: who is on which project's roster — memberships, teams (班组) and the
//! blacklist.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::console::*;

#[async_trait]
pub trait RosterStore: Send + Sync + 'static {
    // --- memberships ---------------------------------------------------------------------
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

    // --- teams and members ---------------------------------------------------------------
    /// Fails with `Conflict` if the project has a team of that name.
    async fn create_team(&self, team: &Team) -> StoreResult<()>;
    async fn team(&self, id: i64) -> StoreResult<Option<Team>>;
    async fn teams(&self, project_id: i64) -> StoreResult<Vec<Team>>;
    /// Every membership of the project (active and exited), by person id.
    async fn members(&self, project_id: i64) -> StoreResult<Vec<Member>>;
    /// Every membership of a worker.
    async fn memberships(&self, person_id: i64) -> StoreResult<Vec<Member>>;
    /// Sets the team and trade of an existing membership; `false` if there is none.
    async fn set_member_details(
        &self,
        project_id: i64,
        person_id: i64,
        team_id: Option<i64>,
        trade: Option<&str>,
    ) -> StoreResult<bool>;

    // --- blacklist -----------------------------------------------------------------------
    /// Lists the worker and takes them off every roster, in one transaction.
    async fn blacklist_worker(&self, entry: &BlacklistEntry) -> StoreResult<()>;
    /// `false` if the worker was not listed.
    async fn unblacklist_worker(&self, person_id: i64) -> StoreResult<bool>;
    async fn blacklist_entry(&self, person_id: i64) -> StoreResult<Option<BlacklistEntry>>;
    async fn blacklist(&self) -> StoreResult<Vec<BlacklistEntry>>;
}
