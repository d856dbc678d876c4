//! The twin's S3 implementation: s3s-fs, plus what AWS does around a stored object.
//!
//! - Every object stored (PutObject, POST Object, CopyObject, CompleteMultipartUpload) is
//!   announced to [`ObjectEvents`] with the facts S3 puts in its EventBridge "Object Created"
//!   event; the request answers only once the announcement is done, so a 2xx means the object
//!   is stored *and* its processing is durably started.
//! - Before storing, [`ObjectEvents::admit`] may refuse with 503 SlowDown (back-pressure), so a
//!   refused upload changes nothing.
//! - GetObject honours If-Match and If-None-Match, which s3s-fs ignores: the steps read the exact
//!   object an event announced.
//! - GetObject streams the object (or the range asked for) in reads of up to 8 MiB. s3s-fs reads
//!   4 KiB at a time, each read a round trip through tokio's blocking pool (two thread
//!   wake-ups): serving a 5 MB photo that way cost more CPU than decoding it, and read-exif's
//!   256 KiB prefix took 64 round trips.

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use imgflow_steps::pipeline::StoredObject;
use s3s::dto::*;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};

/// Who hears about stored objects.
#[async_trait::async_trait]
pub trait ObjectEvents: Send + Sync + 'static {
    /// Called before an object is stored at `bucket`/`key`; an error refuses the request
    /// before anything changes.
    fn admit(&self, bucket: &str, key: &str) -> S3Result<()>;
    /// Called once an object is stored; the request fails if this does.
    async fn stored(&self, object: StoredObject) -> S3Result<()>;
}

/// Announces nothing (an S3 endpoint on its own).
pub struct Silent;

#[async_trait::async_trait]
impl ObjectEvents for Silent {
    fn admit(&self, _bucket: &str, _key: &str) -> S3Result<()> {
        Ok(())
    }

    async fn stored(&self, _object: StoredObject) -> S3Result<()> {
        Ok(())
    }
}

/// s3s-fs with announcements; cheap to clone (the twin keeps one for its upload API).
#[derive(Clone)]
pub struct AnnouncingFs {
    inner: Arc<Inner>,
}

struct Inner {
    fs: s3s_fs::FileSystem,
    /// s3s-fs's root folder, where `{bucket}/{key}` are files.
    root: PathBuf,
    events: Arc<dyn ObjectEvents>,
    sequencer: Sequencer,
    region: String,
    account: String,
}

/// S3's `sequencer`: a hex string that grows with every write (lexicographic order is write
/// order), here from the clock in nanoseconds so that it also grows across restarts.
struct Sequencer(AtomicU64);

impl Sequencer {
    fn new() -> Sequencer {
        Sequencer(AtomicU64::new(0))
    }

    fn next(&self) -> String {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default().max(0) as u64;
        let previous = self.0.fetch_max(now, Ordering::SeqCst);
        let value = if previous >= now { self.0.fetch_add(1, Ordering::SeqCst) + 1 } else { now };
        format!("{value:018X}")
    }
}

/// Why an object was stored, as the event's `reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreReason {
    PutObject,
    PostObject,
    CopyObject,
    CompleteMultipartUpload,
}

impl StoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreReason::PutObject => "PutObject",
            StoreReason::PostObject => "POST Object",
            StoreReason::CopyObject => "CopyObject",
            StoreReason::CompleteMultipartUpload => "CompleteMultipartUpload",
        }
    }
}

impl AnnouncingFs {
    /// `root` is the folder `fs` was opened on.
    pub fn new(fs: s3s_fs::FileSystem, root: &Path, events: Arc<dyn ObjectEvents>) -> std::io::Result<AnnouncingFs> {
        // Resolved as s3s-fs resolves it, so that both name the same files.
        let root = std::env::current_dir()?.join(root).canonicalize()?;
        Ok(AnnouncingFs {
            inner: Arc::new(Inner {
                fs,
                root,
                events,
                sequencer: Sequencer::new(),
                region: "us-east-1".to_owned(),
                account: "123456789012".to_owned(),
            }),
        })
    }

