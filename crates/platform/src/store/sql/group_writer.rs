//! SQLite's group commit of attendance, on a thread and a connection of its own.
//!
//! sqlx drives a SQLite connection from a worker thread of its own: every statement goes to
//! it as a message, and every row and outcome comes back as one, each able to wake the other
//! side. A group commit through it took two round trips (BENCHMARKS.md, session 26), and the
//! threads waking each other were the largest item of a backlog record's CPU. This thread
//! holds a second connection to the same file (rusqlite, over the same SQLite library) and
//! takes a whole batch in one message and gives one answer: one wake-up each way per group
//! commit. The records are bound from their own fields, without copying them into sqlx's
//! `Any` arguments first.
//!
//! A job carries the store's writer slot and releases it when its transaction has ended, so
//! this connection and sqlx's writer never wait for SQLite's lock behind each other, and a
//! caller that stops waiting does not let another writer in before the commit is over.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::types::Null;
use rusqlite::{Connection, OpenFlags, Statement, ToSql, TransactionBehavior};
use tokio::sync::{OwnedMutexGuard, oneshot};

use super::{Backend, attendance, ids_in, json_ids, person_index, uplink, values_list, webhooks};
use crate::store::model::{Inserted, NewAttendance};
use crate::store::{StoreError, StoreResult};

/// Columns of `columns!(attendance)`, bound per record.
const WIDTH: usize = 13;
/// Rows of one insert statement: 256 × 13 bound values, far below SQLite's 32,766.
const ROWS: usize = 256;
/// A statement's rows are padded with rows of NULLs to a multiple of this, so that its text
/// takes one of a few shapes and stays prepared. A NULL row breaks the NOT NULL columns, so
/// `OR IGNORE` skips it and it stores nothing.
const PAD: usize = 32;
/// The queues' statements take the new records' ids as `$3`, after the event name (`$1`)
/// and the time the items are made at (`$2`).
const IDS_PARAM: usize = 3;

/// What a group commit gives back.
#[derive(Debug)]
pub(super) struct Committed {
    /// The outcome of each record of `firsts`, at its place in the batch; `None` elsewhere.
    pub results: Vec<Option<Inserted>>,
    /// How many records it stored.
    pub stored: usize,
}

struct Job {
    batch: Vec<NewAttendance>,
    firsts: Vec<usize>,
    slot: OwnedMutexGuard<()>,
    reply: oneshot::Sender<StoreResult<Committed>>,
}

/// The handle of the writer thread, which ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for GroupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupWriter")
    }
}

impl GroupWriter {
    /// Opens the database file at `path` (created and migrated already), applies `pragmas`
    /// and starts the thread.
    pub(super) fn start(path: &Path, pragmas: &[&str]) -> StoreResult<GroupWriter> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        for pragma in pragmas {
            conn.execute_batch(pragma)?;
        }
        let (jobs, queue) = mpsc::channel();
        let writer = Writer::new(conn);
        std::thread::Builder::new()
            .name("rollcall-sqlite-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| StoreError::WriterStopped(format!("starting it: {e}")))?;
        Ok(GroupWriter { jobs })
    }

    /// Stores `batch`'s records at `firsts` (each key once) in one transaction and returns
    /// their outcomes. `slot` is the store's writer slot, held until the transaction ends.
    pub(super) async fn commit(
        &self,
        batch: Vec<NewAttendance>,
        firsts: Vec<usize>,
        slot: OwnedMutexGuard<()>,
    ) -> StoreResult<Committed> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            batch,
            firsts,
            slot,
            reply,
        };
        self.jobs
            .send(job)
            .map_err(|_| StoreError::WriterStopped("it has ended".into()))?;
        answer
            .await
            .map_err(|_| StoreError::WriterStopped("it dropped a group commit".into()))?
    }
}

/// The thread's connection and the text of its statements.
struct Writer {
    conn: Connection,
    /// `INSERT OR IGNORE` of `PAD`, `2 × PAD`, … `ROWS` rows.
    inserts: Vec<String>,
    uplink: String,
    webhooks: String,
    person_index: String,
}

impl Writer {
    fn new(conn: Connection) -> Writer {
        // Every shape of the insert, the lookup and the three queues stay prepared.
        conn.set_prepared_statement_cache_capacity(ROWS / PAD + 8);
        let inserts = (1..=ROWS / PAD)
            .map(|k| {
                format!(
                    "INSERT OR IGNORE INTO attendance ({}) VALUES {}",
                    columns!(attendance),
                    values_list(true, k * PAD, WIDTH)
                )
            })
            .collect();
        // The condition's text does not depend on the ids, which are bound as one JSON array.
        let (new_records, _) = ids_in(Backend::Sqlite, "a.record_id", IDS_PARAM, &[]);
        Writer {
            conn,
            inserts,
            uplink: uplink::attendance_sql(&new_records, "$2"),
            webhooks: webhooks::attendance_sql(&new_records, "$2"),
            person_index: person_index::queue_sql(&new_records),
        }
    }

