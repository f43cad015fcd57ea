//! Tasks, their frozen person lists, sync reports and reconcile pages.
//!
//! Which tasks are person tasks and which states are open are not decided here: the
//! statements that need them are built once ([`RULES`]) from [`ApiCode::is_person_task`] and
//! [`TaskState::is_open`], and whether a new task supersedes is decided by the caller
//! ([`NewTask::supersede`], from `services::tasks::supersedes`). Merging is the mechanism of
//! [`TaskStore::merge_into_pending_update`]: its target is a pending T_UPDATE_DEVICE_PERSON
//! by contract. This file only executes the rules.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use rollcall_protocol::ApiCode;
use sqlx::{AnyConnection, AssertSqlSafe};

use super::{
    Arg, MAX_PARAMS, SqlStore, bind_all, col, constraint, insert_rows, placeholders, unique,
};
use crate::store::model::*;
use crate::store::traits::claim_mark;
use crate::store::{StoreError, StoreResult, TaskStore};

/// The statements that depend on the task rules, built once from the rule functions (the
/// lists are identifiers, so they are spelled into the SQL as literals, exactly as a
/// hand-written statement would; values from requests are still always bound).
struct RuleStatements {
    /// `('pending', 'delivered')`, for `mark_delivered`'s dynamic statement.
    open_states: String,
    /// Supersede: cancels the device's open person tasks older than a new one.
    cancel_superseded: String,
    /// Compare-and-set from an open state to an outcome.
    finish_task: String,
    open_task_count: String,
    /// The device's newest person task, in any state.
    newest_person_task: String,
}

static RULES: LazyLock<RuleStatements> = LazyLock::new(|| {
    let open_states = sql_list(
        TaskState::ALL
            .iter()
            .filter(|s| s.is_open())
            .map(|s| s.as_str()),
    );
    let person_apicodes = sql_list(
        ApiCode::ALL
            .iter()
            .filter(|a| a.is_person_task())
            .map(|a| a.as_str()),
    );
    RuleStatements {
        cancel_superseded: format!(
            "UPDATE tasks SET state = 'cancelled', finished_at = $3 \
             WHERE sn = $1 AND taskid < $2 AND state IN {open_states} \
             AND apicode IN {person_apicodes}"
        ),
        finish_task: format!(
            "UPDATE tasks SET state = $2, finished_at = $3 WHERE taskid = $1 \
             AND state IN {open_states}"
        ),
        open_task_count: format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS open FROM tasks WHERE state IN {open_states}"
        ),
        newest_person_task: format!(
            "SELECT taskid, apicode, state FROM tasks WHERE sn = $1 \
             AND apicode IN {person_apicodes} ORDER BY taskid DESC LIMIT 1"
        ),
        open_states,
    }
});

/// `('a', 'b')`: an SQL list of fixed identifiers (enum names, never request data).
fn sql_list(items: impl Iterator<Item = &'static str>) -> String {
    let items: Vec<String> = items
        .map(|item| {
            assert!(
                item.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{item:?} is not an identifier"
            );
            format!("'{item}'")
        })
        .collect();
    format!("({})", items.join(", "))
}

#[async_trait]
impl TaskStore for SqlStore {
    // --- tasks ---------------------------------------------------------------------------