    /// Stores `body` at `bucket`/`key` as a PutObject would (the upload API uses this), with the
    /// same admission and announcement.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        content_type: Option<String>,
        body: bytes::Bytes,
    ) -> S3Result<StoredObject> {
        let length = i64::try_from(body.len()).map_err(|_| s3_error!(EntityTooLarge))?;
        let input = PutObjectInput::builder()
            .bucket(bucket.to_owned())
            .key(key.to_owned())
            .content_length(Some(length))
            .content_type(content_type)
            .body(Some(StreamingBlob::from(s3s::Body::from(body))))
            .build()
            .map_err(|e| s3_error!(InternalError, "cannot build the PutObject request: {e}"))?;
        let uri = format!("/{bucket}/{key}").parse().map_err(|_| s3_error!(InvalidURI))?;
        let request = internal_request(input, http::Method::PUT, uri);
        let (_, object) = self.store(bucket, key, StoreReason::PutObject, self.inner.fs.put_object(request)).await?;
        Ok(object)
    }

    /// Admits a write to `bucket`/`key`, runs it (the future does nothing until awaited), then
    /// announces the stored object; the write's answer comes back only once that is done.
    async fn store<T>(
        &self,
        bucket: &str,
        key: &str,
        reason: StoreReason,
        write: impl Future<Output = S3Result<T>>,
    ) -> S3Result<(T, StoredObject)> {
        self.inner.events.admit(bucket, key)?;
        let written = write.await?;
        let object = self.announce(bucket, key, reason).await?;
        Ok((written, object))
    }

    /// Builds the facts of a stored object and announces them.
    async fn announce(&self, bucket: &str, key: &str, reason: StoreReason) -> S3Result<StoredObject> {
        let head = HeadObjectInput::builder()
            .bucket(bucket.to_owned())
            .key(key.to_owned())
            .build()
            .map_err(|e| s3_error!(InternalError, "cannot build the HeadObject request: {e}"))?;
        let stat = self
            .inner
            .fs
            .head_object(internal_request(head, http::Method::HEAD, http::Uri::from_static("/")))
            .await?
            .output;
        let object = StoredObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: stat.content_length.unwrap_or_default().max(0) as u64,
            etag: stat.e_tag.map(|etag| etag.value().to_owned()),
            version_id: None,
            sequencer: Some(self.inner.sequencer.next()),
            request_id: Some(uuid::Uuid::new_v4().simple().to_string()[..16].to_uppercase()),
            reason: reason.as_str().to_owned(),
            time: chrono::Utc::now(),
            region: self.inner.region.clone(),
            account: self.inner.account.clone(),
        };
        self.inner.events.stored(object.clone()).await?;
        Ok(object)
    }
}

/// An object's file, opened before s3s-fs answers a GetObject and used for the body only if it is
/// still the file at the object's path afterwards (objects are replaced by rename, never
/// rewritten in place), so that the body always matches the ETag and length s3s-fs answered.
struct OpenedObject {
    file: Arc<std::fs::File>,
    path: PathBuf,
    identity: (u64, u64),
    length: u64,
}

/// Bytes read from an object's file per blocking-pool task: a photo in one or two.
const READ_CHUNK: u64 = 8 << 20;

/// The bytes of an object a GetObject answer serves: `length` bytes from `offset`, out of an
/// object of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    offset: u64,
    length: u64,
    total: u64,
}

impl Span {
    /// From the answer's Content-Length and, for a range, its Content-Range
    /// (`bytes FIRST-LAST/TOTAL`); `None` when they do not describe one span of known size.
    fn of_answer(content_length: Option<i64>, content_range: Option<&str>) -> Option<Span> {
        let length = u64::try_from(content_length?).ok()?;
        let Some(range) = content_range else {
            return Some(Span { offset: 0, length, total: length });
        };
        let (first_last, total) = range.strip_prefix("bytes ")?.split_once('/')?;
        let (first, last) = first_last.split_once('-')?;
        let (offset, last, total): (u64, u64, u64) = (first.parse().ok()?, last.parse().ok()?, total.parse().ok()?);
        (last.checked_sub(offset)?.checked_add(1)? == length && last < total).then_some(Span { offset, length, total })
    }
}