    fn run(mut self, queue: mpsc::Receiver<Job>) {
        while let Ok(job) = queue.recv() {
            let outcome = self.commit(&job.batch, &job.firsts);
            drop(job.slot);
            // A caller that stopped waiting gets nothing; its records are stored or not as
            // the outcome says, and a resend finds them.
            let _ = job.reply.send(outcome);
        }
    }

    /// One transaction: the records in statements of up to `ROWS` rows, each new record
    /// queued for the uplink (when its project has one), the webhooks and the per-person
    /// index, then the commit and its fsync. Any failure rolls everything back.
    fn commit(&mut self, batch: &[NewAttendance], firsts: &[usize]) -> StoreResult<Committed> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results: Vec<Option<Inserted>> = vec![None; batch.len()];
        let mut stored: Vec<i64> = Vec::with_capacity(firsts.len());
        for chunk in firsts.chunks(ROWS) {
            let shape = chunk.len().div_ceil(PAD);
            let sql = self
                .inserts
                .get(shape - 1)
                .ok_or_else(|| StoreError::Corrupt("group commit chunk too large".into()))?;
            let mut insert = tx.prepare_cached(sql)?;
            for (row, &i) in chunk.iter().enumerate() {
                bind_record(&mut insert, row * WIDTH + 1, &batch[i])?;
            }
            for index in chunk.len() * WIDTH + 1..=shape * PAD * WIDTH {
                insert.raw_bind_parameter(index, Null)?;
            }
            let all_new = insert.raw_execute()? == chunk.len();
            for &i in chunk {
                let record = &batch[i];
                let result = if all_new {
                    Inserted {
                        record_id: record.record_id,
                        duplicate: false,
                    }
                } else {
                    stored_under_key(&tx, record)?
                };
                if !result.duplicate {
                    stored.push(record.record_id);
                }
                results[i] = Some(result);
            }
        }
        if !stored.is_empty() {
            stored.sort_unstable();
            let ids = json_ids(&stored);
            let now = attendance::latest_arrival(batch);
            let args: [&dyn ToSql; 3] = [&"attendance", &now, &ids];
            if batch.iter().any(|r| r.project_id.is_some()) {
                execute_numbered(&tx, &self.uplink, &args)?;
            }
            execute_numbered(&tx, &self.webhooks, &args)?;
            execute_numbered(&tx, &self.person_index, &args)?;
        }
        tx.commit()?;
        Ok(Committed {
            results,
            stored: stored.len(),
        })
    }
}

/// Binds one record in `columns!(attendance)` order from parameter `at` on.
fn bind_record(insert: &mut Statement<'_>, at: usize, r: &NewAttendance) -> rusqlite::Result<()> {
    insert.raw_bind_parameter(at, r.record_id)?;
    insert.raw_bind_parameter(at + 1, r.sn.as_str())?;
    insert.raw_bind_parameter(at + 2, r.person_id.as_str())?;
    insert.raw_bind_parameter(at + 3, i64::from(r.r#type))?;
    insert.raw_bind_parameter(at + 4, r.bit_type.map(i64::from))?;
    insert.raw_bind_parameter(at + 5, r.record_time)?;
    insert.raw_bind_parameter(at + 6, r.received_at)?;
    insert.raw_bind_parameter(at + 7, r.project_id)?;
    insert.raw_bind_parameter(at + 8, r.direction.as_str())?;
    insert.raw_bind_parameter(at + 9, r.photo_key.as_deref())?;
    insert.raw_bind_parameter(at + 10, attendance::join_flags(&r.flags))?;
    insert.raw_bind_parameter(at + 11, r.temperature)?;
    insert.raw_bind_parameter(at + 12, r.extra.as_deref())
}

/// [`attendance::outcome_under_key`], looked up on the thread's connection (the `$n` of the
/// shared statement bind in order of appearance).
fn stored_under_key(conn: &Connection, record: &NewAttendance) -> StoreResult<Inserted> {
    let mut lookup = conn.prepare_cached(attendance::STORED_UNDER_KEY)?;
    let mut rows = lookup.query((
        record.sn.as_str(),
        record.person_id.as_str(),
        record.record_time,
        i64::from(record.r#type),
    ))?;
    let stored = match rows.next()? {
        Some(row) => Some(row.get::<_, i64>(0)?),
        None => None,
    };
    attendance::outcome_under_key(record, stored)
}

/// Runs `sql`, whose `$n` placeholders take `args[n - 1]` (the queues' statements are shared
/// with the sqlx path, which numbers its arguments so).
fn execute_numbered(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> StoreResult<()> {
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let arg = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| args.get(n.checked_sub(1)?))
            .ok_or_else(|| StoreError::Corrupt(format!("queue statement parameter {index}")))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    statement.raw_execute()?;
    Ok(())
}
