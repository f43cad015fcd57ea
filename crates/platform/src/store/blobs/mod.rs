//! Durable blob storage: attendance photos, faces, firmware and import reports.
//!
//! [`BlobStore`] is the one interface the platform uses; it has two implementations:
//!
//! - [`LocalBlobs`] (`local.rs`): this node's disk, built from the two stores below. Keys of
//!   its attendance photos carry its store id, so a node never reads another node's key as
//!   an offset into its own files.
//! - [`ObjectBlobs`] (`objects.rs`): an S3-compatible object store (`photo_store =
//!   "s3://bucket[/prefix]"`) shared by every node, through `object_store`. A batch of
//!   attendance photos is one object; each key names its object and offset.
//!
//! `object_store`'s own `LocalFileSystem` is not used for the local case: it does not
//! `fsync`, and a sign-in is acknowledged only once its photo is durable.
//!
//! The local disk has two stores:
//!
//! - [`SegmentStore`]: attendance photos. A sign-in is acknowledged only once its record **and**
//!   its photo are durable, and durability must be shared between many sign-ins (group commit).
//!   So photos are appended to large append-only segment files (`dir/000001.seg`, `000002.seg`,
//!   …) and a whole batch is made durable with **one `fdatasync` per segment file touched** (plus
//!   one directory `fsync` when the batch created a segment file). The caller keeps the returned
//!   [`BlobRef`]s (segment, offset, length) in the database, written only after the batch is
//!   durable; so whatever a crash leaves past the last durable byte of a segment is unreferenced
//!   garbage, and [`SegmentStore::open`] simply continues appending after it.
//! - [`FileStore`]: face photos and other rarely written files, one file per key, each written
//!   durably (temporary file, `fsync`, `rename`, `fsync` of the directory).
//!
//! # Segment record format
//!
//! Every blob is stored as a 12-byte header followed by the blob's bytes:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | magic `RCB1` |
//! | 4..8 | blob length, u32 little-endian |
//! | 8..12 | CRC-32 (IEEE 802.3, as zlib's `crc32`) of the blob, u32 little-endian |
//!
//! A [`BlobRef`]'s `offset` is the offset of the **header** in its segment file and its `len` the
//! length of the blob (without the header). [`SegmentStore::read`] reads header and blob with one
//! positional read and answers `InvalidData` when the magic, the length or the CRC do not match,
//! so a bad reference or a corrupted disk never yields wrong photo bytes silently.
//!
//! # Key decisions
//!
//! - Writes are positional (`pwrite` at the writer's own end offset), never `O_APPEND`, and the
//!   blocking file I/O runs in [`tokio::task::spawn_blocking`] under a `std` mutex: the async
//!   runtime is never blocked.
//! - A segment rolls over when appending the next record would take it past `max_segment_bytes`;
//!   a blob larger than that goes alone into a fresh segment.
//! - After any failed append (a failed write or, importantly, a failed `fdatasync`, after which
//!   the kernel may have dropped the dirty pages) the writer never touches that segment again: the
//!   next append starts a new segment file. Refs of earlier, successful batches stay valid.
//! - One writer per directory, enforced with an exclusive lock on `dir/LOCK` (released when the
//!   store is dropped). Readers keep a small cache of read-only file handles.
//! - [`BlobRef::to_key`] gives a canonical text key (`s/000001/1234/5678`) so that attendance photo
//!   references can share a text column and URL space with [`FileStore`] keys.

mod files;
mod local;
mod objects;
mod record;
mod segments;

use std::fs::File;
use std::io;
use std::path::Path;

pub use files::FileStore;
pub use local::LocalBlobs;
pub use objects::{ObjectBlobs, open_s3};
pub use segments::{BlobRef, SegmentStore};

use bytes::Bytes;

/// Where photos, firmware and import reports live: this node's disk ([`LocalBlobs`]) or an
/// S3-compatible object store shared by every node ([`ObjectBlobs`]). Keys are relative,
/// `/`-separated paths (see [`FileStore`] for the rules); keys under `s/` and `o/` are
/// attendance photos, made only by [`BlobStore::put_batch`].
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a batch of attendance photos; when this returns `Ok` every photo is durable
    /// (and, in a shared store, readable from every node). Keys in input order; each key
    /// names its photo (a key never reads back other bytes).
    async fn put_batch(&self, photos: &[Bytes]) -> io::Result<Vec<String>>;
    /// Writes `bytes` under `key`, durably, replacing what was there.
    async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// Reads `key`: `NotFound` when this store does not have it (another node's disk, a
    /// deleted file); `InvalidInput` for a key that cannot exist.
    async fn get(&self, key: &str) -> io::Result<Bytes>;
    /// Removes `key`, durably; a missing key is `Ok`.
    async fn delete(&self, key: &str) -> io::Result<()>;
    /// Where the blobs are, for logs and the admin API (no secrets).
    fn describe(&self) -> String;
    /// Whether every node sharing the database reads the same blobs.
    fn shared(&self) -> bool;
}

// --- blocking file I/O shared by both stores ----------------------------------------------

/// Makes a directory's entries (created, renamed, removed files) durable.
#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened and synced on this platform; entries are durable with the file.
#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
pub(super) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(windows)]
pub(super) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs blocking file I/O off the async runtime.
pub(super) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SegmentStore>();
        check::<FileStore>();
        check::<LocalBlobs>();
        check::<ObjectBlobs>();
    }
}
