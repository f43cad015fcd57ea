//! Attendance records: the group commit of sign-ins and queries over them.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Arguments as _, AssertSqlSafe};

use super::{
    Arg, Backend, MAX_ATTENDANCE_PAGE, SqlStore, bind_all, col, person_index, values_list,
};
use crate::store::model::*;
use crate::store::{AttendanceStore, StoreError, StoreResult};

#[async_trait]
impl AttendanceStore for SqlStore {
    // --- attendance ----------------------------------------------------------------------

    /// Records are inserted in key order (stable, so the first of equal keys in the batch
    /// wins): concurrent batches with overlapping keys then lock them in the same order and
    /// cannot deadlock on PostgreSQL. A key already stored by a concurrent transaction is
    /// waited for by `ON CONFLICT DO NOTHING` and then found by the follow-up select.
    ///
    /// A statement that inserted all its rows needs nothing more; after one that did not (a
    /// resend among them) each of its records is looked up by key: the record stored there is
    /// this one if it carries this record's id. No `RETURNING`: on PostgreSQL the rows would
    /// come back for every record, where a lookup is needed only after a resend. SQLite's
    /// group commit runs on a thread of its own ([`super::group_writer`]), PostgreSQL's here
    /// ([`SqlStore::commit_postgres`]); both queue the new records, in the same transaction,
    /// for the uplink (docs/UPLINK.md), the webhooks and the per-person index.
    async fn insert_attendance(&self, batch: Vec<NewAttendance>) -> StoreResult<Vec<Inserted>> {
        let key = attendance_key;
        // Key order avoids deadlocks between concurrent batches on PostgreSQL; among records
        // of one key, the earliest arrival (smallest record id) is the one stored.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| (key(&batch[i]), batch[i].record_id));
        // The first record of each key (equal keys are adjacent once sorted), and the others
        // paired with their first.
        let mut firsts: Vec<usize> = Vec::with_capacity(batch.len());
        let mut copies: Vec<(usize, usize)> = Vec::new();
        for i in order {
            match firsts.last() {
                Some(&f) if key(&batch[f]) == key(&batch[i]) => copies.push((i, f)),
                _ => firsts.push(i),
            }
        }

        let (mut results, stored) = match self.backend {
            Backend::Sqlite => {
                let writer = self.group_writer.as_ref().ok_or_else(|| {
                    StoreError::WriterStopped("this store was opened without it".into())
                })?;
                let slot = Arc::clone(&self.writer).lock_owned().await;
                let committed = writer.commit(batch, firsts, slot).await?;
                (committed.results, committed.stored)
            }
            Backend::Postgres => {
                let mut results: Vec<Option<Inserted>> = vec![None; batch.len()];
                let stored = self.commit_postgres(&batch, &firsts, &mut results).await?;
                (results, stored)
            }
        };
        if stored > 0 && self.person_index.add(stored) {
            self.move_person_queue().await;
        }
        for (copy, first) in copies {
            let record_id = results[first]
                .as_ref()
                .map(|r| r.record_id)
                .ok_or_else(|| StoreError::Corrupt("attendance batch result missing".into()))?;
            results[copy] = Some(Inserted {
                record_id,
                duplicate: true,
            });
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| StoreError::Corrupt("attendance batch result missing".into())))
            .collect()
    }

    /// Filters combine with AND; `from` is inclusive and `to` exclusive (record time).
    async fn attendance(&self, query: &AttendanceQuery) -> StoreResult<Vec<Attendance>> {
        let mut filters = Vec::new();
        let mut args = Vec::new();
        // Each filter binds one value and names it by its placeholder's number.
        let mut filter = |arg: Arg, condition: &dyn Fn(usize) -> String| {
            args.push(arg);
            filters.push(condition(args.len()));
        };
        if let Some(project_id) = query.project_id {
            filter(Arg::Int(Some(project_id)), &|n| {
                format!("project_id = ${n}")
            });
        }
        if let Some(person_id) = &query.person_id {
            filter(Arg::Text(Some(person_id.clone())), &person_index::condition);
        }
        if let Some(sn) = &query.sn {
            filter(Arg::Text(Some(sn.clone())), &|n| format!("sn = ${n}"));
        }
        if let Some(from) = query.from {
            filter(Arg::Int(Some(from)), &|n| format!("record_time >= ${n}"));
        }
        if let Some(to) = query.to {
            filter(Arg::Int(Some(to)), &|n| format!("record_time < ${n}"));
        }
        if let Some(cursor) = query.before_record_id {
            filter(Arg::Int(Some(cursor)), &|n| format!("record_id < ${n}"));
        }
        args.push(Arg::Int(Some(i64::from(
            query.limit.clamp(1, MAX_ATTENDANCE_PAGE),
        ))));
        let sql = format!(
            "SELECT {} FROM attendance {} ORDER BY record_id DESC LIMIT ${}",
            columns!(attendance),
            if filters.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", filters.join(" AND "))
            },
            args.len()
        );
        self.fetch_all(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
            .await
    }

    async fn attendance_record(&self, record_id: i64) -> StoreResult<Option<Attendance>> {
        self.fetch_optional(
            sqlx::query(select!(attendance, "FROM attendance WHERE record_id = $1"))
                .bind(record_id),
        )
        .await
    }
}

