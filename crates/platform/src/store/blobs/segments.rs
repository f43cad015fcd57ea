//! [`SegmentStore`]: attendance photos appended to segment files, made durable a batch at a
//! time; [`BlobRef`] and its text key. The format and the decisions are in the parent
//! module's docs.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;

use super::record::{self, HEADER_LEN, parse_digits};
use super::{blocking, read_exact_at, sync_dir, write_all_at};
/// Pending writes are flushed to the file once they reach this many bytes.
const WRITE_CHUNK: usize = 1 << 20;
/// At most this many read-only segment handles are cached (the cache is cleared when full).
const MAX_CACHED_READERS: usize = 64;
/// Extension of segment files.
const SEGMENT_EXT: &str = "seg";
/// Name of the lock file that keeps a second writer out of the directory.
const LOCK_FILE: &str = "LOCK";

/// Where one blob lives in a [`SegmentStore`]: segment number, offset of its record header in the
/// segment file, and the blob's length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// Segment number: the file `dir/{segment:06}.seg`.
    pub segment: u32,
    /// Offset of the blob's record header in the segment file.
    pub offset: u64,
    /// Length of the blob in bytes (without the record header).
    pub len: u32,
}

impl BlobRef {
    /// The canonical text form, `s/{segment:06}/{offset}/{len}`, e.g. `s/000001/1234/5678`.
    pub fn to_key(&self) -> String {
        format!("s/{:06}/{}/{}", self.segment, self.offset, self.len)
    }

    /// Parses the text form made by [`BlobRef::to_key`]. Only the canonical form is accepted
    /// (decimal digits only, segment zero-padded to six digits, no other leading zeros), so that
    /// one blob has exactly one key.
    pub fn parse_key(key: &str) -> Option<Self> {
        let rest = key.strip_prefix("s/")?;
        let mut parts = rest.split('/');
        let segment = parse_digits::<u32>(parts.next()?)?;
        let offset = parse_digits::<u64>(parts.next()?)?;
        let len = parse_digits::<u32>(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        let r = BlobRef {
            segment,
            offset,
            len,
        };
        (r.to_key() == key).then_some(r)
    }
}

/// Append-only, group-committed store of attendance photos (see the module docs).
///
/// `Send + Sync`: meant to be shared behind an `Arc` by one writer task (the sign-in batcher) and
/// any number of readers.
#[derive(Debug)]
pub struct SegmentStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_segment_bytes: u64,
    writer: Mutex<Writer>,
    readers: RwLock<HashMap<u32, Arc<File>>>,
    syncs: AtomicU64,
    /// Held (exclusively locked) for the store's lifetime.
    _lock: File,
}

#[derive(Debug)]
struct Writer {
    segment: u32,
    file: File,
    /// Where the next record goes in `file`.
    end: u64,
    /// Set after a failed append: the next append starts a new segment.
    must_roll: bool,
}

impl SegmentStore {
    /// Opens (creating) `dir`; continues the newest segment at its current end (a torn tail from a
    /// crash is harmless garbage: offsets live in the database, written only after the fsync).
    ///
    /// Fails with `WouldBlock` when another open store (in this or another process) holds the
    /// directory.
    pub async fn open(dir: impl Into<PathBuf>, max_segment_bytes: u64) -> io::Result<Self> {
        let dir = dir.into();
        let inner = blocking(move || Inner::open(dir, max_segment_bytes)).await?;
        Ok(SegmentStore {
            inner: Arc::new(inner),
        })
    }

