//! [`ObjectBlobs`]: the blob store in an S3-compatible object store, shared by every node.
//!
//! - Attendance photos keep group commit's economy: a batch of sign-ins is **one object**
//!   (`attendance/{day}/{batch}.seg`, the segment record format of [`super::record`]), made
//!   durable by one PUT, and each photo's key names the object and its place in it
//!   (`o/{day}/{batch}/{offset}/{len}`). A read is one ranged GET whose record header and
//!   CRC are checked, so a key never yields other bytes. Batch names are 128 random bits:
//!   nodes never write the same object.
//! - Faces, firmware and import reports are one object per key, under the same key.
//!
//! PUTs are retried by `object_store` itself (bounded); when a PUT fails the batch is not
//! acknowledged, exactly as with a failed `fdatasync` on the local store.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use super::local::refuse_photo_keys;
use super::record::{self, HEADER_LEN, parse_digits};
use super::{BlobStore, files::check_key};
use crate::runtime::util::{fill_random, now_ms};

/// Blobs in an object store (see the module docs).
#[derive(Debug, Clone)]
pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    /// For logs: `s3://bucket/prefix`.
    location: String,
}

/// Where a batch photo lives: object and record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchRef {
    day: String,
    batch: String,
    offset: u64,
    len: u32,
}

impl BatchRef {
    fn key(&self) -> String {
        format!("o/{}/{}/{}/{}", self.day, self.batch, self.offset, self.len)
    }

    fn object(&self) -> Path {
        Path::from(format!("attendance/{}/{}.seg", self.day, self.batch))
    }

    /// Parses the canonical form only: `o/{8 digits}/{32 hex}/{offset}/{len}`.
    fn parse(key: &str) -> Option<Self> {
        let mut parts = key.strip_prefix("o/")?.split('/');
        let day = parts.next()?;
        let batch = parts.next()?;
        let offset = parse_digits::<u64>(parts.next()?)?;
        let len = parse_digits::<u32>(parts.next()?)?;
        if parts.next().is_some()
            || day.len() != 8
            || !day.bytes().all(|b| b.is_ascii_digit())
            || batch.len() != 32
            || !batch
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let r = BatchRef {
            day: day.to_owned(),
            batch: batch.to_owned(),
            offset,
            len,
        };
        (r.key() == key).then_some(r)
    }
}

impl ObjectBlobs {
    /// Blobs in `store` (already scoped to the configured bucket and prefix).
    pub fn new(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Self {
        ObjectBlobs {
            store,
            location: location.into(),
        }
    }

    /// Writes and reads back a small object: the store is reachable, the bucket exists and
    /// the credentials may write (checked at startup, so a misconfigured node does not start).
    pub async fn probe(&self) -> io::Result<()> {
        let path = Path::from("rollcall/probe");
        let mut nonce = [0u8; 8];
        fill_random(&mut nonce);
        let body = Bytes::from(hex::encode(nonce));
        self.store
            .put(&path, PutPayload::from_bytes(body.clone()))
            .await
            .map_err(to_io)?;
        let back = self
            .store
            .get(&path)
            .await
            .map_err(to_io)?
            .bytes()
            .await
            .map_err(to_io)?;
        if back != body {
            return Err(io::Error::other(
                "the object store answered other bytes than written",
            ));
        }
        Ok(())
    }

    /// The object store itself (migrate-data copies into it).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

#[async_trait]
impl BlobStore for ObjectBlobs {
    async fn put_batch(&self, photos: &[Bytes]) -> io::Result<Vec<String>> {
        if photos.is_empty() {
            return Ok(Vec::new());
        }
        let day = jiff::Timestamp::from_millisecond(now_ms())
            .map_err(io::Error::other)?
            .strftime("%Y%m%d")
            .to_string();
        let mut id = [0u8; 16];
        fill_random(&mut id);
        let batch = hex::encode(id);
        let total: usize = photos.iter().map(|p| HEADER_LEN + p.len()).sum();
        let mut body = Vec::with_capacity(total);
        let mut refs = Vec::with_capacity(photos.len());
        for photo in photos {
            let len = u32::try_from(photo.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "blob too long"))?;
            refs.push(BatchRef {
                day: day.clone(),
                batch: batch.clone(),
                offset: body.len() as u64,
                len,
            });
            body.extend_from_slice(&record::header(photo));
            body.extend_from_slice(photo);
        }
        let Some(first) = refs.first() else {
            return Ok(Vec::new());
        };
        self.store
            .put(&first.object(), PutPayload::from(body))
            .await
            .map_err(to_io)?;
        Ok(refs.iter().map(BatchRef::key).collect())
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        refuse_photo_keys(key)?;
        check_key(key)?;
        self.store
            .put(&Path::from(key), PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(to_io)
    }

    async fn get(&self, key: &str) -> io::Result<Bytes> {
        if key.starts_with("o/") {
            let r = BatchRef::parse(key).ok_or_else(|| invalid_key(key))?;
            let end = r.offset + (HEADER_LEN as u64) + u64::from(r.len);
            let bytes = self
                .store
                .get_range(&r.object(), r.offset..end)
                .await
                .map_err(to_io)?;
            return record::open(bytes, r.len, key);
        }
        if key.starts_with("s/") {
            // A photo on some node's local disk: never in the shared store (migrate-data
            // rewrites such keys when it copies the photos here).
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{key} lives on a node's local disk"),
            ));
        }
        check_key(key)?;
        let got = self.store.get(&Path::from(key)).await.map_err(to_io)?;
        got.bytes().await.map_err(to_io)
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        refuse_photo_keys(key)?;
        check_key(key)?;
        match self.store.delete(&Path::from(key)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }

    fn describe(&self) -> String {
        self.location.clone()
    }

    fn shared(&self) -> bool {
        true
    }
}

/// Opens the S3-compatible store `url` names (`s3://bucket` or `s3://bucket/prefix`).
///
/// Endpoint, credentials and region come from the standard `AWS_*` environment
/// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ALLOW_HTTP`), then from `options` (object_store's S3 keys such as `aws_endpoint`,
/// the setting `photo_store_options`). Requests are retried a few times and time out, so a
/// sign-in batch never waits minutes on a store that is down: it fails and the devices resend.
pub fn open_s3(url: &str, options: &BTreeMap<String, String>) -> Result<ObjectBlobs, String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url}: object stores other than s3:// are not supported"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url}: no bucket named"));
    }
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
        ..RetryConfig::default()
    };
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30));
    // Our timeouts first, then the environment (as `AmazonS3Builder::from_env` reads it),
    // then the options: whatever the operator sets wins.
    let mut builder = AmazonS3Builder::new()
        .with_retry(retry)
        .with_client_options(client);
    for (key, value) in std::env::vars() {
        if key.starts_with("AWS_")
            && let Ok(parsed) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
        {
            builder = builder.with_config(parsed, value);
        }
    }
    builder = builder.with_bucket_name(bucket);
    for (key, value) in options {
        let parsed: AmazonS3ConfigKey = key
            .parse()
            .map_err(|e| format!("photo_store_options.{key}: {e}"))?;
        builder = builder.with_config(parsed, value);
    }
    let s3 = builder.build().map_err(|e| format!("{url}: {e}"))?;
    let prefix = prefix.trim_matches('/');
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix))
    };
    Ok(ObjectBlobs::new(store, url))
}

