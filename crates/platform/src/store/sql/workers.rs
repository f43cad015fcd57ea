//! Workers (one row per person, keyed by ID-card number).

use async_trait::async_trait;
use sqlx::AssertSqlSafe;

use super::{Arg, MAX_PARAMS, SqlStore, bind_all, col, placeholders, unique};
use crate::store::model::*;
use crate::store::{StoreError, StoreResult, WorkerStore};

/// The worker columns, qualified for a query over `workers w`.
const WORKER_COLUMNS_W: &str = "w.person_id, w.idcard_no, w.name, w.gender, w.nation, w.address, \
     w.phone, w.face_key, w.created_at, w.updated_at";

#[async_trait]
impl WorkerStore for SqlStore {
    async fn create_worker(&self, worker: &Worker) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let inserted = {
            sqlx::query(concat!(
                "INSERT INTO workers (",
                columns!(worker),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT DO NOTHING RETURNING person_id"
            ))
            .bind(worker.person_id)
            .bind(worker.idcard_no.clone())
            .bind(worker.name.clone())
            .bind(worker.gender.clone())
            .bind(worker.nation.clone())
            .bind(worker.address.clone())
            .bind(worker.phone.clone())
            .bind(worker.face_key.clone())
            .bind(worker.created_at)
            .bind(worker.updated_at)
            .fetch_optional(tx.conn())
            .await?
        };
        if inserted.is_some() {
            let person = [worker.person_id.to_string()];
            super::webhooks::enqueue(tx.conn(), "worker", &person, worker.created_at).await?;
            return tx.commit().await;
        }
        drop(tx);
        // Either the ID-card number or the person id is taken: name the existing worker.
        let existing = sqlx::query("SELECT person_id FROM workers WHERE idcard_no = $1")
            .bind(worker.idcard_no.clone())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| col::<i64>(&row, "person_id"))
            .transpose()?;
        Err(StoreError::Conflict(
            existing.unwrap_or(worker.person_id).to_string(),
        ))
    }

    async fn worker(&self, person_id: i64) -> StoreResult<Option<Worker>> {
        self.fetch_optional(
            sqlx::query(select!(worker, "FROM workers WHERE person_id = $1")).bind(person_id),
        )
        .await
    }

    async fn worker_by_idcard(&self, idcard_no: &str) -> StoreResult<Option<Worker>> {
        self.fetch_optional(
            sqlx::query(select!(worker, "FROM workers WHERE idcard_no = $1")).bind(idcard_no),
        )
        .await
    }

    async fn workers_by_ids(&self, person_ids: &[i64]) -> StoreResult<Vec<Worker>> {
        let mut workers = Vec::with_capacity(person_ids.len());
        // Chunks of sorted ids come back in id order, so the concatenation is sorted too.
        for chunk in unique(person_ids).chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT {} FROM workers WHERE person_id IN ({}) ORDER BY person_id",
                columns!(worker),
                placeholders(1, chunk.len())
            );
            let args = chunk.iter().map(|&id| Arg::Int(Some(id))).collect();
            workers.extend(
                self.fetch_all::<Worker>(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
                    .await?,
            );
        }
        Ok(workers)
    }

    async fn workers(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<Worker>> {
        self.fetch_all(
            sqlx::query(select!(
                worker,
                "FROM workers WHERE person_id > $1 ORDER BY person_id LIMIT $2"
            ))
            .bind(after.unwrap_or(i64::MIN))
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn workers_in_projects(
        &self,
        project_ids: &[i64],
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Worker>> {
        let ids = unique(project_ids);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM workers w WHERE w.person_id > $1 AND EXISTS (SELECT 1 FROM \
             project_workers pw WHERE pw.person_id = w.person_id AND pw.project_id IN ({})) \
             ORDER BY w.person_id LIMIT {}",
            WORKER_COLUMNS_W,
            placeholders(2, ids.len()),
            limit.clamp(1, 1000)
        );
        let mut args = vec![Arg::Int(Some(after.unwrap_or(i64::MIN)))];
        args.extend(ids.into_iter().map(|id| Arg::Int(Some(id))));
        self.fetch_all(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
            .await
    }

    async fn update_worker(
        &self,
        person_id: i64,
        patch: &WorkerPatch,
    ) -> StoreResult<Option<Worker>> {
        let mut tx = self.write().await?;
        patch_worker(tx.conn(), person_id, patch).await?;
        tx.commit().await?;
        self.worker(person_id).await
    }
}

/// Applies a patch inside a transaction, with the worker's webhook event; `false` if there
/// is no such worker.
pub(super) async fn patch_worker(
    conn: &mut sqlx::AnyConnection,
    person_id: i64,
    patch: &WorkerPatch,
) -> StoreResult<bool> {
    let changed = sqlx::query(
        "UPDATE workers SET name = COALESCE($2, name), nation = COALESCE($3, nation), \
         address = COALESCE($4, address), phone = COALESCE($5, phone), \
         updated_at = $6 WHERE person_id = $1",
    )
    .bind(person_id)
    .bind(patch.name.clone())
    .bind(patch.nation.clone())
    .bind(patch.address.clone())
    .bind(patch.phone.clone())
    .bind(patch.updated_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 1 {
        let person = [person_id.to_string()];
        super::webhooks::enqueue(conn, "worker", &person, patch.updated_at).await?;
    }
    Ok(changed == 1)
}