impl OpenedObject {
    async fn open(root: &Path, bucket: &str, key: &str) -> Option<OpenedObject> {
        use path_absolutize::Absolutize;
        let path = Path::new(bucket).join(key).absolutize_virtually(root).ok()?.into_owned();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).ok()?;
            let metadata = file.metadata().ok()?;
            metadata.is_file().then(|| OpenedObject {
                file: Arc::new(file),
                identity: (metadata.dev(), metadata.ino()),
                length: metadata.len(),
                path,
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// The body for `span`, if this file is still the object and is the size s3s-fs answered for.
    async fn into_body(self, span: Span) -> Option<StreamingBlob> {
        if span.total != self.length {
            return None;
        }
        let path = self.path.clone();
        let current = tokio::task::spawn_blocking(move || std::fs::metadata(path).ok()).await.ok().flatten()?;
        if (current.dev(), current.ino()) != self.identity {
            return None;
        }
        let file = self.file;
        let end = span.offset + span.length;
        let chunks = futures::stream::try_unfold(span.offset, move |offset| {
            let file = file.clone();
            async move {
                if offset >= end {
                    return Ok(None);
                }
                let size = (end - offset).min(READ_CHUNK);
                let chunk = tokio::task::spawn_blocking(move || read_chunk(&file, offset, size))
                    .await
                    .map_err(std::io::Error::other)??;
                Ok::<_, std::io::Error>(Some((chunk, offset + size)))
            }
        });
        Some(StreamingBlob::wrap(chunks))
    }
}

/// `size` bytes at `offset`, into a buffer that is not zeroed first; a file cut short is an error.
fn read_chunk(file: &std::fs::File, offset: u64, size: u64) -> std::io::Result<bytes::Bytes> {
    use std::io::{Read, Seek, SeekFrom};
    // The handle is this request's own and its chunks are read one after the other, so its
    // position is free to move.
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    let mut buffer = Vec::with_capacity(size as usize);
    file.take(size).read_to_end(&mut buffer)?;
    if buffer.len() as u64 != size {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
    }
    Ok(bytes::Bytes::from(buffer))
}

/// A request the twin makes of s3s-fs itself: no HTTP headers, no signature.
fn internal_request<T>(input: T, method: http::Method, uri: http::Uri) -> S3Request<T> {
    S3Request {
        input,
        method,
        uri,
        headers: http::HeaderMap::new(),
        extensions: http::Extensions::new(),
        credentials: None,
        region: None,
        service: Some("s3".to_owned()),
        trailing_headers: None,
    }
}

fn precondition_failed() -> S3Error {
    s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
}

/// Forwards an operation to s3s-fs unchanged (the signature async_trait gives trait methods).
macro_rules! forward {
    ($($method:ident($input:ident) -> $output:ident;)*) => {
        $(
            fn $method<'life0, 'async_trait>(
                &'life0 self,
                req: S3Request<$input>,
            ) -> Pin<Box<dyn Future<Output = S3Result<S3Response<$output>>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                self.inner.fs.$method(req)
            }
        )*
    };
}

#[async_trait::async_trait]
impl S3 for AnnouncingFs {
    forward! {
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
        delete_object(DeleteObjectInput) -> DeleteObjectOutput;
        delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        head_object(HeadObjectInput) -> HeadObjectOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
        list_objects(ListObjectsInput) -> ListObjectsOutput;
        list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
        upload_part(UploadPartInput) -> UploadPartOutput;
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
        list_parts(ListPartsInput) -> ListPartsOutput;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let if_match = req.input.if_match.clone();
        let if_none_match = req.input.if_none_match.clone();
        let opened = OpenedObject::open(&self.inner.root, &req.input.bucket, &req.input.key).await;
        let mut response = self.inner.fs.get_object(req).await?;
        let etag = response.output.e_tag.as_ref();
        if let Some(ETagCondition::ETag(expected)) = &if_match
            && !etag.is_some_and(|etag| etag.strong_cmp(expected))
        {
            return Err(precondition_failed());
        }
        if let Some(condition) = &if_none_match {
            let matches = match condition {
                ETagCondition::Any => true,
                ETagCondition::ETag(expected) => etag.is_some_and(|etag| etag.weak_cmp(expected)),
            };
            if matches {
                return Err(s3_error!(NotModified));
            }
        }
        if let Some(opened) = opened
            && let Some(span) =
                Span::of_answer(response.output.content_length, response.output.content_range.as_deref())
            && let Some(body) = opened.into_body(span).await
        {
            response.output.body = Some(body);
        }
        Ok(response)
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let write = self.inner.fs.put_object(req);
        Ok(self.store(&bucket, &key, StoreReason::PutObject, write).await?.0)
    }