fn invalid_key(key: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a photo key: {key}"),
    )
}

/// Object-store errors as I/O errors: a missing object is `NotFound` (404 to browsers),
/// anything else is logged by the caller and answered 500.
fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            io::Error::new(io::ErrorKind::NotFound, e.to_string())
        }
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn blobs() -> ObjectBlobs {
        ObjectBlobs::new(Arc::new(InMemory::new()), "memory")
    }

    #[tokio::test]
    async fn a_batch_is_one_object_and_each_key_reads_back_its_own_photo() {
        let b = blobs();
        let photos = vec![
            Bytes::from_static(b"first"),
            Bytes::from_static(b"second photo"),
        ];
        let keys = b.put_batch(&photos).await.unwrap();
        assert_eq!(keys.len(), 2);
        for (k, p) in keys.iter().zip(&photos) {
            assert_eq!(&b.get(k).await.unwrap(), p);
        }
        let objects: Vec<_> = futures_util::TryStreamExt::try_collect::<Vec<_>>(
            b.store().list(Some(&Path::from("attendance"))),
        )
        .await
        .unwrap();
        assert_eq!(objects.len(), 1, "one object per batch");
    }

    #[tokio::test]
    async fn a_key_that_does_not_point_at_its_photo_is_refused_never_answered_with_other_bytes() {
        let b = blobs();
        let keys = b
            .put_batch(&[Bytes::from_static(b"aaaa"), Bytes::from_static(b"bbbb")])
            .await
            .unwrap();
        let r = BatchRef::parse(&keys[1]).unwrap();
        // Off by one, a wrong length, another batch, a local segment key.
        let shifted = BatchRef {
            offset: r.offset + 1,
            ..r.clone()
        }
        .key();
        assert_eq!(
            b.get(&shifted).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let longer = BatchRef {
            len: r.len + 1,
            ..r.clone()
        }
        .key();
        assert!(b.get(&longer).await.is_err());
        let other = BatchRef {
            batch: "0".repeat(32),
            ..r.clone()
        }
        .key();
        assert_eq!(
            b.get(&other).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            b.get("s/000001/0/4").await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn files_round_trip_and_photo_keys_cannot_be_overwritten() {
        let b = blobs();
        b.put("faces/1/a.jpg", b"face").await.unwrap();
        assert_eq!(b.get("faces/1/a.jpg").await.unwrap(), "face");
        b.delete("faces/1/a.jpg").await.unwrap();
        assert_eq!(
            b.get("faces/1/a.jpg").await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        b.delete("faces/1/a.jpg").await.unwrap();
        assert!(b.put("o/x", b"").await.is_err());
        assert!(b.put("../x", b"").await.is_err());
    }

    #[test]
    fn batch_keys_parse_only_in_canonical_form() {
        let k = format!("o/20261205/{}/12/34", "ab".repeat(16));
        assert_eq!(BatchRef::parse(&k).unwrap().key(), k);
        for bad in [
            format!("o/20261205/{}/012/34", "ab".repeat(16)),
            format!("o/2026125/{}/12/34", "ab".repeat(16)),
            format!("o/20261205/{}/12/34", "AB".repeat(16)),
            format!("o/20261205/{}/12/34/5", "ab".repeat(16)),
            "o/".to_owned(),
        ] {
            assert!(BatchRef::parse(&bad).is_none(), "{bad}");
        }
    }
}