    /// Appends all blobs (rolling to a new segment file when the current one would exceed
    /// `max_segment_bytes`), then makes them durable with ONE `fdatasync` per segment file touched
    /// (plus a directory `fsync` when a new segment file was created). Returns refs in input order.
    ///
    /// When this returns `Ok`, every blob is on stable storage. On `Err` none of the refs may be
    /// used (nothing is returned), and the next append starts a new segment file. A blob longer
    /// than `u32::MAX` bytes is refused with `InvalidInput` before anything is written.
    pub async fn append_durable(&self, blobs: &[Bytes]) -> io::Result<Vec<BlobRef>> {
        if blobs.is_empty() {
            return Ok(Vec::new());
        }
        if blobs.iter().any(|b| u32::try_from(b.len()).is_err()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "blob longer than u32::MAX bytes",
            ));
        }
        let inner = Arc::clone(&self.inner);
        let blobs = blobs.to_vec();
        blocking(move || inner.append(&blobs)).await
    }

    /// Reads one blob (positional read; any number of concurrent readers is fine).
    ///
    /// Errors: `NotFound` when the segment file does not exist, `UnexpectedEof` when the ref
    /// points past the end of its segment, `InvalidData` when the record header or the CRC do not
    /// match (corruption, or a ref that does not point at a record start).
    pub async fn read(&self, r: BlobRef) -> io::Result<Bytes> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.read(r)).await
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// How many `fdatasync`/`fsync` calls the store has made since it was opened (for metrics:
    /// with group commit this grows far slower than the number of blobs).
    pub fn sync_count(&self) -> u64 {
        self.inner.syncs.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn open(dir: PathBuf, max_segment_bytes: u64) -> io::Result<Self> {
        if !dir.is_dir() {
            {
                use std::os::unix::fs::DirBuilderExt;
                // Attendance photos are personal data: the platform's alone.
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)?;
            }
            // The new directory's own entry lives in its parent.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("segment store {} is already open", dir.display()),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }

        let mut newest: Option<u32> = None;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if let Some(n) = entry.file_name().to_str().and_then(parse_segment_name) {
                newest = Some(newest.map_or(n, |m| m.max(n)));
            }
        }
        let syncs = AtomicU64::new(0);
        let writer = match newest {
            Some(segment) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(segment_path(&dir, segment))?;
                let end = file.metadata()?.len();
                Writer {
                    segment,
                    file,
                    end,
                    must_roll: false,
                }
            }
            None => {
                let file = create_segment(&dir, 1)?;
                sync_dir(&dir)?;
                syncs.fetch_add(1, Ordering::Relaxed);
                Writer {
                    segment: 1,
                    file,
                    end: 0,
                    must_roll: false,
                }
            }
        };
        Ok(Inner {
            dir,
            max_segment_bytes,
            writer: Mutex::new(writer),
            readers: RwLock::new(HashMap::new()),
            syncs,
            _lock: lock,
        })
    }

    fn append(&self, blobs: &[Bytes]) -> io::Result<Vec<BlobRef>> {
        let mut w = match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                // A panic mid-append: the writer state is consistent, but the segment may hold
                // unsynced bytes, so treat it like a failed append.
                let mut g = poisoned.into_inner();
                g.must_roll = true;
                g
            }
        };
        let result = self.append_locked(&mut w, blobs);
        if result.is_err() {
            w.must_roll = true;
        }
        result
    }

    fn append_locked(&self, w: &mut Writer, blobs: &[Bytes]) -> io::Result<Vec<BlobRef>> {
        let mut refs = Vec::with_capacity(blobs.len());
        let mut created = false;
        let mut dirty = false;
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_at = w.end;

        if w.must_roll {
            self.roll(w)?;
            created = true;
            pending_at = w.end;
        }
        for blob in blobs {
            let len = u32::try_from(blob.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "blob too long"))?;
            let record_len = (HEADER_LEN as u64) + u64::from(len);
            if w.end > 0 && w.end.saturating_add(record_len) > self.max_segment_bytes {
                flush(&w.file, &mut pending, &mut pending_at)?;
                if dirty {
                    w.file.sync_data()?;
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                }
                self.roll(w)?;
                created = true;
                pending_at = w.end;
            }
            pending.extend_from_slice(&record::header(blob));
            pending.extend_from_slice(blob);
            refs.push(BlobRef {
                segment: w.segment,
                offset: w.end,
                len,
            });
            w.end += record_len;
            dirty = true;
            if pending.len() >= WRITE_CHUNK {
                flush(&w.file, &mut pending, &mut pending_at)?;
            }
        }
        flush(&w.file, &mut pending, &mut pending_at)?;
        if dirty {
            w.file.sync_data()?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        if created {
            sync_dir(&self.dir)?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(refs)
    }

    /// Starts the next segment file; the caller syncs the directory before acknowledging.
    fn roll(&self, w: &mut Writer) -> io::Result<()> {
        let next = w
            .segment
            .checked_add(1)
            .ok_or_else(|| io::Error::other("segment numbers exhausted"))?;
        let file = create_segment(&self.dir, next)?;
        w.segment = next;
        w.file = file;
        w.end = 0;
        w.must_roll = false;
        Ok(())
    }

    fn read(&self, r: BlobRef) -> io::Result<Bytes> {
        let file = self.reader(r.segment)?;
        let total = (HEADER_LEN as u64) + u64::from(r.len);
        let end = r
            .offset
            .checked_add(total)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "blob ref out of range"))?;
        if end > file.metadata()?.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob {} lies past the end of its segment", r.to_key()),
            ));
        }
        let total = usize::try_from(total)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "blob too large"))?;
        let mut buf = vec![0u8; total];
        read_exact_at(&file, &mut buf, r.offset)?;
        record::open(Bytes::from(buf), r.len, &r.to_key())
    }

    /// A cached read-only handle on segment `segment`.
    fn reader(&self, segment: u32) -> io::Result<Arc<File>> {
        if let Some(f) = self
            .readers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&segment)
        {
            return Ok(Arc::clone(f));
        }
        let file = Arc::new(File::open(segment_path(&self.dir, segment))?);
        let mut map = self.readers.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CACHED_READERS {
            // Handles still in use by in-flight reads stay open through their Arc.
            map.clear();
        }
        map.insert(segment, Arc::clone(&file));
        Ok(file)
    }
}