/// Attendance flags are identifiers (`unknown_person`, …); stored comma-joined.
pub(super) fn join_flags(flags: &[String]) -> String {
    flags.join(",")
}

/// Binds one attendance record in `columns!(attendance)` order.
fn bind_attendance<'q>(
    query: Query<'q, Any, AnyArguments>,
    r: &NewAttendance,
) -> Query<'q, Any, AnyArguments> {
    let query = query
        .bind(r.record_id)
        .bind(r.sn.clone())
        .bind(r.person_id.clone())
        .bind(i64::from(r.r#type))
        .bind(r.bit_type.map(i64::from))
        .bind(r.record_time)
        .bind(r.received_at)
        .bind(r.project_id)
        .bind(r.direction.as_str())
        .bind(r.photo_key.clone())
        .bind(join_flags(&r.flags));
    // sqlx 0.9.0's Any driver types a NULL `f64` as a 4-byte float for PostgreSQL; a later
    // non-null 8-byte value through the same prepared statement is then refused ("incorrect
    // binary data format"), failing the whole group commit (sqlx issue #4284). A NULL bound
    // as `f32` is typed so that both agree; values are still bound as `f64`.
    let query = match r.temperature {
        Some(t) => query.bind(t),
        None => query.bind(None::<f32>),
    };
    query.bind(r.extra.clone())
}

/// The idempotency key of an attendance record.
type AttendanceKey<'a> = (&'a str, &'a str, i64, u32);

fn attendance_key(r: &NewAttendance) -> AttendanceKey<'_> {
    (&r.sn, &r.person_id, r.record_time, r.r#type)
}

/// The record id stored under a record's key (`$1`–`$4`: sn, person id, record time, type).
pub(super) const STORED_UNDER_KEY: &str = "SELECT record_id FROM attendance \
     WHERE sn = $1 AND person_id = $2 AND record_time = $3 AND record_type = $4";

/// `record`'s outcome from the record id stored under its key after its insert: `record`
/// itself if it carries its id, otherwise an earlier one, of which `record` is a duplicate.
pub(super) fn outcome_under_key(
    record: &NewAttendance,
    stored: Option<i64>,
) -> StoreResult<Inserted> {
    match stored {
        Some(record_id) => Ok(Inserted {
            record_id,
            duplicate: record_id != record.record_id,
        }),
        // Nothing under this key, so the record id itself was taken by another record.
        None => Err(StoreError::Conflict(format!(
            "attendance record id {}",
            record.record_id
        ))),
    }
}

/// [`outcome_under_key`], looked up through sqlx (PostgreSQL).
async fn stored_attendance(
    conn: &mut AnyConnection,
    record: &NewAttendance,
) -> StoreResult<Inserted> {
    let existing = sqlx::query(STORED_UNDER_KEY)
        .bind(record.sn.clone())
        .bind(record.person_id.clone())
        .bind(record.record_time)
        .bind(i64::from(record.r#type))
        .fetch_optional(&mut *conn)
        .await?;
    let stored = existing
        .map(|row| col::<i64>(&row, "record_id"))
        .transpose()?;
    outcome_under_key(record, stored)
}

impl SqlStore {
    /// PostgreSQL's group commit: multi-row `INSERT … ON CONFLICT DO NOTHING` statements (256
    /// rows at most, smaller ones in powers of two so a handful of statement shapes stay
    /// prepared) in one transaction, then the new records' queues. Returns how many records
    /// it stored; `results` gets each of `firsts`' outcome.
    async fn commit_postgres(
        &self,
        batch: &[NewAttendance],
        firsts: &[usize],
        results: &mut [Option<Inserted>],
    ) -> StoreResult<usize> {
        /// Rows per statement: 256 × 13 bound values, far below PostgreSQL's limit of 65,535.
        const ROWS: usize = 256;
        let mut stored: Vec<i64> = Vec::with_capacity(firsts.len());
        let mut tx = self.write().await?;
        let mut rest = firsts;
        while !rest.is_empty() {
            let n = if rest.len() >= ROWS {
                ROWS
            } else {
                1 << rest.len().ilog2()
            };
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let sql = format!(
                "INSERT INTO attendance ({}) VALUES {} ON CONFLICT DO NOTHING",
                columns!(attendance),
                values_list(false, n, 13)
            );
            // Sized for every value up front: grown by doubling, the list of a 256-row
            // statement was a dozen ever larger reallocations per group commit.
            let mut args = AnyArguments::default();
            args.reserve(n * 13, 0);
            let mut query = sqlx::query_with(AssertSqlSafe(sql), args);
            for &i in chunk {
                query = bind_attendance(query, &batch[i]);
            }
            let all_new = query.execute(tx.conn()).await?.rows_affected() == n as u64;
            outcomes(tx.conn(), batch, chunk, all_new, results, &mut stored).await?;
        }
        if !stored.is_empty() {
            stored.sort_unstable();
            let now = latest_arrival(batch);
            let conn = tx.conn();
            if batch.iter().any(|r| r.project_id.is_some()) {
                super::uplink::enqueue_attendance(conn, self.backend, &stored, now).await?;
            }
            super::webhooks::enqueue_attendance(conn, self.backend, &stored, now).await?;
            person_index::queue(conn, self.backend, &stored).await?;
        }
        tx.commit().await?;
        Ok(stored.len())
    }
}

/// Each of `records`' outcome into `results`, and the ids of those stored into `stored`: when
/// their statement stored all of them (`all_new`) each is new, otherwise each is looked up by
/// its key.
async fn outcomes(
    conn: &mut AnyConnection,
    batch: &[NewAttendance],
    records: &[usize],
    all_new: bool,
    results: &mut [Option<Inserted>],
    stored: &mut Vec<i64>,
) -> StoreResult<()> {
    for &i in records {
        let record = &batch[i];
        let result = if all_new {
            Inserted {
                record_id: record.record_id,
                duplicate: false,
            }
        } else {
            stored_attendance(conn, record).await?
        };
        if !result.duplicate {
            stored.push(record.record_id);
        }
        results[i] = Some(result);
    }
    Ok(())
}

/// The batch's latest arrival: the time its queued items are made at.
pub(super) fn latest_arrival(batch: &[NewAttendance]) -> i64 {
    batch
        .iter()
        .map(|r| r.received_at)
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::sql::sqlite_at_version;
    use crate::store::test_db::TestDb;

    /// A record of device SN1 without a project, photo or extras.
    pub(in crate::store::sql) fn record(
        record_id: i64,
        person_id: &str,
        record_time: i64,
    ) -> NewAttendance {
        NewAttendance {
            record_id,
            sn: "SN1".into(),
            person_id: person_id.into(),
            r#type: 1,
            bit_type: None,
            record_time,
            received_at: record_time + 5,
            project_id: None,
            direction: Direction::In,
            photo_key: None,
            flags: Vec::new(),
            temperature: None,
            extra: None,
        }
    }

    /// A group commit queues each of its new records once for the national platform (when
    /// its project reports) and for every endpoint subscribed to attendance, in one statement
    /// whatever the batch's size; a resent record queues nothing again.
    #[tokio::test]
    async fn a_group_commit_queues_each_new_record_for_uplink_and_webhooks() {
        use crate::store::{DeviceStore, UplinkStore, WebhookStore};
        let dir = tempfile::tempdir().unwrap();
        let store = TestDb::new("queues", dir.path()).open().await.unwrap();
        for id in [42, 43] {
            store
                .create_project(&Project {
                    id,
                    name: format!("p{id}"),
                    code: None,
                    address: None,
                    coordinate_system: Default::default(),
                    fence: None,
                    created_at: 1,
                })
                .await
                .unwrap();
        }
        store
            .put_uplink_config(&crate::store::sql::uplink::tests::config(42, true), 0)
            .await
            .unwrap();
        let endpoint = WebhookEndpoint {
            id: 900,
            url: "http://127.0.0.1:9/hook".into(),
            secret: rollcall_protocol::ids::Secret::new("0123456789abcdef"),
            events: vec!["attendance".into()],
            enabled: true,
            created_at: 1,
            failures: 0,
            retry_at: 0,
        };
        store.create_webhook(&endpoint).await.unwrap();

        // Five records of the reporting project, two of a project that does not report.
        let in_project = |id: i64, project: i64| NewAttendance {
            project_id: Some(project),
            ..record(id, &(100 + id).to_string(), 1_000 + id)
        };
        let batch: Vec<NewAttendance> = (1..=5)
            .map(|id| in_project(id, 42))
            .chain((6..=7).map(|id| in_project(id, 43)))
            .collect();
        let got = store.insert_attendance(batch.clone()).await.unwrap();
        assert!(got.iter().all(|i| !i.duplicate), "{got:?}");
        // The same records resent under new ids, with one new record among them.
        let resent: Vec<NewAttendance> = (1..=5)
            .map(|id| NewAttendance {
                record_id: id + 100,
                ..in_project(id, 42)
            })
            .chain([in_project(8, 42)])
            .collect();
        let again = store.insert_attendance(resent.clone()).await.unwrap();
        assert_eq!(again.iter().filter(|i| i.duplicate).count(), 5, "{again:?}");

        for id in 1..=8 {
            let items = store
                .uplink_items_of(UplinkKind::Attendance, id)
                .await
                .unwrap();
            let reports = id <= 5 || id == 8;
            assert_eq!(items.len(), usize::from(reports), "record {id}: {items:?}");
        }
        let mut refs: Vec<String> = store
            .webhook_deliveries(endpoint.id, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|d| {
                assert_eq!(d.event, "attendance");
                d.r#ref
            })
            .collect();
        refs.sort();
        let expected: Vec<String> = (1..=8).map(|id| id.to_string()).collect();
        assert_eq!(refs, expected);
    }

    /// Batches of every shape store exactly their records: SQLite pads its statements with
    /// rows of NULLs up to a multiple of 32 and splits them at 256, PostgreSQL splits them in
    /// powers of two. A resent record and a copy inside the batch are answered as duplicates.
    #[tokio::test]
    async fn a_batch_of_any_size_stores_exactly_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = TestDb::new("shapes", dir.path()).open().await.unwrap();
        let mut next_id = 1;
        let mut stored = 0;
        for size in [1_usize, 31, 32, 33, 256, 257, 300] {
            let mut batch: Vec<NewAttendance> = (0..size)
                .map(|i| {
                    next_id += 1;
                    record(next_id, &format!("p{size}-{i}"), 1_000 + i as i64)
                })
                .collect();
            // A copy of this batch's first record, and a resend of the previous batch's last.
            next_id += 1;
            batch.push(NewAttendance {
                record_id: next_id,
                ..batch[0].clone()
            });
            next_id += 1;
            batch.push(record(next_id, "p1-0", 1_000));
            let got = store.insert_attendance(batch.clone()).await.unwrap();
            let new = got.iter().filter(|i| !i.duplicate).count();
            assert_eq!(new, size, "batch of {size}: {got:?}");
            assert_eq!(got[size].record_id, batch[0].record_id);
            assert!(got[size].duplicate && got[size + 1].duplicate);
            stored += size;
            let rows: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM attendance")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(rows, stored as i64, "after the batch of {size}");
            let last = &batch[size - 1];
            let back = store.attendance_record(last.record_id).await.unwrap();
            assert_eq!(back.as_ref(), Some(last));
        }
    }

    /// On SQLite, when a statement of a group commit fails after the insert, nothing of the
    /// batch is stored and the writer thread's connection is not left inside the transaction,
    /// so the same batch, sent again, is stored whole and as new.
    #[tokio::test]
    async fn a_failed_group_commit_stores_nothing_and_leaves_the_writer_usable() {
        let dir = tempfile::tempdir().unwrap();
        let store = TestDb::sqlite(dir.path()).open().await.unwrap();
        // The per-person queue's statement, the group commit's last, now fails.
        let refuse = "CREATE TRIGGER refuse BEFORE INSERT ON attendance_to_index \
                      BEGIN SELECT RAISE(ABORT, 'refused by the test'); END";
        sqlx::query(refuse).execute(&store.writes).await.unwrap();
        let batch = vec![record(1, "41", 1_000), record(2, "42", 1_000)];
        let err = store.insert_attendance(batch.clone()).await.unwrap_err();
        assert!(err.to_string().contains("refused by the test"), "{err}");
        let rows: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM attendance")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);

        sqlx::query("DROP TRIGGER refuse")
            .execute(&store.writes)
            .await
            .unwrap();
        let got = store.insert_attendance(batch.clone()).await.unwrap();
        assert!(got.iter().all(|i| !i.duplicate), "{got:?}");
        assert_eq!(
            store.attendance_record(2).await.unwrap().as_ref(),
            Some(&batch[1])
        );
    }

    /// A caller that stops waiting for its group commit (its future dropped once the batch
    /// is handed over) loses nothing: the writer thread still commits the whole batch, sqlx's
    /// writer connection writes after it, and a resend of the batch is known as one.
    #[tokio::test]
    async fn a_group_commit_whose_caller_stops_waiting_still_commits() {
        use crate::store::DeviceStore as _;
        let dir = tempfile::tempdir().unwrap();
        let store = TestDb::sqlite(dir.path()).open().await.unwrap();
        let batch: Vec<NewAttendance> = (1..=40).map(|i| record(i, "41", 1_000 + i)).collect();
        // Polled once, the insert hands the batch to the thread and waits; then it is dropped.
        let polled_once =
            futures_util::FutureExt::now_or_never(store.insert_attendance(batch.clone()));
        assert!(
            polled_once.is_none(),
            "the insert was still waiting for its commit"
        );
        // A write of sqlx's writer connection queues behind the thread's transaction.
        store
            .create_project(&Project {
                id: 5,
                name: "p5".into(),
                code: None,
                address: None,
                coordinate_system: Default::default(),
                fence: None,
                created_at: 1,
            })
            .await
            .unwrap();
        for r in &batch {
            assert_eq!(
                store.attendance_record(r.record_id).await.unwrap().as_ref(),
                Some(r)
            );
        }
        // Resent under new ids, as a device's resends arrive, every one is a duplicate.
        let resent = batch
            .into_iter()
            .map(|r| NewAttendance {
                record_id: r.record_id + 100,
                ..r
            })
            .collect();
        let again = store.insert_attendance(resent).await.unwrap();
        assert!(again.iter().all(|i| i.duplicate), "{again:?}");
    }

    /// A database made before `0003_attendance_key` (which rebuilds the table on SQLite)
    /// keeps its records, and the reordered key still knows a resent one.
    #[tokio::test]
    async fn records_survive_the_attendance_key_migration() {
        let dir = tempfile::tempdir().unwrap();
        let (url, pool, writes) = sqlite_at_version(dir.path(), 2).await;
        let old = record(7, "42", 1_000);
        bind_attendance(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO attendance ({}) VALUES {}",
                columns!(attendance),
                values_list(true, 1, 13)
            ))),
            &old,
        )
        .execute(&writes)
        .await
        .unwrap();
        pool.close().await;
        writes.close().await;

        let store = SqlStore::connect(&url)
            .await
            .unwrap()
            .with_keys(crate::store::test_db::test_keys());
        let got = store
            .insert_attendance(vec![record(8, "42", 1_000), record(9, "43", 1_000)])
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![
                Inserted {
                    record_id: 7,
                    duplicate: true
                },
                Inserted {
                    record_id: 9,
                    duplicate: false
                },
            ]
        );
        let key: String = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'attendance'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert!(
            key.contains("UNIQUE (sn, record_time, person_id, record_type)"),
            "{key}"
        );
    }
}
