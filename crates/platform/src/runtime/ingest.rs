//! Durable attendance ingest with group commit (ZJ-SIGNIN-05 idempotent, ZJ-SIGNIN-06 durable before acknowledged).
//!
//! A sign-in is answered only after its record and photo are durable. Doing that one record
//! at a time would cost an fsync each; instead every sign-in handler hands its record to one
//! writer task and waits. The writer takes whatever has queued up (up to `batch_max`),
//! stores the photos as one batch (local segment store: one fsync; S3: one object, one PUT),
//! inserts the records in one
//! transaction (one WAL fsync), then answers everyone. Under load the queue fills while a
//! batch is being written, so batches grow exactly when it pays.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::runtime::metrics::Metrics;
use crate::store::blobs::BlobStore;
use crate::store::{Inserted, NewAttendance, Store};

/// Why a record was not stored. The pipeline maps it onto `500_01` (the failure itself was
/// logged where it happened); the device resends.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The writer task is gone (shutting down).
    #[error("ingest unavailable")]
    Unavailable,
    /// A group commit failed; every record of its batch gets this.
    #[error("ingest failed: {0}")]
    Failed(&'static str),
}

struct Job {
    record: NewAttendance,
    photo: Option<Bytes>,
    reply: oneshot::Sender<Result<Inserted, IngestError>>,
}

/// The handle handlers submit records through.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ingest")
    }
}

/// Stops the writer after it has drained what was queued.
pub struct IngestStopper {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl IngestStopper {
    /// Lets the writer finish the queue, then waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl Ingest {
    /// Starts the writer task.
    pub fn start(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        metrics: Arc<Metrics>,
        batch_max: usize,
    ) -> (Ingest, IngestStopper) {
        let (tx, rx) = mpsc::channel(batch_max.max(1) * 4);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(writer(rx, stop_rx, store, blobs, metrics, batch_max.max(1)));
        (
            Ingest { tx },
            IngestStopper {
                stop: stop_tx,
                task,
            },
        )
    }

    /// Stores a record (and its photo) durably; returns once it is.
    pub async fn submit(
        &self,
        record: NewAttendance,
        photo: Option<Bytes>,
    ) -> Result<Inserted, IngestError> {
        self.enqueue(record, photo).await?.await
    }

    /// Queues a record for the writer (records are committed in queue order) and returns
    /// the wait for its durability.
    pub async fn enqueue(
        &self,
        record: NewAttendance,
        photo: Option<Bytes>,
    ) -> Result<impl std::future::Future<Output = Result<Inserted, IngestError>>, IngestError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            record,
            photo,
            reply,
        };
        // A queue with room takes the job at once. Only a full one is waited on, through a box:
        // the wait's future holds the job and the queue's waiter (600 bytes), and every
        // sign-in's future kept room for it, which put the sign-in's box past the allocator's
        // per-thread cache (BENCHMARKS.md, session 19).
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                let wait = Box::pin(self.tx.send(job));
                wait.await.map_err(|_| IngestError::Unavailable)?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(IngestError::Unavailable),
        }
        Ok(async move { answer.await.map_err(|_| IngestError::Unavailable)? })
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Job>,
    mut stop: oneshot::Receiver<()>,
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    metrics: Arc<Metrics>,
    batch_max: usize,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(batch_max);
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            _ = &mut stop => {
                // Refuse new work, then drain what is already queued.
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { return };
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics.ingest_batch(batch.len());
        commit(&mut batch, store.as_ref(), blobs.as_ref(), &metrics).await;
    }
}

/// Writes one batch and answers every job in it.
async fn commit(batch: &mut Vec<Job>, store: &dyn Store, blobs: &dyn BlobStore, metrics: &Metrics) {
    let photos: Vec<Bytes> = batch.iter().filter_map(|j| j.photo.clone()).collect();
    if !photos.is_empty() {
        match blobs.put_batch(&photos).await {
            Ok(keys) => {
                let mut keys = keys.into_iter();
                for job in batch.iter_mut().filter(|j| j.photo.is_some()) {
                    job.record.photo_key = keys.next();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "photo batch write failed");
                for job in batch.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(IngestError::Failed("photo batch write")));
                }
                return;
            }
        }
    }
    // The records move out of their jobs (cloning each record's strings showed in the backlog's
    // profile) and on into the store; the answers are paired back by position.
    let mut records = Vec::with_capacity(batch.len());
    let mut waiting = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        waiting.push((job.record.received_at - job.record.record_time, job.reply));
        records.push(job.record);
    }
    match store.insert_attendance(records).await {
        Ok(results) => {
            for ((latency, reply), inserted) in waiting.into_iter().zip(results) {
                if !inserted.duplicate {
                    metrics.upload_latency(latency);
                }
                let _ = reply.send(Ok(inserted));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, records = waiting.len(), "attendance batch failed");
            for (_, reply) in waiting {
                let _ = reply.send(Err(IngestError::Failed("attendance batch")));
            }
        }
    }
}
