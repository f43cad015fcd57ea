//! Photos of a node's disk copied into an S3-compatible store (`rollcall migrate-data
//! --photos-to s3://…`), so a single-node installation can become several nodes.
//!
//! - Every file of the local store (faces, firmware, import reports) is copied under its own
//!   key, read back and compared.
//! - Attendance photos live in the local segment files under keys that name this disk
//!   (`s/…`): they are read, written as batch objects like fresh sign-ins
//!   ([`BlobStore::put_batch`]), read back and compared, and only then is each record's key in
//!   the database rewritten (`UPDATE … WHERE photo_key = old`), one transaction per batch.
//!
//! A run that stops halfway can simply run again: files are written again under the same
//! keys, and records already rewritten no longer have an `s/` key. The local store is opened
//! with its lock, so the platform that owns it must be stopped first.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sqlx::Row;

use crate::store::blobs::{BlobStore, LocalBlobs, ObjectBlobs};
use crate::store::sql::SqlStore;

/// Attendance photos moved per batch object (and per database transaction).
const BATCH: i64 = 256;

/// Why a photo copy stopped. Nothing is rewritten in the database before its photo is
/// verified in the target store.
#[derive(Debug, thiserror::Error)]
pub enum PhotoCopyError {
    #[error("cannot open the local photo store {path}: {source}")]
    OpenLocal {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Database(#[from] crate::store::StoreError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("reading {key} from the local store: {source}")]
    Read {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {key} to the object store: {source}")]
    Write {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: the object store gives back other bytes than were copied")]
    Verify { key: String },
}

/// What a photo copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhotoSummary {
    /// Files (faces, firmware, reports) copied and verified.
    pub files: u64,
    /// Attendance photos moved, verified and re-keyed.
    pub attendance: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Copies the local store at `from_dir` into `to` and re-keys the attendance photos of the
/// database at `db_url` (see the module docs). `progress` gets the running summary.
pub async fn copy_photos(
    from_dir: &Path,
    to: &ObjectBlobs,
    db_url: &str,
    progress: &mut (dyn FnMut(&PhotoSummary) + Send),
) -> Result<PhotoSummary, PhotoCopyError> {
    let started = Instant::now();
    let local = LocalBlobs::open(from_dir, 256 * 1024 * 1024)
        .await
        .map_err(|source| PhotoCopyError::OpenLocal {
            path: from_dir.display().to_string(),
            source,
        })?;
    let mut summary = PhotoSummary::default();

    let root = from_dir.to_owned();
    let keys = tokio::task::spawn_blocking(move || file_keys(&root))
        .await
        .map_err(|e| PhotoCopyError::OpenLocal {
            path: from_dir.display().to_string(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| PhotoCopyError::OpenLocal {
            path: from_dir.display().to_string(),
            source,
        })?;
    for key in keys {
        let bytes = read(&local, &key).await?;
        to.put(&key, &bytes)
            .await
            .map_err(|source| PhotoCopyError::Write {
                key: key.clone(),
                source,
            })?;
        verify(to, &key, &bytes).await?;
        summary.files += 1;
        summary.bytes += bytes.len() as u64;
        progress(&summary);
    }

    let db = SqlStore::connect(db_url).await?;
    let result = rekey_attendance(&local, to, &db, &mut summary, progress).await;
    db.close().await;
    result?;
    summary.elapsed = started.elapsed();
    progress(&summary);
    Ok(summary)
}

async fn rekey_attendance(
    local: &LocalBlobs,
    to: &ObjectBlobs,
    db: &SqlStore,
    summary: &mut PhotoSummary,
    progress: &mut (dyn FnMut(&PhotoSummary) + Send),
) -> Result<(), PhotoCopyError> {
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(
            "SELECT record_id, photo_key FROM attendance \
             WHERE photo_key LIKE 's/%' AND record_id > $1 ORDER BY record_id LIMIT $2",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(db.pool())
        .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get("record_id")?;
        let mut records = Vec::with_capacity(rows.len());
        let mut photos = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("record_id")?;
            let key: String = row.try_get("photo_key")?;
            photos.push(read(local, &key).await?);
            records.push((id, key));
        }
        let new_keys = to
            .put_batch(&photos)
            .await
            .map_err(|source| PhotoCopyError::Write {
                key: format!("a batch of {} attendance photos", photos.len()),
                source,
            })?;
        for (key, bytes) in new_keys.iter().zip(&photos) {
            verify(to, key, bytes).await?;
        }
        let mut tx = db.pool().begin().await?;
        for ((id, old), new) in records.iter().zip(&new_keys) {
            sqlx::query(
                "UPDATE attendance SET photo_key = $1 WHERE record_id = $2 AND photo_key = $3",
            )
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        summary.attendance += photos.len() as u64;
        summary.bytes += photos.iter().map(|p| p.len() as u64).sum::<u64>();
        progress(summary);
    }
}

async fn read(local: &LocalBlobs, key: &str) -> Result<Bytes, PhotoCopyError> {
    local.get(key).await.map_err(|source| PhotoCopyError::Read {
        key: key.to_owned(),
        source,
    })
}

async fn verify(to: &ObjectBlobs, key: &str, bytes: &[u8]) -> Result<(), PhotoCopyError> {
    let back = to.get(key).await.map_err(|source| PhotoCopyError::Write {
        key: key.to_owned(),
        source,
    })?;
    if back.as_ref() != bytes {
        return Err(PhotoCopyError::Verify {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// Every file key under `root` except the attendance segments and hidden files (the store's
/// temporary files), sorted.
fn file_keys(root: &Path) -> std::io::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                if dir == root && name == "attendance" {
                    continue;
                }
                dirs.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let key: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
                keys.push(key.join("/"));
            }
        }
    }
    keys.sort();
    Ok(keys)
}
