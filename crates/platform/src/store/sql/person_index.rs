//! The per-person index of attendance, brought up to date in bulk (migration 0007).
//!
//! A group commit holds one record of each of many workers. An index keyed by person puts
//! almost every record of a batch into a leaf page of its own, so each commit wrote most of
//! the index's leaves again, which was most of what the commit wrote. Here, instead:
//! - a group commit appends its new records' ids and persons to `attendance_to_index` (keys
//!   that grow with time: a few pages per commit), in the same transaction as the records;
//! - once [`DEFAULT_BATCH`] records are queued, the store moves them all into
//!   `attendance_by_person (person_id, record_id)` right after the commit that passed the
//!   mark, in a transaction of its own ([`SqlStore::move_person_queue`]): every leaf is
//!   touched once for thousands of records, and the group commit holds no lock of the move;
//! - a query for a person reads both ([`condition`]), so every committed record is found
//!   whether or not it has been moved yet.
//!
//! The count of queued records is kept in memory per store (read from the table at start);
//! it only decides when to move them. Several nodes on one PostgreSQL database each count
//! their own and move everyone's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AnyConnection, AssertSqlSafe};

use super::{Backend, SqlStore, bind_all, ids_in};
use crate::store::StoreResult;

/// Records queued before they are moved into the index. A query for a person scans the queue
/// (a small table of ids and persons), so this bounds that work as much as it amortises the
/// index's writes.
pub const DEFAULT_BATCH: usize = 16_384;

/// When to move the queued records: shared by the clones of one store.
#[derive(Debug, Clone)]
pub struct PersonIndex {
    queued: Arc<AtomicUsize>,
    batch: usize,
}

impl PersonIndex {
    pub fn new(queued: usize, batch: usize) -> PersonIndex {
        PersonIndex {
            queued: Arc::new(AtomicUsize::new(queued)),
            batch: batch.max(1),
        }
    }

    /// The same count, moved every `batch` records.
    pub fn with_batch(&self, batch: usize) -> PersonIndex {
        PersonIndex {
            queued: self.queued.clone(),
            batch: batch.max(1),
        }
    }

    /// Counts `n` newly queued records; true when the queue should be moved now.
    pub(super) fn add(&self, n: usize) -> bool {
        self.queued.fetch_add(n, Ordering::Relaxed) + n >= self.batch
    }

    /// After a move has committed: the count starts again.
    fn moved(&self) {
        self.queued.store(0, Ordering::Relaxed);
    }
}