/// Writes `pending` at `*at` and advances `*at`.
fn flush(file: &File, pending: &mut Vec<u8>, at: &mut u64) -> io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    write_all_at(file, pending, *at)?;
    *at += pending.len() as u64;
    pending.clear();
    Ok(())
}

fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:06}.{SEGMENT_EXT}"))
}

/// `000042.seg` → 42; anything else → None.
fn parse_segment_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".seg")?;
    parse_digits(stem)
}

fn create_segment(dir: &Path, segment: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(segment_path(dir, segment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn blob(i: usize, len: usize) -> Bytes {
        Bytes::from((0..len).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>())
    }

    #[test]
    fn keys_round_trip_and_only_canonical_keys_parse() {
        let r = BlobRef {
            segment: 1,
            offset: 1234,
            len: 5678,
        };
        assert_eq!(r.to_key(), "s/000001/1234/5678");
        assert_eq!(BlobRef::parse_key("s/000001/1234/5678"), Some(r));
        let big = BlobRef {
            segment: u32::MAX,
            offset: u64::MAX,
            len: u32::MAX,
        };
        assert_eq!(BlobRef::parse_key(&big.to_key()), Some(big));
        for bad in [
            "",
            "s/",
            "s/000001/1234",
            "s/000001/1234/5678/9",
            "s/1/1234/5678",
            "s/000001/01234/5678",
            "s/000001/+1234/5678",
            "s/000001/1234/-1",
            "x/000001/1234/5678",
            "s/000001/1234/99999999999",
            "s/000001/ 1234/5678",
            "faces/1/a.jpg",
        ] {
            assert_eq!(BlobRef::parse_key(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn round_trip_across_segment_rolls() {
        let dir = tempfile::tempdir().unwrap();
        // 40-byte blobs make 52-byte records: three per 200-byte segment.
        let store = SegmentStore::open(dir.path(), 200).await.unwrap();
        let blobs: Vec<Bytes> = (0..10).map(|i| blob(i, 40)).collect();
        let refs = store.append_durable(&blobs).await.unwrap();
        assert_eq!(refs.len(), 10);
        let segments: Vec<u32> = refs.iter().map(|r| r.segment).collect();
        assert_eq!(segments, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
        assert_eq!(refs[1].offset, 52);
        assert_eq!(refs[3].offset, 0);
        for (r, b) in refs.iter().zip(&blobs) {
            assert_eq!(&store.read(*r).await.unwrap(), b);
        }
        for n in 1..=4 {
            assert!(dir.path().join(format!("{n:06}.seg")).is_file());
        }
        // Group commit: one fdatasync per segment touched + one directory fsync (plus the
        // directory fsync when open created segment 1).
        assert_eq!(store.sync_count(), 1 + 4 + 1);
    }

    #[tokio::test]
    async fn one_fdatasync_for_a_batch_within_one_segment() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(dir.path(), 1 << 30).await.unwrap();
        let before = store.sync_count();
        let blobs: Vec<Bytes> = (0..100).map(|i| blob(i, 1000)).collect();
        let refs = store.append_durable(&blobs).await.unwrap();
        assert_eq!(store.sync_count() - before, 1);
        assert_eq!(store.read(refs[99]).await.unwrap(), blobs[99]);
        assert!(store.append_durable(&[]).await.unwrap().is_empty());
        assert_eq!(store.sync_count() - before, 1);
    }

    #[tokio::test]
    async fn an_oversized_blob_goes_alone_into_a_fresh_segment() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(dir.path(), 100).await.unwrap();
        let blobs = [blob(0, 10), blob(1, 500), blob(2, 10), Bytes::new()];
        let refs = store.append_durable(&blobs).await.unwrap();
        assert_eq!((refs[0].segment, refs[0].offset), (1, 0));
        assert_eq!((refs[1].segment, refs[1].offset), (2, 0));
        assert_eq!((refs[2].segment, refs[2].offset), (3, 0));
        assert_eq!((refs[3].segment, refs[3].offset), (3, 22));
        for (r, b) in refs.iter().zip(&blobs) {
            assert_eq!(&store.read(*r).await.unwrap(), b);
        }
    }

    #[tokio::test]
    async fn reopen_continues_appending_and_old_refs_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let first: Vec<Bytes> = (0..5).map(|i| blob(i, 30)).collect();
        let refs1 = {
            let store = SegmentStore::open(dir.path(), 150).await.unwrap();
            store.append_durable(&first).await.unwrap()
        };
        let last = *refs1.last().unwrap();
        let store = SegmentStore::open(dir.path(), 150).await.unwrap();
        for (r, b) in refs1.iter().zip(&first) {
            assert_eq!(&store.read(*r).await.unwrap(), b);
        }
        let more = store.append_durable(&[blob(9, 20)]).await.unwrap();
        assert_eq!(more[0].segment, last.segment);
        assert_eq!(more[0].offset, last.offset + 12 + 30);
        assert_eq!(store.read(more[0]).await.unwrap(), blob(9, 20));
        // Keys stored in a database survive the reopen too.
        let key = refs1[0].to_key();
        drop(store);
        let store = SegmentStore::open(dir.path(), 150).await.unwrap();
        let r = BlobRef::parse_key(&key).unwrap();
        assert_eq!(store.read(r).await.unwrap(), first[0]);
    }

    #[tokio::test]
    async fn a_torn_tail_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let blobs: Vec<Bytes> = (0..3).map(|i| blob(i, 64)).collect();
        let refs = {
            let store = SegmentStore::open(dir.path(), 1 << 20).await.unwrap();
            store.append_durable(&blobs).await.unwrap()
        };
        // Simulate a crash mid-write: half a header and some payload bytes.
        let seg = dir.path().join("000001.seg");
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"RCB1\x40\x00\x00\x00garbage").unwrap();
        drop(f);
        let garbage_end = fs::metadata(&seg).unwrap().len();

        let store = SegmentStore::open(dir.path(), 1 << 20).await.unwrap();
        for (r, b) in refs.iter().zip(&blobs) {
            assert_eq!(&store.read(*r).await.unwrap(), b);
        }
        let later = store.append_durable(&[blob(7, 10)]).await.unwrap();
        assert_eq!(later[0].offset, garbage_end);
        assert_eq!(store.read(later[0]).await.unwrap(), blob(7, 10));
        // A ref into the garbage is refused, not misread.
        let torn = BlobRef {
            segment: 1,
            offset: refs[2].offset + 12 + 64,
            len: 64,
        };
        assert!(store.read(torn).await.is_err());
    }

    #[tokio::test]
    async fn corruption_and_bad_refs_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(dir.path(), 1 << 20).await.unwrap();
        let refs = store
            .append_durable(&[blob(1, 100), blob(2, 100)])
            .await
            .unwrap();
        let seg = dir.path().join("000001.seg");
        let mut data = fs::read(&seg).unwrap();
        data[refs[0].offset as usize + HEADER_LEN + 50] ^= 0x01;
        fs::write(&seg, &data).unwrap();

        let err = store.read(refs[0]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(store.read(refs[1]).await.unwrap(), blob(2, 100));

        let wrong_len = BlobRef { len: 99, ..refs[1] };
        assert_eq!(
            store.read(wrong_len).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let wrong_offset = BlobRef {
            offset: 1,
            ..refs[0]
        };
        assert_eq!(
            store.read(wrong_offset).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let past_end = BlobRef {
            offset: 10_000,
            ..refs[0]
        };
        assert_eq!(
            store.read(past_end).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let huge = BlobRef {
            offset: u64::MAX - 3,
            ..refs[0]
        };
        assert!(store.read(huge).await.is_err());
        let missing = BlobRef {
            segment: 42,
            ..refs[0]
        };
        assert_eq!(
            store.read(missing).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(dir.path(), 1 << 20).await.unwrap();
        let err = SegmentStore::open(dir.path(), 1 << 20).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(store);
        SegmentStore::open(dir.path(), 1 << 20).await.unwrap();
    }

    #[tokio::test]
    async fn other_files_in_the_dir_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        fs::write(dir.path().join("000009.seg.tmp"), b"x").unwrap();
        fs::write(dir.path().join("abc.seg"), b"x").unwrap();
        fs::write(dir.path().join("000003.seg"), b"").unwrap();
        let store = SegmentStore::open(dir.path(), 1 << 20).await.unwrap();
        let r = store.append_durable(&[blob(0, 5)]).await.unwrap();
        assert_eq!((r[0].segment, r[0].offset), (3, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_while_appending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SegmentStore::open(dir.path(), 4096).await.unwrap());
        let seed: Vec<Bytes> = (0..20).map(|i| blob(i, 100)).collect();
        let seed_refs = store.append_durable(&seed).await.unwrap();

        let writer = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut all = Vec::new();
                for round in 0..30 {
                    let batch: Vec<Bytes> = (0..10).map(|i| blob(round * 10 + i, 150)).collect();
                    let refs = store.append_durable(&batch).await.unwrap();
                    // Freshly committed blobs are readable at once.
                    assert_eq!(store.read(refs[9]).await.unwrap(), batch[9]);
                    all.extend(refs.into_iter().zip(batch));
                }
                all
            })
        };
        let mut readers = Vec::new();
        for k in 0..4 {
            let store = Arc::clone(&store);
            let seed = seed.clone();
            let seed_refs = seed_refs.clone();
            readers.push(tokio::spawn(async move {
                for n in 0..200 {
                    let i = (n * 7 + k) % seed.len();
                    assert_eq!(store.read(seed_refs[i]).await.unwrap(), seed[i]);
                }
            }));
        }
        for r in readers {
            r.await.unwrap();
        }
        let all = writer.await.unwrap();
        assert!(all.iter().map(|(r, _)| r.segment).max().unwrap() > 5);
        for (r, b) in all {
            assert_eq!(store.read(r).await.unwrap(), b);
        }
    }
}
