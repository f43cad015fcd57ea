//! Who is on which project's roster: memberships, teams (班组) and the blacklist.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;

use super::{Arg, SqlStore, col, constraint, insert_rows, unique};
use crate::store::console::*;
use crate::store::{RosterStore, StoreResult};

const MEMBER_COLUMNS: &str =
    "project_id, person_id, status, blacklisted, team_id, trade, joined_at, exited_at";

#[async_trait]
impl RosterStore for SqlStore {
    // --- memberships ---------------------------------------------------------------------

    async fn add_project_workers(
        &self,
        project_id: i64,
        person_ids: &[i64],
        now: i64,
    ) -> StoreResult<()> {
        let rows = unique(person_ids)
            .into_iter()
            .map(|id| {
                vec![
                    Arg::Int(Some(project_id)),
                    Arg::Int(Some(id)),
                    Arg::Text(Some("active".to_owned())),
                    Arg::Int(Some(now)),
                ]
            })
            .collect::<Vec<_>>();
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        insert_rows(
            tx.conn(),
            "INSERT INTO project_workers (project_id, person_id, status, joined_at)",
            // joined_at restarts when an exited worker comes back, and stays for an active one.
            "ON CONFLICT (project_id, person_id) DO UPDATE SET status = 'active', \
             exited_at = NULL, joined_at = CASE WHEN project_workers.status = 'active' \
             THEN project_workers.joined_at ELSE excluded.joined_at END",
            4,
            rows,
        )
        .await
        .map_err(|e| constraint(e, || format!("project {project_id} workers")))?;
        super::uplink::enqueue_joins(tx.conn(), project_id, now).await?;
        tx.commit().await
    }

    async fn remove_project_worker(
        &self,
        project_id: i64,
        person_id: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE project_workers SET status = 'exited', exited_at = $3 \
             WHERE project_id = $1 AND person_id = $2 AND status = 'active'",
        )
        .bind(project_id)
        .bind(person_id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if changed == 1 {
            super::uplink::enqueue_exit(tx.conn(), project_id, person_id, now).await?;
        }
        tx.commit().await?;
        Ok(changed == 1)
    }

    async fn roster(&self, project_id: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT person_id FROM project_workers \
             WHERE project_id = $1 AND status = 'active' AND blacklisted = 0 ORDER BY person_id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| col(row, "person_id")).collect()
    }

    async fn on_roster(&self, project_id: i64, person_id: i64) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT person_id FROM project_workers WHERE project_id = $1 AND person_id = $2 \
             AND status = 'active' AND blacklisted = 0",
        )
        .bind(project_id)
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    // --- teams and members ---------------------------------------------------------------

    async fn create_team(&self, t: &Team) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO teams (id, project_id, name, leader, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.id)
        .bind(t.project_id)
        .bind(t.name.clone())
        .bind(t.leader.clone())
        .bind(t.created_at)
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, || format!("team {}", t.name)))?;
        super::uplink::enqueue_team(tx.conn(), t.id, t.project_id, t.created_at).await?;
        tx.commit().await
    }

    async fn team(&self, id: i64) -> StoreResult<Option<Team>> {
        self.fetch_optional(
            sqlx::query("SELECT id, project_id, name, leader, created_at FROM teams WHERE id = $1")
                .bind(id),
        )
        .await
    }

    async fn teams(&self, project_id: i64) -> StoreResult<Vec<Team>> {
        self.fetch_all(
            sqlx::query(
                "SELECT id, project_id, name, leader, created_at FROM teams \
                 WHERE project_id = $1 ORDER BY id",
            )
            .bind(project_id),
        )
        .await
    }

    async fn members(&self, project_id: i64) -> StoreResult<Vec<Member>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {MEMBER_COLUMNS} FROM project_workers WHERE project_id = $1 \
                 ORDER BY person_id"
            )))
            .bind(project_id),
        )
        .await
    }

    async fn memberships(&self, person_id: i64) -> StoreResult<Vec<Member>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {MEMBER_COLUMNS} FROM project_workers WHERE person_id = $1 \
                 ORDER BY project_id"
            )))
            .bind(person_id),
        )
        .await
    }

    async fn set_member_details(
        &self,
        project_id: i64,
        person_id: i64,
        team_id: Option<i64>,
        trade: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE project_workers SET team_id = $1, trade = $2 \
             WHERE project_id = $3 AND person_id = $4",
        )
        .bind(team_id)
        .bind(trade.map(str::to_owned))
        .bind(project_id)
        .bind(person_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        // Items of this worker waiting for a team (or a trade) are due again at once.
        sqlx::query(
            "UPDATE uplink_outbox SET next_at = 0 WHERE project_id = $1 AND person_id = $2 \
             AND state = 'pending'",
        )
        .bind(project_id)
        .bind(person_id.to_string())
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    // --- blacklist -----------------------------------------------------------------------

    async fn blacklist_worker(&self, e: &BlacklistEntry) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO blacklist (person_id, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (person_id) DO UPDATE SET reason = excluded.reason",
        )
        .bind(e.person_id)
        .bind(e.reason.clone())
        .bind(e.created_by.clone())
        .bind(e.created_at)
        .execute(tx.conn())
        .await
        .map_err(|err| constraint(err, || format!("worker {}", e.person_id)))?;
        sqlx::query("UPDATE project_workers SET blacklisted = 1 WHERE person_id = $1")
            .bind(e.person_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    async fn unblacklist_worker(&self, person_id: i64) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let removed = sqlx::query("DELETE FROM blacklist WHERE person_id = $1")
            .bind(person_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        sqlx::query("UPDATE project_workers SET blacklisted = 0 WHERE person_id = $1")
            .bind(person_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(removed > 0)
    }

    async fn blacklist_entry(&self, person_id: i64) -> StoreResult<Option<BlacklistEntry>> {
        self.fetch_optional(
            sqlx::query(
                "SELECT person_id, reason, created_by, created_at FROM blacklist \
                 WHERE person_id = $1",
            )
            .bind(person_id),
        )
        .await
    }

    async fn blacklist(&self) -> StoreResult<Vec<BlacklistEntry>> {
        self.fetch_all(sqlx::query(
            "SELECT person_id, reason, created_by, created_at FROM blacklist \
             ORDER BY created_at DESC",
        ))
        .await
    }
}