/// The records queued when a store opens.
pub(super) async fn queued(conn: &mut AnyConnection) -> Result<usize, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM attendance_to_index")
        .fetch_one(conn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Queues the new records `record_ids`, inside the group commit's transaction (PostgreSQL's;
/// SQLite's sends [`queue_sql`] with its other statements). Once that transaction has
/// committed, the store counts them ([`PersonIndex::add`]) and moves the queue when the mark
/// is passed ([`SqlStore::move_person_queue`]).
pub(super) async fn queue(
    conn: &mut AnyConnection,
    backend: Backend,
    record_ids: &[i64],
) -> Result<(), sqlx::Error> {
    for chunk in record_ids.chunks(super::MAX_PARAMS) {
        let (new_records, ids) = ids_in(backend, "a.record_id", 1, chunk);
        bind_all(sqlx::query(AssertSqlSafe(queue_sql(&new_records))), ids)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The statement of [`queue`]: `new_records` is the condition naming the records (as `a`).
pub(super) fn queue_sql(new_records: &str) -> String {
    format!(
        "INSERT INTO attendance_to_index (record_id, person_id) \
         SELECT a.record_id, a.person_id FROM attendance a WHERE {new_records}"
    )
}

impl SqlStore {
    /// Moves the queue into the index, in a transaction of its own. On PostgreSQL its
    /// `DELETE` locks every queued row; inside a group commit, which may also wait on another
    /// node's uncommitted record of the same key, that could close a cycle of waits. A failure
    /// changes nothing and is logged: the count stays past the mark, so the next group commit
    /// tries again, and queries find queued records meanwhile.
    pub(super) async fn move_person_queue(&self) {
        let moved: StoreResult<()> = async {
            let mut tx = self.write().await?;
            flush(tx.conn(), self.backend).await?;
            tx.commit().await
        }
        .await;
        match moved {
            Ok(()) => self.person_index.moved(),
            Err(e) => tracing::warn!(
                error = %e,
                "moving queued attendance into the per-person index failed; the next group \
                 commit tries again"
            ),
        }
    }
}

/// Moves every queued record into `attendance_by_person`.
///
/// SQLite: this process's one writer holds the write lock, so nothing is queued between the
/// two statements. PostgreSQL: another node may commit to the queue at any moment, so one
/// statement deletes exactly the rows it sees and indexes those; a concurrent move waits on
/// the same rows and then finds them gone.
async fn flush(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            // `WHERE true`: SQLite's parser needs a WHERE before an upsert clause of
            // INSERT … SELECT; `ORDER BY` lets the entries arrive in the index's order.
            sqlx::query(
                "INSERT INTO attendance_by_person (person_id, record_id) \
                 SELECT person_id, record_id FROM attendance_to_index WHERE true \
                 ORDER BY person_id, record_id ON CONFLICT DO NOTHING",
            )
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM attendance_to_index")
                .execute(&mut *conn)
                .await?;
        }
        Backend::Postgres => {
            sqlx::query(
                "WITH moved AS (DELETE FROM attendance_to_index RETURNING person_id, record_id) \
                 INSERT INTO attendance_by_person (person_id, record_id) \
                 SELECT person_id, record_id FROM moved ON CONFLICT DO NOTHING",
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The filter of a query for one person's records, whose id is bound as `$param`: the
/// records moved into the index and those still queued.
pub(super) fn condition(param: usize) -> String {
    format!(
        "person_id = ${param} AND record_id IN (\
         SELECT record_id FROM attendance_by_person WHERE person_id = ${param} \
         UNION ALL SELECT record_id FROM attendance_to_index WHERE person_id = ${param})"
    )
}

#[cfg(test)]
mod tests {
    use crate::store::model::{AttendanceQuery, NewAttendance};
    use crate::store::sql::SqlStore;
    use crate::store::test_db::TestDb;
    use crate::store::{AttendanceStore, StoreResult};

    /// Record `record_id` at `1000 × record_id`, of project 7 when even, else 8.
    fn record(record_id: i64, person_id: &str) -> NewAttendance {
        NewAttendance {
            project_id: Some(if record_id % 2 == 0 { 7 } else { 8 }),
            ..super::super::attendance::tests::record(record_id, person_id, 1_000 * record_id)
        }
    }

    /// Rows of `table` (one of the two index tables).
    async fn rows(store: &SqlStore, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM {table}"
        )))
        .fetch_one(store.pool())
        .await
        .unwrap()
    }

    /// `(queued, indexed)`: the rows of the queue and of the per-person index.
    async fn counts(store: &SqlStore) -> (i64, i64) {
        (
            rows(store, "attendance_to_index").await,
            rows(store, "attendance_by_person").await,
        )
    }

    /// `person`'s record ids, newest first, through the admin API's query.
    async fn of(store: &SqlStore, person: &str, query: AttendanceQuery) -> StoreResult<Vec<i64>> {
        let query = AttendanceQuery {
            person_id: Some(person.into()),
            limit: 100,
            ..query
        };
        Ok(store
            .attendance(&query)
            .await?
            .into_iter()
            .map(|r| r.record_id)
            .collect())
    }

    /// A person's records are found while they wait in the queue, after the commit that
    /// passes the mark has moved them into the index, and when some are in each; a resent
    /// record is not queued again; every filter still applies.
    #[tokio::test]
    async fn a_person_s_records_are_found_before_and_after_they_move_into_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = TestDb::new("personindex", dir.path())
            .open()
            .await
            .unwrap()
            .with_person_index_batch(5);
        store
            .insert_attendance(vec![record(1, "p1"), record(2, "p2"), record(3, "p1")])
            .await
            .unwrap();
        assert_eq!(counts(&store).await, (3, 0));
        assert_eq!(
            of(&store, "p1", AttendanceQuery::default()).await.unwrap(),
            [3, 1]
        );

        // 3 + 2 reaches the mark: this commit moves all five.
        store
            .insert_attendance(vec![record(4, "p1"), record(5, "p3")])
            .await
            .unwrap();
        assert_eq!(counts(&store).await, (0, 5));
        assert_eq!(
            of(&store, "p1", AttendanceQuery::default()).await.unwrap(),
            [4, 3, 1]
        );

        // A resend of record 4 under a new id is a duplicate: only record 6 is queued.
        let mut resent = record(40, "p1");
        resent.record_time = 4_000;
        resent.received_at = 4_005;
        let inserted = store
            .insert_attendance(vec![resent, record(6, "p1")])
            .await
            .unwrap();
        assert!(inserted[0].duplicate && !inserted[1].duplicate);
        assert_eq!(counts(&store).await, (1, 5));
        assert_eq!(
            of(&store, "p1", AttendanceQuery::default()).await.unwrap(),
            [6, 4, 3, 1]
        );
        assert_eq!(
            of(&store, "p2", AttendanceQuery::default()).await.unwrap(),
            [2]
        );
        assert!(
            of(&store, "nobody", AttendanceQuery::default())
                .await
                .unwrap()
                .is_empty()
        );

        // With the other filters: project 7 holds the even ids; the cursor; time; a limit.
        let even = AttendanceQuery {
            project_id: Some(7),
            ..Default::default()
        };
        assert_eq!(of(&store, "p1", even).await.unwrap(), [6, 4]);
        let before = AttendanceQuery {
            before_record_id: Some(4),
            ..Default::default()
        };
        assert_eq!(of(&store, "p1", before).await.unwrap(), [3, 1]);
        let window = AttendanceQuery {
            from: Some(3_000),
            to: Some(6_000),
            ..Default::default()
        };
        assert_eq!(of(&store, "p1", window).await.unwrap(), [4, 3]);
        let page = store
            .attendance(&AttendanceQuery {
                person_id: Some("p1".into()),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.iter().map(|r| r.record_id).collect::<Vec<_>>(), [6, 4]);
    }

    /// A move that fails leaves the records queued, found, and acknowledged as stored; the
    /// next group commit moves them all (SQLite; a trigger makes the move fail).
    #[tokio::test]
    async fn a_failed_move_keeps_the_queue_and_the_next_commit_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("fail.db").display());
        let store = SqlStore::connect(&url)
            .await
            .unwrap()
            .with_person_index_batch(2);
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON attendance_by_person \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(&store.writes)
        .await
        .unwrap();
        let stored = store
            .insert_attendance(vec![record(1, "p1"), record(2, "p1")])
            .await
            .unwrap();
        assert!(stored.iter().all(|i| !i.duplicate));
        assert_eq!(counts(&store).await, (2, 0));
        assert_eq!(
            of(&store, "p1", AttendanceQuery::default()).await.unwrap(),
            [2, 1]
        );

        sqlx::query("DROP TRIGGER refuse")
            .execute(&store.writes)
            .await
            .unwrap();
        store
            .insert_attendance(vec![record(3, "p1")])
            .await
            .unwrap();
        assert_eq!(counts(&store).await, (0, 3));
        assert_eq!(
            of(&store, "p1", AttendanceQuery::default()).await.unwrap(),
            [3, 2, 1]
        );
    }

    /// The count of queued records survives a restart: a store opened on a database with
    /// records in the queue moves them when the mark is passed counting those.
    #[tokio::test]
    async fn a_reopened_store_counts_the_records_already_queued() {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new("personreopen", dir.path());
        let first = db.open().await.unwrap().with_person_index_batch(4);
        first
            .insert_attendance(vec![record(1, "p1"), record(2, "p2"), record(3, "p1")])
            .await
            .unwrap();
        first.close().await;
        let second = db.open().await.unwrap().with_person_index_batch(4);
        assert_eq!(rows(&second, "attendance_to_index").await, 3);
        second
            .insert_attendance(vec![record(4, "p2")])
            .await
            .unwrap();
        assert_eq!(counts(&second).await, (0, 4));
        assert_eq!(
            of(&second, "p2", AttendanceQuery::default()).await.unwrap(),
            [4, 2]
        );
    }

    /// On SQLite, a person's query looks records up by their id and the per-person index by
    /// its key, alone or with a project, and scans no table but the (bounded) queue.
    #[tokio::test]
    async fn sqlite_finds_a_person_s_records_without_a_scan_of_attendance() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("plan.db").display());
        let store = SqlStore::connect(&url).await.unwrap();
        for extra in ["", "project_id = $2 AND "] {
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT record_id FROM attendance WHERE {extra}{} \
                 ORDER BY record_id DESC LIMIT 50",
                super::condition(1)
            );
            let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind("p1")
                .bind(7_i64)
                .fetch_all(store.pool())
                .await
                .unwrap()
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
                .collect();
            let has = |line: &str| plan.iter().any(|l| l == line);
            // Each listed id is looked up: by the primary key, or by the project's index
            // (project_id, record_id) when a project is asked for too.
            assert!(
                plan.iter().any(|l| l.starts_with("SEARCH attendance USING")
                    && (l.contains("rowid=?") || l.contains("record_id=?"))),
                "{plan:?}"
            );
            assert!(
                has("SEARCH attendance_by_person USING PRIMARY KEY (person_id=?)"),
                "{plan:?}"
            );
            let scans: Vec<&String> = plan.iter().filter(|l| l.starts_with("SCAN")).collect();
            assert_eq!(scans, ["SCAN attendance_to_index"], "{plan:?}");
        }
    }

    /// Records stored before migration 0007 are in the per-person index it creates.
    #[tokio::test]
    async fn records_from_before_the_migration_are_found_by_person() {
        let dir = tempfile::tempdir().unwrap();
        let (url, pool, writes) = crate::store::sql::sqlite_at_version(dir.path(), 6).await;
        for (id, person) in [(1, "p1"), (2, "p2"), (3, "p1")] {
            sqlx::query(
                "INSERT INTO attendance (record_id, sn, person_id, record_type, record_time, \
                 received_at, direction, flags) VALUES ($1, 'SN1', $2, 1, $3, $3, 'in', '')",
            )
            .bind(id)
            .bind(person)
            .bind(1_000 * id)
            .execute(&writes)
            .await
            .unwrap();
        }
        pool.close().await;
        writes.close().await;

        let store = SqlStore::connect(&url).await.unwrap();
        assert_eq!(rows(&store, "attendance_by_person").await, 3);
        assert_eq!(rows(&store, "attendance_to_index").await, 0);
        assert_eq!(
            of(&store, "p1", AttendanceQuery::default()).await.unwrap(),
            [3, 1]
        );
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'attendance'",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert!(
            !indexes.iter().any(|n| n == "attendance_person"),
            "{indexes:?}"
        );
    }

    /// Two nodes on one PostgreSQL database, both committing and moving at once (a move at
    /// every third record): every record ends up in exactly one of the two tables, and each
    /// person's records are all found.
    #[tokio::test]
    async fn two_nodes_moving_at_once_neither_lose_nor_double_a_record() {
        let db = TestDb::postgres("personnodes");
        let a = db.open_postgres().await.with_person_index_batch(3);
        let b = db.open_postgres().await.with_person_index_batch(3);
        let node = |store: SqlStore, first: i64| async move {
            for batch in 0..20 {
                let records: Vec<NewAttendance> = (0..4)
                    .map(|i| record(first + batch * 4 + i, ["p1", "p2", "p3"][(i % 3) as usize]))
                    .collect();
                store.insert_attendance(records.clone()).await.unwrap();
            }
        };
        tokio::join!(node(a.clone(), 1), node(b.clone(), 1_001));
        let (queued, indexed) = counts(&a).await;
        assert_eq!(queued + indexed, 160, "{queued} queued, {indexed} indexed");
        let in_both: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM attendance_to_index q \
             JOIN attendance_by_person p ON p.record_id = q.record_id",
        )
        .fetch_one(a.pool())
        .await
        .unwrap();
        assert_eq!(in_both, 0);
        let mut found = 0;
        for person in ["p1", "p2", "p3"] {
            let query = AttendanceQuery {
                limit: 500,
                ..Default::default()
            };
            found += of(&b, person, query).await.unwrap().len();
        }
        assert_eq!(found, 160);
    }
}
