//! The device's local store: one SQLite file (`rusqlite`, bundled) holding the person list
//! with face photos, the durable attendance queue, the dead letters, the task log and a few
//! settings. Schema and queries are in [`schema`] and [`ops`].
//!
//! ## Never on the async runtime
//! SQLite calls block, so the store lives on **one dedicated thread** that owns the
//! connection. [`StoreHandle`] (cheap to clone) sends it closures; the thread takes every
//! closure that has queued, runs each inside its own savepoint of **one transaction**, commits
//! once (WAL, `synchronous=FULL`: one fsync), and only then answers the callers — group
//! commit, so 60,000 enqueues or acknowledgements cost a few hundred fsyncs, not 60,000, and
//! nothing is reported done before it is durable. A closure that fails rolls back its own
//! savepoint only.
//!
//! ## Durability
//! A record is in the queue once [`StoreHandle::call`] of the enqueue returns. It leaves the
//! queue when the platform acknowledged it (deleted) or refused it for good (moved to
//! `dead_letters` in the same transaction). A crash between the platform's acknowledgement
//! and the delete resends the record; the platform answers `duplicate` and stores nothing.

pub mod ops;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

/// A failure of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The commit of a batch failed; nothing of the batch was kept.
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("the store thread has stopped")]
    Closed,
}

impl StoreError {
    /// Busy or locked database, or a failed commit (a full disk may clear): retrying can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            StoreError::Commit(_) => true,
            StoreError::Open { .. } | StoreError::Corrupt(_) | StoreError::Closed => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One unit of work for the store thread.
trait Work: Send {
    fn run(&mut self, conn: &Connection);
    fn finish(self: Box<Self>, commit: Result<(), &str>);
}

struct Call<F, R> {
    f: Option<F>,
    result: Option<StoreResult<R>>,
    reply: Option<oneshot::Sender<StoreResult<R>>>,
}

impl<F, R> Work for Call<F, R>
where
    F: FnOnce(&Connection) -> StoreResult<R> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) {
        if let Some(f) = self.f.take() {
            self.result = Some(in_savepoint(conn, f));
        }
    }

    fn finish(self: Box<Self>, commit: Result<(), &str>) {
        let result = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            (_, Some(Err(e))) => Err(e),
            (Err(e), _) => Err(StoreError::Commit(e.to_owned())),
            (Ok(()), None) => Err(StoreError::Closed),
        };
        match self.reply {
            Some(tx) => {
                let _ = tx.send(result);
            }
            None => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "a background store write failed");
                }
            }
        }
    }
}

fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<R>,
) -> StoreResult<R> {
    // Prepared once and kept: `execute_batch` parsed both statements again for every job,
    // two parses around each acknowledgement's one-row delete (BENCHMARKS.md, session 22).
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

/// Most closures committed in one transaction.
const MAX_BATCH: usize = 1024;

/// A handle on the store thread. Clones share the thread; it stops when the last handle is
/// dropped, after finishing what was queued.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Box<dyn Work>>,
    path: PathBuf,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("path", &self.path)
            .finish()
    }
}

impl StoreHandle {
    /// Opens (creating and migrating) the store at `path` and starts its thread.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<StoreHandle> {
        let path = path.as_ref().to_owned();
        let conn = schema::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel::<Box<dyn Work>>();
        std::thread::Builder::new()
            .name("rollcall-device-store".into())
            .spawn(move || serve(conn, rx))
            .map_err(|e| StoreError::Commit(format!("cannot start the store thread: {e}")))?;
        Ok(StoreHandle { tx, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the store thread inside the next group commit; returns its result once
    /// committed.
    pub async fn call<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let work = Call {
            f: Some(f),
            result: None,
            reply: Some(tx),
        };
        self.tx
            .send(Box::new(work))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `f` without waiting for it (acknowledgements, dead letters). Work runs in
    /// submission order; a failure is logged.
    pub fn submit<F>(&self, f: F)
    where
        F: FnOnce(&Connection) -> StoreResult<()> + Send + 'static,
    {
        let work: Call<F, ()> = Call {
            f: Some(f),
            result: None,
            reply: None,
        };
        if self.tx.send(Box::new(work)).is_err() {
            tracing::warn!("the store thread has stopped; a write was dropped");
        }
    }

    /// Waits until everything submitted before is committed.
    pub async fn flush(&self) -> StoreResult<()> {
        self.call(|_| Ok(())).await
    }
}

fn serve(conn: Connection, rx: mpsc::Receiver<Box<dyn Work>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let commit = match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                for w in &mut batch {
                    w.run(&conn);
                }
                conn.execute_batch("COMMIT").map_err(|e| {
                    let _ = conn.execute_batch("ROLLBACK");
                    e.to_string()
                })
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &commit {
            tracing::error!(error = %e, "a store transaction failed");
        }
        for w in batch {
            w.finish(commit.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}
