//! [`LocalBlobs`]: the blob store on this node's disk — attendance photos in group-committed
//! segment files ([`SegmentStore`]), everything else one durable file per key ([`FileStore`]).
//!
//! Every local store has a store id (8 hex digits in `attendance/STORE_ID`, made on first
//! open) and writes it into the keys of its attendance photos (`s/{store}/{segment}/…`):
//! nodes sharing a database but not a disk would otherwise read each other's keys as
//! offsets into their own segment files and answer **another record's photo**. A key of
//! another store is `NotFound` here. Keys from before store ids (`s/{segment}/…`) were only
//! ever written by single-node installations and are still read.

use std::io;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobRef, BlobStore, FileStore, SegmentStore, blocking, sync_dir};
use crate::runtime::util::fill_random;

/// The file that holds a local store's id, in the segment directory.
const STORE_ID_FILE: &str = "STORE_ID";

/// Attendance photos and other files on this node's disk (see the module docs).
#[derive(Debug)]
pub struct LocalBlobs {
    id: String,
    segments: SegmentStore,
    files: FileStore,
}

impl LocalBlobs {
    /// Opens (creating) the store under `root`: attendance segments in `root/attendance`,
    /// other files under `root`.
    pub async fn open(root: impl Into<PathBuf>, max_segment_bytes: u64) -> io::Result<Self> {
        let root = root.into();
        let files = FileStore::open(&root).await?;
        let segments_dir = root.join("attendance");
        let segments = SegmentStore::open(&segments_dir, max_segment_bytes).await?;
        let id = blocking(move || store_id(&segments_dir)).await?;
        Ok(LocalBlobs {
            id,
            segments,
            files,
        })
    }

    /// This store's id, as written into its attendance photo keys.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many `fdatasync`/`fsync` calls the segment store has made (group commit at work).
    pub fn sync_count(&self) -> u64 {
        self.segments.sync_count()
    }

    /// The segment reference a key names, if it is a segment key this store may read.
    fn own_segment(&self, key: &str) -> Option<Result<BlobRef, ()>> {
        let rest = key.strip_prefix("s/")?;
        match rest.split_once('/') {
            Some((id, tail)) if id.len() == 8 => {
                if id != self.id {
                    return Some(Err(()));
                }
                Some(BlobRef::parse_key(&format!("s/{tail}")).ok_or(()))
            }
            _ => Some(BlobRef::parse_key(key).ok_or(())),
        }
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put_batch(&self, photos: &[Bytes]) -> io::Result<Vec<String>> {
        let refs = self.segments.append_durable(photos).await?;
        Ok(refs
            .iter()
            .map(|r| format!("s/{}/{}", self.id, &r.to_key()[2..]))
            .collect())
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        refuse_photo_keys(key)?;
        self.files.put(key, bytes).await
    }

    async fn get(&self, key: &str) -> io::Result<Bytes> {
        match self.own_segment(key) {
            Some(Ok(r)) => self.segments.read(r).await,
            Some(Err(())) => Err(not_here(key)),
            None if key.starts_with("o/") => Err(not_here(key)),
            None => self.files.get(key).await,
        }
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        refuse_photo_keys(key)?;
        self.files.delete(key).await
    }

    fn describe(&self) -> String {
        format!("local disk, store {}", self.id)
    }

    fn shared(&self) -> bool {
        false
    }
}

/// Attendance photo keys (`s/…`, `o/…`) are written only by [`BlobStore::put_batch`].
pub(super) fn refuse_photo_keys(key: &str) -> io::Result<()> {
    if key.starts_with("s/") || key.starts_with("o/") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "keys under s/ and o/ belong to attendance photos",
        ));
    }
    Ok(())
}

fn not_here(key: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{key} is not in this node's photo store"),
    )
}

/// Reads, or makes once, the store id in `dir`.
fn store_id(dir: &std::path::Path) -> io::Result<String> {
    let path = dir.join(STORE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if id.len() == 8
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Ok(id.to_owned());
            }
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a store id (8 lowercase hex digits)",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut b = [0u8; 4];
            fill_random(&mut b);
            let id = hex::encode(b);
            let tmp = dir.join(format!("{STORE_ID_FILE}.tmp"));
            {
                use std::io::Write as _;
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(format!("{id}\n").as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            sync_dir(dir)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn photo_keys_name_their_store_and_another_stores_keys_are_not_found_here() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = LocalBlobs::open(d1.path(), 1 << 20).await.unwrap();
        let two = LocalBlobs::open(d2.path(), 1 << 20).await.unwrap();
        assert_ne!(one.id(), two.id());
        let k1 = one
            .put_batch(&[Bytes::from_static(b"face of A")])
            .await
            .unwrap();
        let k2 = two
            .put_batch(&[Bytes::from_static(b"face of B")])
            .await
            .unwrap();
        assert!(k1[0].starts_with(&format!("s/{}/", one.id())), "{}", k1[0]);
        // Same segment, offset and length on both disks: only the store id tells them apart.
        assert_eq!(k1[0][11..], k2[0][11..]);
        assert_eq!(one.get(&k1[0]).await.unwrap(), "face of A");
        let err = one.get(&k2[0]).await.unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::NotFound,
            "never another record's photo"
        );
        assert_eq!(
            one.get(&format!("o/20261205/{}/0/4", "a".repeat(32)))
                .await
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn the_store_id_survives_reopening_and_keys_from_before_store_ids_still_read() {
        let d = tempfile::tempdir().unwrap();
        let (id, legacy) = {
            let s = LocalBlobs::open(d.path(), 1 << 20).await.unwrap();
            let k = s
                .put_batch(&[Bytes::from_static(b"old photo")])
                .await
                .unwrap();
            // The form written before store ids: `s/{segment}/{offset}/{len}`.
            let legacy = format!("s/{}", &k[0][11..]);
            (s.id().to_owned(), legacy)
        };
        let s = LocalBlobs::open(d.path(), 1 << 20).await.unwrap();
        assert_eq!(s.id(), id);
        assert_eq!(s.get(&legacy).await.unwrap(), "old photo");
        assert!(
            s.put("s/000001/0/1", b"x").await.is_err(),
            "photo keys are the batcher's"
        );
        s.put("faces/1/a.jpg", b"face").await.unwrap();
        assert_eq!(s.get("faces/1/a.jpg").await.unwrap(), "face");
        s.delete("faces/1/a.jpg").await.unwrap();
        assert_eq!(
            s.get("faces/1/a.jpg").await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