    // ZJ-TASK-06: with `supersede`, the older open person tasks are cancelled in the same
    // transaction.
    async fn create_task(&self, task: &NewTask) -> StoreResult<()> {
        let mut tx = self.write().await?;
        if task.supersede {
            sqlx::query(RULES.cancel_superseded.as_str())
                .bind(task.sn.clone())
                .bind(task.taskid)
                .bind(task.created_at)
                .execute(tx.conn())
                .await?;
        }
        sqlx::query(
            "INSERT INTO tasks (taskid, sn, apicode, param, state, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5)",
        )
        .bind(task.taskid)
        .bind(task.sn.clone())
        .bind(task.apicode.clone())
        .bind(task.param.clone())
        .bind(task.created_at)
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, || format!("task {}", task.taskid)))?;
        insert_task_persons(tx.conn(), task.taskid, &task.persons).await?;
        tx.commit().await
    }

    /// Read-then-write: on SQLite the whole transaction holds the write lock. On PostgreSQL
    /// (read committed) the pending task's row is locked by a no-op compare-and-set update
    /// (so a concurrent `mark_delivered` or supersede waits, and a task delivered meanwhile
    /// is not merged into), and after adding the persons the task is checked to still be the
    /// newest person task (a newer one committed meanwhile, e.g. a delete, rolls the merge
    /// back: a delete is never overtaken).
    // ZJ-TASK-05: the mechanism of merging; the rule is decided in `services::tasks`.
    async fn merge_into_pending_update(
        &self,
        sn: &str,
        person_ids: &[i64],
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.write().await?;
        let Some(taskid) = newest_person_task(tx.conn(), sn, true).await? else {
            return Ok(None);
        };
        let locked = sqlx::query(
            "UPDATE tasks SET state = 'pending' WHERE taskid = $1 AND state = 'pending'",
        )
        .bind(taskid)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if locked == 0 {
            return Ok(None);
        }
        insert_task_persons(tx.conn(), taskid, person_ids).await?;
        if newest_person_task(tx.conn(), sn, false).await? != Some(taskid) {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(taskid))
    }

    async fn task(&self, taskid: i64) -> StoreResult<Option<Task>> {
        self.fetch_optional(sqlx::query(select!(task, "FROM tasks WHERE taskid = $1")).bind(taskid))
            .await
    }

    async fn tasks_of_device(&self, sn: &str, limit: u32) -> StoreResult<Vec<Task>> {
        self.fetch_all(
            sqlx::query(select!(
                task,
                "FROM tasks WHERE sn = $1 ORDER BY taskid DESC LIMIT $2"
            ))
            .bind(sn)
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn due_tasks(
        &self,
        sn: &str,
        redeliver_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<Task>> {
        self.fetch_all(
            sqlx::query(select!(
                task,
                "FROM tasks WHERE sn = $1 AND (state = 'pending' \
                 OR (state = 'delivered' AND delivered_at < $2)) ORDER BY taskid LIMIT $3"
            ))
            .bind(sn)
            .bind(redeliver_before)
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn mark_delivered(&self, taskids: &[i64], now: i64) -> StoreResult<Vec<i64>> {
        let taskids = unique(taskids);
        if taskids.is_empty() {
            return Ok(Vec::new());
        }
        let mut changed = Vec::with_capacity(taskids.len());
        let mut tx = self.write().await?;
        for chunk in taskids.chunks(MAX_PARAMS) {
            let sql = format!(
                // Past any earlier mark, like a claim's (`claim_mark`), so a push's release
                // never takes back a delivery made in its millisecond.
                "UPDATE tasks SET state = 'delivered', delivered_at = CASE \
                 WHEN delivered_at IS NULL OR delivered_at < $1 THEN $1 \
                 ELSE delivered_at + 1 END WHERE state IN {} \
                 AND taskid IN ({}) RETURNING taskid",
                RULES.open_states,
                placeholders(2, chunk.len())
            );
            let mut args = vec![Arg::Int(Some(now))];
            args.extend(chunk.iter().map(|&id| Arg::Int(Some(id))));
            for row in bind_all(sqlx::query(AssertSqlSafe(sql)), args)
                .fetch_all(tx.conn())
                .await?
            {
                changed.push(col::<i64>(&row, "taskid")?);
            }
        }
        tx.commit().await?;
        changed.sort_unstable();
        Ok(changed)
    }

    async fn claim_delivery(
        &self,
        taskid: i64,
        state: TaskState,
        delivered_at: Option<i64>,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let mark = claim_mark(delivered_at, now);
        let claimed = self
            .execute(
                sqlx::query(
                    "UPDATE tasks SET state = 'delivered', delivered_at = $1 \
                     WHERE taskid = $2 AND state = $3 \
                     AND delivered_at IS NOT DISTINCT FROM CAST($4 AS BIGINT)",
                )
                .bind(mark)
                .bind(taskid)
                .bind(state.as_str())
                .bind(delivered_at),
            )
            .await?;
        Ok((claimed == 1).then_some(mark))
    }

    async fn release_delivery(
        &self,
        taskid: i64,
        state: TaskState,
        delivered_at: Option<i64>,
        claimed: i64,
    ) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "UPDATE tasks SET state = $1, delivered_at = CAST($2 AS BIGINT) \
                 WHERE taskid = $3 AND state = 'delivered' AND delivered_at = $4",
            )
            .bind(state.as_str())
            .bind(delivered_at)
            .bind(taskid)
            .bind(claimed),
        )
        .await?;
        Ok(())
    }

    async fn finish_task(
        &self,
        taskid: i64,
        state: TaskState,
        now: i64,
        sync: Option<&SyncReport>,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let changed = sqlx::query(RULES.finish_task.as_str())
            .bind(taskid)
            .bind(state.as_str())
            .bind(now)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if changed == 1 {
            if let Some(report) = sync {
                write_sync(tx.conn(), report).await?;
            }
            super::webhooks::enqueue(tx.conn(), "task", &[taskid.to_string()], now).await?;
        }
        tx.commit().await?;
        Ok(changed == 1)
    }

    async fn task_persons(
        &self,
        taskid: i64,
        offset: u32,
        limit: u32,
    ) -> StoreResult<(Vec<i64>, u32)> {
        let rows = sqlx::query(
            "SELECT person_id FROM task_persons WHERE taskid = $1 \
             ORDER BY person_id LIMIT $2 OFFSET $3",
        )
        .bind(taskid)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let persons = rows
            .iter()
            .map(|row| col(row, "person_id"))
            .collect::<StoreResult<Vec<i64>>>()?;
        let total = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS total FROM task_persons WHERE taskid = $1",
        )
        .bind(taskid)
        .fetch_one(&self.pool)
        .await?;
        let total = col::<i64>(&total, "total")?;
        let total = u32::try_from(total)
            .map_err(|_| StoreError::Corrupt(format!("task {taskid} has {total} persons")))?;
        Ok((persons, total))
    }

    async fn record_sync(&self, report: &SyncReport) -> StoreResult<()> {
        let mut tx = self.write().await?;
        write_sync(tx.conn(), report).await?;
        tx.commit().await
    }

    async fn person_sync(&self, sn: &str) -> StoreResult<Vec<PersonSync>> {
        self.fetch_all(
            sqlx::query(
                "SELECT person_id, person_ok, person_err, face_ok, face_err, updated_at \
                 FROM person_sync WHERE sn = $1 ORDER BY person_id",
            )
            .bind(sn),
        )
        .await
    }

    async fn task_failures(
        &self,
        taskid: i64,
    ) -> StoreResult<(Vec<SyncFailure>, Vec<SyncFailure>)> {
        let rows = sqlx::query(
            "SELECT kind, person_id, err_code FROM task_failures WHERE taskid = $1 \
             ORDER BY kind, person_id",
        )
        .bind(taskid)
        .fetch_all(&self.pool)
        .await?;
        let (mut persons, mut faces) = (Vec::new(), Vec::new());
        for row in &rows {
            let failure = SyncFailure {
                person_id: col(row, "person_id")?,
                err_code: col(row, "err_code")?,
            };
            match col::<String>(row, "kind")?.as_str() {
                "person" => persons.push(failure),
                "face" => faces.push(failure),
                other => {
                    return Err(StoreError::Corrupt(format!("task_failures.kind {other:?}")));
                }
            }
        }
        Ok((persons, faces))
    }

    async fn put_reconcile_page(&self, page: &ReconcilePage) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "INSERT INTO reconcile_pages (taskid, page, total_page, data) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (taskid, page) DO UPDATE \
                 SET total_page = excluded.total_page, data = excluded.data",
            )
            .bind(page.taskid)
            .bind(i64::from(page.page))
            .bind(i64::from(page.total_page))
            .bind(page.data.clone()),
        )
        .await
        .map_err(|e| constraint(e, || format!("task {}", page.taskid)))?;
        Ok(())
    }

    async fn reconcile_pages(&self, taskid: i64) -> StoreResult<Vec<ReconcilePage>> {
        self.fetch_all(
            sqlx::query(
                "SELECT taskid, page, total_page, data FROM reconcile_pages \
                 WHERE taskid = $1 ORDER BY page",
            )
            .bind(taskid),
        )
        .await
    }

    async fn open_task_count(&self) -> StoreResult<i64> {
        let row = sqlx::query(RULES.open_task_count.as_str())
            .fetch_one(&self.pool)
            .await?;
        col(&row, "open")
    }
}

