//! [`FileStore`]: face photos, firmware and other rarely written files, one durable file per
//! key.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{blocking, sync_dir};

/// Face photos and other rarely-written files: one file per key, written durably (tmp file,
/// fsync, rename, fsync dir).
///
/// Keys are relative, `/`-separated paths such as `faces/4508004291609636864/ab12cd.jpg`. Refused
/// with `InvalidInput`: an empty key, an absolute path, a backslash, a NUL byte, an empty segment
/// (`a//b`, trailing `/`), and any segment that starts with `.` (this covers `.` and `..`, and keeps
/// the store's own hidden temporary files out of the key space).
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<PathBuf>,
}

/// Directories of personal data are the platform's alone (0700); files are 0600.
fn private_dir_builder() -> fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut b = fs::DirBuilder::new();
    b.mode(0o700);
    b
}

/// Distinguishes temporary files written concurrently by one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// Opens (creating) the store's root directory.
    pub async fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let root = dir.into();
        let root = blocking(move || {
            private_dir_builder().recursive(true).create(&root)?;
            Ok(root)
        })
        .await?;
        Ok(FileStore {
            root: Arc::new(root),
        })
    }

    /// Writes `bytes` under `key`, replacing any previous content atomically; durable when this
    /// returns `Ok` (the file and every directory entry on its path are synced).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let rel = key_path(key)?;
        let root = Arc::clone(&self.root);
        let bytes = bytes.to_vec();
        blocking(move || put_blocking(&root, &rel, &bytes)).await
    }

    /// Reads the file under `key` (`NotFound` when there is none).
    pub async fn get(&self, key: &str) -> io::Result<Bytes> {
        let path = self.root.join(key_path(key)?);
        blocking(move || fs::read(path).map(Bytes::from)).await
    }

    /// Removes the file under `key`, durably; a missing file is `Ok`.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        let path = self.root.join(key_path(key)?);
        blocking(move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            match path.parent() {
                Some(parent) => sync_dir(parent),
                None => Ok(()),
            }
        })
        .await
    }
}

/// Validates a key and turns it into a relative path.
/// Checks a key against the rules of [`FileStore`] (object stores use the same key space).
pub(super) fn check_key(key: &str) -> io::Result<()> {
    key_path(key).map(|_| ())
}

fn key_path(key: &str) -> io::Result<PathBuf> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid file key: {why}"),
        )
    };
    if key.is_empty() {
        return Err(bad("empty"));
    }
    if key.starts_with('/') {
        return Err(bad("absolute path"));
    }
    if key.contains('\\') {
        return Err(bad("backslash"));
    }
    if key.contains('\0') {
        return Err(bad("NUL byte"));
    }
    let mut path = PathBuf::new();
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(bad("empty path segment"));
        }
        if segment.starts_with('.') {
            return Err(bad("path segment starting with '.'"));
        }
        path.push(segment);
    }
    // Defence in depth: nothing but plain names may remain (e.g. a Windows drive prefix).
    if !path
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(bad("not a plain relative path"));
    }
    Ok(path)
}

fn put_blocking(root: &Path, rel: &Path, bytes: &[u8]) -> io::Result<()> {
    let path = root.join(rel);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid file key",
        ));
    };
    // Create missing directories one by one, remembering which directory entries must be synced.
    let mut to_sync: Vec<PathBuf> = Vec::new();
    let mut dir = root.to_path_buf();
    if let Some(rel_parent) = rel.parent() {
        for component in rel_parent.components() {
            let next = dir.join(component);
            match private_dir_builder().create(&next) {
                Ok(()) => to_sync.push(dir.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && next.is_dir() => {}
                Err(e) => return Err(e),
            }
            dir = next;
        }
    }

    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    let tmp = parent.join(tmp_name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent)?;
    // Newly created directories: their entries live in their parents.
    for d in to_sync.iter().rev() {
        sync_dir(d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_store_put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("files")).await.unwrap();
        let key = "faces/4508004291609636864/ab12cd.jpg";
        store.put(key, b"first").await.unwrap();
        assert_eq!(store.get(key).await.unwrap(), Bytes::from_static(b"first"));
        store.put(key, b"second").await.unwrap();
        assert_eq!(store.get(key).await.unwrap(), Bytes::from_static(b"second"));
        store.put("top.bin", b"").await.unwrap();
        assert!(store.get("top.bin").await.unwrap().is_empty());

        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("files/faces/4508004291609636864"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ab12cd.jpg"]);

        store.delete(key).await.unwrap();
        assert_eq!(
            store.get(key).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        store.delete(key).await.unwrap();
        store.delete("never/written.jpg").await.unwrap();
    }

    #[tokio::test]
    async fn file_store_refuses_unsafe_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("files")).await.unwrap();
        for key in [
            "",
            "/etc/passwd",
            "../escape.jpg",
            "faces/../../escape.jpg",
            "faces/..",
            "faces/./a.jpg",
            "faces\\a.jpg",
            "faces//a.jpg",
            "faces/",
            ".hidden",
            "faces/a\0.jpg",
        ] {
            for err in [
                store.put(key, b"x").await.unwrap_err(),
                store.get(key).await.unwrap_err(),
                store.delete(key).await.unwrap_err(),
            ] {
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{key:?}");
            }
        }
        assert!(!dir.path().join("escape.jpg").exists());
    }
}