    async fn post_object(&self, req: S3Request<PostObjectInput>) -> S3Result<S3Response<PostObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let write = self.inner.fs.post_object(req);
        Ok(self.store(&bucket, &key, StoreReason::PostObject, write).await?.0)
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let write = self.inner.fs.copy_object(req);
        Ok(self.store(&bucket, &key, StoreReason::CopyObject, write).await?.0)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let write = async {
            let mut response = self.inner.fs.complete_multipart_upload(req).await?;
            // s3s-fs leaves the output in a future (for keep-alive); the object is complete already.
            if let Some(future) = response.output.future.take() {
                response.output = future.await?;
            }
            Ok(response)
        };
        Ok(self.store(&bucket, &key, StoreReason::CompleteMultipartUpload, write).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_grow_in_lexicographic_order() {
        let sequencer = Sequencer::new();
        let values: Vec<String> = (0..1000).map(|_| sequencer.next()).collect();
        assert!(values.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(values.iter().all(|v| v.len() == 18));
    }

    async fn body_bytes(body: StreamingBlob) -> Vec<u8> {
        use futures::TryStreamExt;
        body.try_collect::<Vec<_>>().await.unwrap().concat()
    }

    #[test]
    fn spans_come_from_the_answered_length_and_range() {
        assert_eq!(Span::of_answer(Some(10), None), Some(Span { offset: 0, length: 10, total: 10 }));
        assert_eq!(Span::of_answer(Some(5), Some("bytes 10-14/100")), Some(Span { offset: 10, length: 5, total: 100 }));
        for (length, range) in [
            (Some(6), Some("bytes 10-14/100")),
            (Some(5), Some("bytes 10-14/14")),
            (Some(5), Some("bytes 14-10/100")),
            (Some(5), Some("items 10-14/100")),
            (Some(5), Some("bytes 10-14/*")),
            (None, None),
            (Some(-1), None),
        ] {
            assert_eq!(Span::of_answer(length, range), None, "{length:?} {range:?}");
        }
    }

    #[tokio::test]
    async fn objects_and_ranges_are_read_in_large_chunks_only_while_they_are_still_the_object() {
        let root = tempfile::tempdir().unwrap();
        let bucket = root.path().join("images");
        std::fs::create_dir_all(bucket.join("uploads")).unwrap();
        let content: Vec<u8> = (0..(READ_CHUNK as usize * 2 + 5)).map(|i| (i % 251) as u8).collect();
        let total = content.len() as u64;
        std::fs::write(bucket.join("uploads/a"), &content).unwrap();
        let whole = Span { offset: 0, length: total, total };

        let opened = OpenedObject::open(root.path(), "images", "uploads/a").await.unwrap();
        let body = opened.into_body(whole).await.expect("the same file");
        assert_eq!(body_bytes(body).await, content);

        // A range across a chunk boundary, and one at the end.
        for (offset, length) in [(READ_CHUNK - 3, 10), (total - 4, 4)] {
            let opened = OpenedObject::open(root.path(), "images", "uploads/a").await.unwrap();
            let body = opened.into_body(Span { offset, length, total }).await.expect("the same file");
            assert_eq!(body_bytes(body).await, &content[offset as usize..(offset + length) as usize]);
        }

        // A size other than the file's (s3s-fs answered for another version): not served.
        let opened = OpenedObject::open(root.path(), "images", "uploads/a").await.unwrap();
        assert!(opened.into_body(Span { offset: 0, length: 10, total: 10 }).await.is_none());

        // Replaced after opening (as s3s-fs replaces: a new file renamed over it): not served.
        let opened = OpenedObject::open(root.path(), "images", "uploads/a").await.unwrap();
        std::fs::write(root.path().join("replacement"), b"new").unwrap();
        std::fs::rename(root.path().join("replacement"), bucket.join("uploads/a")).unwrap();
        assert!(opened.into_body(whole).await.is_none());

        // Cut short after opening: the body fails rather than ending early.
        std::fs::write(bucket.join("uploads/b"), &content).unwrap();
        let opened = OpenedObject::open(root.path(), "images", "uploads/b").await.unwrap();
        let body = opened.into_body(whole).await.expect("the same file");
        std::fs::OpenOptions::new().write(true).open(bucket.join("uploads/b")).unwrap().set_len(100).unwrap();
        use futures::TryStreamExt;
        assert!(body.try_collect::<Vec<_>>().await.is_err());

        // Keys cannot leave the root; missing objects open nothing.
        assert!(OpenedObject::open(root.path(), "images", "../../etc/passwd").await.is_none());
        assert!(OpenedObject::open(root.path(), "images", "uploads/missing").await.is_none());
    }
}