async fn insert_task_persons(
    conn: &mut AnyConnection,
    taskid: i64,
    person_ids: &[i64],
) -> StoreResult<()> {
    let rows = unique(person_ids)
        .into_iter()
        .map(|id| vec![Arg::Int(Some(taskid)), Arg::Int(Some(id))])
        .collect();
    insert_rows(
        conn,
        "INSERT INTO task_persons (taskid, person_id)",
        "ON CONFLICT DO NOTHING",
        2,
        rows,
    )
    .await?;
    Ok(())
}

/// The device's newest person task (any state); with `mergeable`, only if it is a pending
/// T_UPDATE_DEVICE_PERSON.
async fn newest_person_task(
    conn: &mut AnyConnection,
    sn: &str,
    mergeable: bool,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(RULES.newest_person_task.as_str())
        .bind(sn)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let taskid: i64 = col(&row, "taskid")?;
    if mergeable
        && (col::<String>(&row, "apicode")? != ApiCode::UpdateDevicePerson.as_str()
            || col::<String>(&row, "state")? != TaskState::Pending.as_str())
    {
        return Ok(None);
    }
    Ok(Some(taskid))
}

/// A person of the task is accepted unless listed in failedPersons; their face is accepted
/// unless the person was refused or the face is listed in failedFaces. A report replaces
/// the failures recorded earlier for the same task.
async fn write_sync(conn: &mut AnyConnection, report: &SyncReport) -> StoreResult<()> {
    let failed = |list: &[SyncFailure]| -> HashMap<i64, String> {
        list.iter()
            .filter_map(|f| Some((f.person_id.trim().parse().ok()?, f.err_code.clone())))
            .collect()
    };
    let (failed_persons, failed_faces) =
        (failed(&report.failed_persons), failed(&report.failed_faces));
    let sync_rows = unique(&report.persons)
        .into_iter()
        .map(|id| {
            let person_err = failed_persons.get(&id).cloned();
            let face_err = failed_faces.get(&id).cloned();
            let person_ok = person_err.is_none();
            let face_ok = person_ok && face_err.is_none();
            vec![
                Arg::Text(Some(report.sn.clone())),
                Arg::Int(Some(id)),
                Arg::Int(Some(i64::from(person_ok))),
                Arg::Text(person_err),
                Arg::Int(Some(i64::from(face_ok))),
                Arg::Text(face_err),
                Arg::Int(Some(report.at)),
            ]
        })
        .collect();
    let failure_rows = [
        ("person", &report.failed_persons),
        ("face", &report.failed_faces),
    ]
    .into_iter()
    .flat_map(|(kind, list)| {
        list.iter().map(move |f| {
            vec![
                Arg::Int(Some(report.taskid)),
                Arg::Text(Some(kind.to_owned())),
                Arg::Text(Some(f.person_id.clone())),
                Arg::Text(Some(f.err_code.clone())),
            ]
        })
    })
    .collect();

    insert_rows(
        &mut *conn,
        "INSERT INTO person_sync \
         (sn, person_id, person_ok, person_err, face_ok, face_err, updated_at)",
        "ON CONFLICT (sn, person_id) DO UPDATE SET person_ok = excluded.person_ok, \
         person_err = excluded.person_err, face_ok = excluded.face_ok, \
         face_err = excluded.face_err, updated_at = excluded.updated_at",
        7,
        sync_rows,
    )
    .await?;
    sqlx::query("DELETE FROM task_failures WHERE taskid = $1")
        .bind(report.taskid)
        .execute(&mut *conn)
        .await?;
    insert_rows(
        &mut *conn,
        "INSERT INTO task_failures (taskid, kind, person_id, err_code)",
        "ON CONFLICT DO NOTHING",
        4,
        failure_rows,
    )
    .await
    .map_err(|e| constraint(e, || format!("task {}", report.taskid)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule lists spell what the statements spelled by hand before they were derived.
    #[test]
    fn rule_lists_are_the_person_apicodes_and_open_states() {
        assert_eq!(RULES.open_states, "('pending', 'delivered')");
        assert!(RULES.newest_person_task.contains(
            "apicode IN ('T_SEND_PERSON', 'T_UPDATE_DEVICE_PERSON', 'T_DEL_DEVICE_PERSON', \
             'T_CLEAR_DEVICE_PERSON')"
        ));
    }
}
