//! The twin's S3 implementation: the operations its clients use (the steps, the upload API,
//! `aws s3`, the SDKs, browsers), answered from the [`ObjectStore`], plus what AWS does around a
//! stored object.
//!
//! - Every object stored (PutObject, POST Object, CopyObject, CompleteMultipartUpload) is
//!   announced to [`ObjectEvents`] with the facts S3 puts in its EventBridge "Object Created"
//!   event; the request answers only once the announcement is done, so a 2xx means the object
//!   is stored *and* its processing is durably started.
//! - Before storing, [`ObjectEvents::admit`] may refuse with 503 SlowDown (back-pressure), so a
//!   refused upload changes nothing.
//! - A body is hashed (MD5 for the ETag, and any checksum the client asks for) as it arrives,
//!   kept in memory up to [`SPILL_AT`] and written, with its record committed, by one blocking
//!   task: a photo costs one file creation and one SQLite commit.
//! - GetObject finds the record, checks If-Match / If-None-Match / If-(Un)Modified-Since, opens
//!   the file and reads the first (up to 8 MiB) chunk in one blocking task.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use imgflow_steps::pipeline::StoredObject;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use super::store::{
    self, Checksums, ListedObject, NewBlob, ObjectAttributes, ObjectRecord, ObjectStore, PartRecord, UploadRecord,
    copy_range, internal,
};

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

/// The object store with announcements; cheap to clone (the twin keeps one for its upload API).
#[derive(Clone)]
pub struct AnnouncingStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: ObjectStore,
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

/// Body bytes kept in memory before they are written out (by a blocking task of their own):
/// a photo stays below it and is written together with its record.
pub const SPILL_AT: usize = 8 << 20;

/// Bytes read from an object's file per blocking task: a photo in one.
const READ_CHUNK: u64 = 8 << 20;

/// S3's smallest part, except the last.
const MIN_PART_SIZE: u64 = 5 << 20;

/// Rows fetched per query while listing.
const LIST_BATCH: usize = 1000;

/// How often a read retries when the object was replaced between finding its record and
/// opening its file.
const REPLACED_RETRIES: usize = 3;

// The s3s inputs and outputs are separate types that share field names; these macros move the
// shared fields between them and the store's records, so that each list is written once.

/// The [`Checksums`] in the `checksum_*` fields of `$value` (a request's declared ones, or a
/// hasher's result).
macro_rules! checksums_of {
    ($value:expr) => {
        Checksums {
            checksum_crc32: $value.checksum_crc32,
            checksum_crc32c: $value.checksum_crc32c,
            checksum_sha1: $value.checksum_sha1,
            checksum_sha256: $value.checksum_sha256,
            checksum_crc64nvme: $value.checksum_crc64nvme,
        }
    };
}

/// The stored headers a write request sets (PutObject, POST Object, CopyObject with REPLACE,
/// CreateMultipartUpload), without checksums.
macro_rules! attributes_of {
    ($input:expr) => {
        ObjectAttributes {
            user_metadata: $input.metadata,
            content_encoding: $input.content_encoding,
            content_type: $input.content_type,
            content_disposition: $input.content_disposition,
            content_language: $input.content_language,
            cache_control: $input.cache_control,
            expires: expires_text($input.expires),
            website_redirect_location: $input.website_redirect_location,
            checksums: Checksums::default(),
        }
    };
}

/// `$output { $fields, the checksums of $checksums, ..Default::default() }`, for the outputs
/// that report an object's checksums.
macro_rules! with_checksums {
    ($output:ident { $($field:ident $(: $value:expr)?),* $(,)? }, $checksums:expr) => {{
        let checksums: Checksums = $checksums;
        $output {
            $($field $(: $value)?,)*
            checksum_crc32: checksums.checksum_crc32,
            checksum_crc32c: checksums.checksum_crc32c,
            checksum_sha1: checksums.checksum_sha1,
            checksum_sha256: checksums.checksum_sha256,
            checksum_crc64nvme: checksums.checksum_crc64nvme,
            ..Default::default()
        }
    }};
}

/// GetObjectOutput or HeadObjectOutput: `$fields`, then what `$record` stores (ETag, date,
/// headers) and `$checksums`.
macro_rules! object_output {
    ($output:ident { $($field:ident $(: $value:expr)?),* $(,)? }, $record:expr, $checksums:expr) => {{
        let record: ObjectRecord = $record;
        let attributes = record.attributes;
        with_checksums!(
            $output {
                $($field $(: $value)?,)*
                last_modified: Some(timestamp(record.modified)),
                e_tag: Some(ETag::Strong(record.etag)),
                expires: expires_timestamp(&attributes),
                metadata: attributes.user_metadata,
                content_encoding: attributes.content_encoding,
                content_type: attributes.content_type,
                content_disposition: attributes.content_disposition,
                content_language: attributes.content_language,
                cache_control: attributes.cache_control,
                website_redirect_location: attributes.website_redirect_location,
            },
            $checksums
        )
    }};
}

/// A body arriving: its bytes so far (the first [`SPILL_AT`] in memory, the rest written out to
/// its file), with the hashes S3 computes over it.
struct Received {
    chunks: Vec<Bytes>,
    written: Option<(NewBlob, std::fs::File)>,
    size: u64,
    md5: [u8; 16],
    checksums: Checksums,
}

impl Received {
    /// Reads `body` to its end, hashing as it comes; `hasher` computes the checksums asked for.
    async fn read(store: &AnnouncingStore, body: StreamingBlob, mut hasher: ChecksumHasher) -> S3Result<Received> {
        let mut body = body;
        let mut md5 = Md5::new();
        let mut received =
            Received { chunks: Vec::new(), written: None, size: 0, md5: [0; 16], checksums: Checksums::default() };
        let mut buffered = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "the request body could not be read: {e}"))?;
            md5.update(&chunk);
            hasher.update(&chunk);
            received.size += chunk.len() as u64;
            buffered += chunk.len();
            received.chunks.push(chunk);
            if buffered >= SPILL_AT {
                let (chunks, written) = (std::mem::take(&mut received.chunks), received.written.take());
                received.written = Some(store.blocking(move |store| write_out(store, written, chunks)).await?);
                buffered = 0;
            }
        }
        received.md5 = md5.finalize();
        let computed = hasher.finalize();
        received.checksums = checksums_of!(computed);
        Ok(received)
    }

    fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }

    /// Refuses a body whose Content-MD5 or checksums differ from what the request declared.
    fn verify(&self, content_md5: Option<&str>, declared: &Checksums) -> S3Result<()> {
        if let Some(content_md5) = content_md5 {
            use base64::Engine as _;
            let expected = base64::engine::general_purpose::STANDARD
                .decode(content_md5)
                .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64"))?;
            if expected != self.md5 {
                return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."));
            }
        }
        let pairs = [
            ("crc32", &declared.checksum_crc32, &self.checksums.checksum_crc32),
            ("crc32c", &declared.checksum_crc32c, &self.checksums.checksum_crc32c),
            ("sha1", &declared.checksum_sha1, &self.checksums.checksum_sha1),
            ("sha256", &declared.checksum_sha256, &self.checksums.checksum_sha256),
            ("crc64nvme", &declared.checksum_crc64nvme, &self.checksums.checksum_crc64nvme),
        ];
        for (name, declared, computed) in pairs {
            if let Some(declared) = declared
                && Some(declared) != computed.as_ref()
            {
                return Err(s3_error!(BadDigest, "The {name} checksum you specified did not match what we received."));
            }
        }
        Ok(())
    }

    /// Writes what is still in memory to the file (creating it if nothing was written yet);
    /// runs in a blocking task.
    fn finish(self, store: &ObjectStore) -> S3Result<NewBlob> {
        Ok(write_out(store, self.written, self.chunks)?.0)
    }
}

fn write_out(
    store: &ObjectStore,
    written: Option<(NewBlob, std::fs::File)>,
    chunks: Vec<Bytes>,
) -> S3Result<(NewBlob, std::fs::File)> {
    use std::io::Write;
    let (blob, mut file) = match written {
        Some(written) => written,
        None => store.create_blob()?,
    };
    for chunk in &chunks {
        file.write_all(chunk).map_err(|e| internal(blob.name(), e))?;
    }
    Ok((blob, file))
}

/// The checksums a request declares (headers, or trailers once the body is read) and the
/// hasher that computes them, plus the one `x-amz-sdk-checksum-algorithm` names.
fn checksums_asked(declared: &Checksums, algorithm: Option<&ChecksumAlgorithm>) -> S3Result<ChecksumHasher> {
    let mut hasher = ChecksumHasher::default();
    if declared.checksum_crc32.is_some() {
        hasher.crc32 = Some(Default::default());
    }
    if declared.checksum_crc32c.is_some() {
        hasher.crc32c = Some(Default::default());
    }
    if declared.checksum_sha1.is_some() {
        hasher.sha1 = Some(Default::default());
    }
    if declared.checksum_sha256.is_some() {
        hasher.sha256 = Some(Default::default());
    }
    if declared.checksum_crc64nvme.is_some() {
        hasher.crc64nvme = Some(Default::default());
    }
    if let Some(algorithm) = algorithm {
        match algorithm.as_str() {
            ChecksumAlgorithm::CRC32 => hasher.crc32 = Some(Default::default()),
            ChecksumAlgorithm::CRC32C => hasher.crc32c = Some(Default::default()),
            ChecksumAlgorithm::SHA1 => hasher.sha1 = Some(Default::default()),
            ChecksumAlgorithm::SHA256 => hasher.sha256 = Some(Default::default()),
            ChecksumAlgorithm::CRC64NVME => hasher.crc64nvme = Some(Default::default()),
            other => return Err(s3_error!(InvalidRequest, "unsupported checksum algorithm {other}")),
        }
    }
    Ok(hasher)
}

/// Checksums sent as trailers of an aws-chunked body (the SDKs' default) complete the declared ones.
fn with_trailers(mut declared: Checksums, trailers: Option<&s3s::TrailingHeaders>) -> S3Result<Checksums> {
    let Some(headers) = trailers.and_then(s3s::TrailingHeaders::take) else { return Ok(declared) };
    for (name, slot) in [
        ("x-amz-checksum-crc32", &mut declared.checksum_crc32),
        ("x-amz-checksum-crc32c", &mut declared.checksum_crc32c),
        ("x-amz-checksum-sha1", &mut declared.checksum_sha1),
        ("x-amz-checksum-sha256", &mut declared.checksum_sha256),
        ("x-amz-checksum-crc64nvme", &mut declared.checksum_crc64nvme),
    ] {
        if let Some(value) = headers.get(name) {
            *slot = Some(value.to_str().map_err(|_| s3_error!(InvalidArgument, "{name} is not text"))?.to_owned());
        }
    }
    Ok(declared)
}

/// An object about to be written by PutObject or POST Object, as the request describes it.
struct NewObject {
    bucket: String,
    key: String,
    body: Option<StreamingBlob>,
    attributes: ObjectAttributes,
    declared: Checksums,
    algorithm: Option<ChecksumAlgorithm>,
    content_md5: Option<String>,
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
}

fn expires_text(expires: Option<Timestamp>) -> Option<String> {
    let mut text = Vec::new();
    expires?.format(TimestampFormat::DateTime, &mut text).ok()?;
    String::from_utf8(text).ok()
}

fn expires_timestamp(attributes: &ObjectAttributes) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::DateTime, attributes.expires.as_deref()?).ok()
}

/// The source bucket, key and read conditions of CopyObject or UploadPartCopy (the same fields).
macro_rules! copy_source {
    ($input:expr) => {
        match &$input.copy_source {
            CopySource::Bucket { bucket, key, .. } => Ok((
                bucket.to_string(),
                key.to_string(),
                ReadConditions {
                    if_match: $input.copy_source_if_match,
                    if_none_match: $input.copy_source_if_none_match,
                    if_modified_since: $input.copy_source_if_modified_since,
                    if_unmodified_since: $input.copy_source_if_unmodified_since,
                    not_modified_is_failure: true,
                },
            )),
            CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => Err(s3_error!(NotImplemented)),
        }
    };
}

/// Builds a [`NewObject`] from PutObjectInput or PostObjectInput (the same fields).
macro_rules! new_object {
    ($input:expr) => {{
        let input = $input;
        NewObject {
            attributes: attributes_of!(input),
            declared: checksums_of!(input),
            bucket: input.bucket,
            key: input.key,
            body: input.body,
            algorithm: input.checksum_algorithm,
            content_md5: input.content_md5,
            if_match: input.if_match,
            if_none_match: input.if_none_match,
        }
    }};
}

/// If-Match / If-None-Match of a write, against the object it would replace.
fn write_preconditions(
    existing: Option<&ObjectRecord>,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if let Some(condition) = if_none_match
        && existing.is_some()
        && (condition.is_any()
            || condition.as_etag().is_some_and(|etag| existing.is_some_and(|e| strong(e).weak_cmp(etag))))
    {
        return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
    }
    if let Some(condition) = if_match {
        let holds = match (existing, condition) {
            (None, _) => false,
            (Some(_), ETagCondition::Any) => true,
            (Some(existing), ETagCondition::ETag(expected)) => strong(existing).strong_cmp(expected),
        };
        if !holds {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
    }
    Ok(())
}

fn strong(record: &ObjectRecord) -> ETag {
    ETag::Strong(record.etag.clone())
}

/// The read preconditions of GetObject, HeadObject and CopyObject's source.
#[derive(Debug, Clone, Default)]
struct ReadConditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
    /// CopyObject answers 412 where GET and HEAD answer 304.
    not_modified_is_failure: bool,
}

impl ReadConditions {
    /// RFC 9110's order: If-Match before If-Unmodified-Since, If-None-Match before
    /// If-Modified-Since. HTTP dates have whole seconds.
    fn check(&self, record: &ObjectRecord) -> S3Result<()> {
        let etag = strong(record);
        let modified_seconds = Timestamp::from(whole_seconds(record.modified));
        let failed = || s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold");
        let not_modified = || if self.not_modified_is_failure { failed() } else { s3_error!(NotModified) };
        match &self.if_match {
            Some(ETagCondition::ETag(expected)) if !etag.strong_cmp(expected) => return Err(failed()),
            Some(_) => {}
            None => {
                if let Some(since) = &self.if_unmodified_since
                    && modified_seconds > *since
                {
                    return Err(failed());
                }
            }
        }
        match &self.if_none_match {
            Some(ETagCondition::Any) => return Err(not_modified()),
            Some(ETagCondition::ETag(expected)) if etag.weak_cmp(expected) => return Err(not_modified()),
            Some(_) => {}
            None => {
                if let Some(since) = &self.if_modified_since
                    && modified_seconds <= *since
                {
                    return Err(not_modified());
                }
            }
        }
        Ok(())
    }
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    let seconds = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
}

/// Runs `open` on the file of `bucket`/`key`'s record, looking the record up again when the
/// file went (`open` answers `None`: the object was replaced meanwhile, and its old file is
/// deleted after the commit).
fn with_current_file<T>(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    conditions: &ReadConditions,
    mut open: impl FnMut(&ObjectRecord, &std::path::Path) -> S3Result<Option<T>>,
) -> S3Result<(ObjectRecord, T)> {
    for _ in 0..REPLACED_RETRIES {
        let record = store.object(bucket, key)?;
        conditions.check(&record)?;
        if let Some(value) = open(&record, &store.path(&record.blob))? {
            return Ok((record, value));
        }
    }
    Err(s3_error!(InternalError, "{bucket}/{key} kept being replaced while it was read"))
}

/// `None` for a file that is gone, an InternalError naming `what` for other failures.
fn unless_gone<T>(result: std::io::Result<T>, what: &str) -> S3Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(internal(what, error)),
    }
}

/// `size` bytes at `offset`, into a buffer that is not zeroed first; a file cut short is an error.
fn read_chunk(file: &std::fs::File, offset: u64, size: u64) -> std::io::Result<Bytes> {
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
    Ok(Bytes::from(buffer))
}

/// The body of `length` bytes from `offset`: `first` (already read) then the rest, chunk by chunk.
fn body_from(file: Arc<std::fs::File>, first: Bytes, offset: u64, length: u64) -> StreamingBlob {
    let first_end = offset + first.len() as u64;
    let end = offset + length;
    let rest = futures::stream::try_unfold(first_end, move |offset| {
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
    StreamingBlob::wrap(futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest))
}

fn timestamp(time: SystemTime) -> Timestamp {
    Timestamp::from(time)
}

fn listed(object: ListedObject) -> S3Result<Object> {
    Ok(Object {
        key: Some(object.key),
        size: Some(i64::try_from(object.size).map_err(|e| internal("object size", e))?),
        e_tag: Some(ETag::Strong(object.etag)),
        last_modified: Some(timestamp(object.modified)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        ..Default::default()
    })
}

/// One page of a listing.
struct Page {
    objects: Vec<ListedObject>,
    common_prefixes: Vec<String>,
    /// Where the next page starts (the last key or common prefix of this one), when truncated.
    next: Option<String>,
}

/// The page of `bucket` after `marker`: keys under `prefix`, those with `delimiter` after the
/// prefix rolled up into common prefixes, at most `max_keys` entries.
fn list_page(
    store: &ObjectStore,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    marker: &str,
    max_keys: usize,
) -> S3Result<Page> {
    let common_prefix = |key: &str| {
        let delimiter = delimiter.filter(|d| !d.is_empty())?;
        let rest = key.strip_prefix(prefix)?;
        rest.find(delimiter).map(|at| key[..prefix.len() + at + delimiter.len()].to_owned())
    };
    let mut page = Page { objects: Vec::new(), common_prefixes: Vec::new(), next: None };
    // A marker that is a common prefix stands for every key under it.
    let mut rolled_up = common_prefix(marker).filter(|p| p == marker);
    let mut after = marker.to_owned();
    let mut last: Option<String> = None;
    loop {
        let batch = store.list(bucket, prefix, &after, LIST_BATCH)?;
        let Some(final_key) = batch.last().map(|o| o.key.clone()) else { return Ok(page) };
        for object in batch {
            if rolled_up.as_ref().is_some_and(|p| object.key.starts_with(p.as_str())) {
                continue;
            }
            if page.objects.len() + page.common_prefixes.len() == max_keys {
                page.next = last.filter(|_| max_keys > 0);
                return Ok(page);
            }
            match common_prefix(&object.key) {
                Some(rolled) => {
                    last = Some(rolled.clone());
                    page.common_prefixes.push(rolled.clone());
                    rolled_up = Some(rolled);
                }
                None => {
                    last = Some(object.key.clone());
                    page.objects.push(object);
                }
            }
        }
        after = final_key;
    }
}

impl AnnouncingStore {
    /// The store under `root` (see [`ObjectStore::open`]), announcing to `events`.
    pub fn open(root: &std::path::Path, events: Arc<dyn ObjectEvents>) -> S3Result<AnnouncingStore> {
        Ok(AnnouncingStore {
            inner: Arc::new(Inner {
                store: ObjectStore::open(root)?,
                events,
                sequencer: Sequencer::new(),
                region: "us-east-1".to_owned(),
                account: "123456789012".to_owned(),
            }),
        })
    }

    /// Creates `bucket` unless it exists.
    pub fn ensure_bucket(&self, bucket: &str) -> S3Result<()> {
        self.inner.store.create_bucket(bucket).map(drop)
    }

    /// Runs `work` on the store in tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ObjectStore) -> S3Result<T> + Send + 'static,
    ) -> S3Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this.inner.store))
            .await
            .map_err(|e| internal("object store task", e))?
    }

    /// Stores `body` at `bucket`/`key` as a PutObject would (the upload API uses this), with the
    /// same admission and announcement.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        content_type: Option<String>,
        body: Bytes,
    ) -> S3Result<StoredObject> {
        self.put_stream(bucket, key, content_type, StreamingBlob::from(s3s::Body::from(body))).await
    }

    /// Stores `body` as it arrives, as [`put_bytes`](Self::put_bytes) does; a body that fails
    /// midway stores nothing (IncompleteBody).
    pub async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        content_type: Option<String>,
        body: StreamingBlob,
    ) -> S3Result<StoredObject> {
        let object = NewObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            body: Some(body),
            attributes: ObjectAttributes { content_type, ..Default::default() },
            declared: Checksums::default(),
            algorithm: None,
            content_md5: None,
            if_match: None,
            if_none_match: None,
        };
        Ok(self.write(object, None, StoreReason::PutObject).await?.1)
    }

    /// Admits, receives, verifies and commits a new object, then announces it.
    async fn write(
        &self,
        object: NewObject,
        trailers: Option<s3s::TrailingHeaders>,
        reason: StoreReason,
    ) -> S3Result<(ObjectRecord, StoredObject)> {
        let NewObject { bucket, key, body, mut attributes, declared, algorithm, content_md5, if_match, if_none_match } =
            object;
        let body = body.ok_or_else(|| s3_error!(IncompleteBody))?;
        self.inner.events.admit(&bucket, &key)?;
        let received = Received::read(self, body, checksums_asked(&declared, algorithm.as_ref())?).await?;
        received.verify(content_md5.as_deref(), &with_trailers(declared, trailers.as_ref())?)?;
        attributes.checksums = received.checksums.clone();
        let etag = received.md5_hex();
        let size = received.size;
        let (bucket_name, key_name) = (bucket.clone(), key.clone());
        let record = self
            .blocking(move |store| {
                let blob = received.finish(store)?;
                let record =
                    ObjectRecord { key, blob: blob.name().to_owned(), size, etag, modified: store::now(), attributes };
                store.commit_object(&bucket, Some(blob), &record, |existing| {
                    write_preconditions(existing, if_match.as_ref(), if_none_match.as_ref())
                })?;
                Ok(record)
            })
            .await?;
        let stored = self.announce(&bucket_name, &key_name, record.size, &record.etag, reason).await?;
        Ok((record, stored))
    }

    /// Builds the facts of a stored object and announces them.
    async fn announce(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        etag: &str,
        reason: StoreReason,
    ) -> S3Result<StoredObject> {
        let object = StoredObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
            etag: Some(etag.to_owned()),
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

    /// Admits a write to `bucket`/`key`, runs it, then announces the stored object.
    async fn store_and_announce<T>(
        &self,
        bucket: &str,
        key: &str,
        reason: StoreReason,
        write: impl Future<Output = S3Result<(T, ObjectRecord)>>,
    ) -> S3Result<T> {
        self.inner.events.admit(bucket, key)?;
        let (answer, record) = write.await?;
        self.announce(bucket, key, record.size, &record.etag, reason).await?;
        Ok(answer)
    }

    /// The multipart upload a request names, if its signer started it.
    fn upload_of(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        signer: Option<&s3s::auth::Credentials>,
    ) -> S3Result<UploadRecord> {
        let upload = self.inner.store.upload(bucket, key, upload_id)?;
        if upload.access_key.as_deref() != signer.map(|c| c.access_key.as_str()) {
            return Err(s3_error!(AccessDenied, "the upload was started by someone else"));
        }
        Ok(upload)
    }
}

#[async_trait::async_trait]
impl S3 for AnnouncingStore {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        if !s3s::path::check_bucket_name(&req.input.bucket) {
            return Err(s3_error!(InvalidBucketName));
        }
        if !self.inner.store.create_bucket(&req.input.bucket)? {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{}", req.input.bucket)) }))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.store.delete_bucket(&req.input.bucket)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        if !self.inner.store.bucket_exists(&req.input.bucket)? {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(self.inner.region.clone()), ..Default::default() }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        if !self.inner.store.bucket_exists(&req.input.bucket)? {
            return Err(s3_error!(NoSuchBucket));
        }
        // us-east-1 is answered as no location constraint, as S3 does.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .inner
            .store
            .buckets()?
            .into_iter()
            .map(|(name, created)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(created)),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), ..Default::default() }))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (record, _) = self.write(new_object!(req.input), req.trailing_headers, StoreReason::PutObject).await?;
        Ok(S3Response::new(with_checksums!(
            PutObjectOutput { e_tag: Some(ETag::Strong(record.etag)) },
            record.attributes.checksums
        )))
    }

    async fn post_object(&self, req: S3Request<PostObjectInput>) -> S3Result<S3Response<PostObjectOutput>> {
        let (record, _) = self.write(new_object!(req.input), req.trailing_headers, StoreReason::PostObject).await?;
        Ok(S3Response::new(PostObjectOutput { e_tag: Some(ETag::Strong(record.etag)), ..Default::default() }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let GetObjectInput {
            bucket, key, range, if_match, if_none_match, if_modified_since, if_unmodified_since, ..
        } = req.input;
        let conditions = ReadConditions {
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
            not_modified_is_failure: false,
        };
        let ranged = range.is_some();
        let (record, (file, span, first)) = self
            .blocking(move |store| {
                with_current_file(store, &bucket, &key, &conditions, |record, path| {
                    let span = match &range {
                        Some(range) => range.check(record.size)?,
                        None => 0..record.size,
                    };
                    let read = |path| {
                        let file = std::fs::File::open(path)?;
                        let first = read_chunk(&file, span.start, (span.end - span.start).min(READ_CHUNK))?;
                        Ok((Arc::new(file), first))
                    };
                    Ok(unless_gone(read(path), &record.blob)?.map(|(file, first)| (file, span, first)))
                })
            })
            .await?;
        // S3 answers a Content-Range to every Range request, even one covering the whole object.
        let content_range =
            ranged.then(|| format!("bytes {}-{}/{}", span.start, span.end.saturating_sub(1), record.size));
        let length = span.end - span.start;
        let content_length = i64::try_from(length).map_err(|e| internal("object size", e))?;
        // A part of the object has no checksum of its own.
        let checksums = if ranged { Checksums::default() } else { record.attributes.checksums.clone() };
        Ok(S3Response::new(object_output!(
            GetObjectOutput {
                body: Some(body_from(file, first, span.start, length)),
                content_length: Some(content_length),
                content_range,
            },
            record,
            checksums
        )))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let HeadObjectInput { bucket, key, if_match, if_none_match, if_modified_since, if_unmodified_since, .. } =
            req.input;
        let record = self.inner.store.object(&bucket, &key)?;
        ReadConditions {
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
            not_modified_is_failure: false,
        }
        .check(&record)?;
        let content_length = i64::try_from(record.size).map_err(|e| internal("object size", e))?;
        let checksums = record.attributes.checksums.clone();
        Ok(S3Response::new(object_output!(
            HeadObjectOutput { content_length: Some(content_length) },
            record,
            checksums
        )))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let (source_bucket, source_key, conditions) = copy_source!(input)?;
        let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let replacement = attributes_of!(input);
        let (bucket, key) = (input.bucket, input.key);
        let (target_bucket, target_key) = (bucket.clone(), key.clone());
        let write = self.blocking(move |store| {
            // The copy is a second name for the source's file: files never change once written.
            let (source, blob) = with_current_file(store, &source_bucket, &source_key, &conditions, |record, path| {
                unless_gone(store.link_blob(path), &record.blob)
            })?;
            let attributes = if replace {
                ObjectAttributes { checksums: source.attributes.checksums.clone(), ..replacement }
            } else {
                source.attributes.clone()
            };
            let record = ObjectRecord {
                key,
                blob: blob.name().to_owned(),
                size: source.size,
                etag: source.etag,
                modified: store::now(),
                attributes,
            };
            store.commit_object(&bucket, Some(blob), &record, |_| Ok(()))?;
            let output = CopyObjectOutput {
                copy_object_result: Some(CopyObjectResult {
                    e_tag: Some(ETag::Strong(record.etag.clone())),
                    last_modified: Some(timestamp(record.modified)),
                    ..Default::default()
                }),
                ..Default::default()
            };
            Ok((S3Response::new(output), record))
        });
        self.store_and_announce(&target_bucket, &target_key, StoreReason::CopyObject, write).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let DeleteObjectInput { bucket, key, .. } = req.input;
        self.blocking(move |store| store.delete_object(&bucket, &key)).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let DeleteObjectsInput { bucket, delete, .. } = req.input;
        let quiet = delete.quiet.unwrap_or(false);
        let deleted = self
            .blocking(move |store| {
                let mut deleted = Vec::new();
                for object in delete.objects {
                    store.delete_object(&bucket, &object.key)?;
                    deleted.push(DeletedObject {
                        key: Some(object.key),
                        version_id: object.version_id,
                        ..Default::default()
                    });
                }
                Ok(deleted)
            })
            .await?;
        Ok(S3Response::new(DeleteObjectsOutput { deleted: (!quiet).then_some(deleted), ..Default::default() }))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000);
        let page = list_page(
            &self.inner.store,
            &input.bucket,
            &prefix,
            input.delimiter.as_deref(),
            input.marker.as_deref().unwrap_or(""),
            usize::try_from(max_keys).unwrap_or(0),
        )?;
        let contents = page.objects.into_iter().map(listed).collect::<S3Result<Vec<_>>>()?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            marker: input.marker,
            max_keys: Some(max_keys),
            is_truncated: Some(page.next.is_some()),
            next_marker: page.next,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!page.common_prefixes.is_empty())
                .then(|| page.common_prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000);
        let marker = match (input.continuation_token.as_deref(), input.start_after.as_deref()) {
            (Some(token), Some(after)) => token.max(after),
            (Some(marker), None) | (None, Some(marker)) => marker,
            (None, None) => "",
        };
        let page = list_page(
            &self.inner.store,
            &input.bucket,
            &prefix,
            input.delimiter.as_deref(),
            marker,
            usize::try_from(max_keys).unwrap_or(0),
        )?;
        let count = page.objects.len() + page.common_prefixes.len();
        let contents = page.objects.into_iter().map(listed).collect::<S3Result<Vec<_>>>()?;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(max_keys),
            key_count: Some(i32::try_from(count).unwrap_or(i32::MAX)),
            is_truncated: Some(page.next.is_some()),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next,
            start_after: input.start_after,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!page.common_prefixes.is_empty())
                .then(|| page.common_prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        let upload = UploadRecord {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            bucket: input.bucket,
            key: input.key,
            access_key: req.credentials.map(|c| c.access_key),
            attributes: attributes_of!(input),
        };
        self.inner.store.create_upload(&upload)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(upload.bucket),
            key: Some(upload.key),
            upload_id: Some(upload.upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        check_part_number(input.part_number)?;
        let upload = self.upload_of(&input.bucket, &input.key, &input.upload_id, req.credentials.as_ref())?;
        let declared = checksums_of!(input);
        let body = input.body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let received =
            Received::read(self, body, checksums_asked(&declared, input.checksum_algorithm.as_ref())?).await?;
        received.verify(input.content_md5.as_deref(), &with_trailers(declared, req.trailing_headers.as_ref())?)?;
        let checksums = received.checksums.clone();
        let (etag, size, number) = (received.md5_hex(), received.size, input.part_number);
        let part_etag = etag.clone();
        self.blocking(move |store| {
            let blob = received.finish(store)?;
            let part =
                PartRecord { number, blob: blob.name().to_owned(), size, etag: part_etag, modified: store::now() };
            store.commit_part(&upload.upload_id, blob, &part)
        })
        .await?;
        Ok(S3Response::new(with_checksums!(UploadPartOutput { e_tag: Some(ETag::Strong(etag)) }, checksums)))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        check_part_number(input.part_number)?;
        let upload = self.upload_of(&input.bucket, &input.key, &input.upload_id, req.credentials.as_ref())?;
        let (source_bucket, source_key, conditions) = copy_source!(input)?;
        let range = input.copy_source_range.as_deref().map(copy_source_range).transpose()?;
        let number = input.part_number;
        let part = self
            .blocking(move |store| {
                let (blob, mut file) = store.create_blob()?;
                let mut hashed = HashingWriter { file: &mut file, md5: Md5::new() };
                let (source, copied) =
                    with_current_file(store, &source_bucket, &source_key, &conditions, |record, path| {
                        let (offset, length) = match range {
                            Some((first, last)) if first <= last && last < record.size => (first, last - first + 1),
                            Some(_) => return Ok(Some(None)),
                            None => (0, record.size),
                        };
                        Ok(unless_gone(copy_range(path, offset, length, &mut hashed), &record.blob)?
                            .map(|()| Some(length)))
                    })?;
                let size =
                    copied.ok_or_else(|| s3_error!(InvalidRange, "the range is outside {} bytes", source.size))?;
                let etag = hex::encode(hashed.md5.finalize());
                let part = PartRecord { number, blob: blob.name().to_owned(), size, etag, modified: store::now() };
                store.commit_part(&upload.upload_id, blob, &part)?;
                Ok(part)
            })
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(part.etag)),
                last_modified: Some(timestamp(part.modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let upload = self.upload_of(&input.bucket, &input.key, &input.upload_id, req.credentials.as_ref())?;
        let after = input.part_number_marker.unwrap_or(0);
        let max_parts = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(0);
        let all: Vec<PartRecord> =
            self.inner.store.parts(&upload.upload_id)?.into_iter().filter(|p| p.number > after).collect();
        let truncated = all.len() > max_parts;
        let parts: Vec<Part> = all
            .into_iter()
            .take(max_parts)
            .map(|part| Part {
                part_number: Some(part.number),
                size: i64::try_from(part.size).ok(),
                e_tag: Some(ETag::Strong(part.etag)),
                last_modified: Some(timestamp(part.modified)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(upload.bucket),
            key: Some(upload.key),
            upload_id: Some(upload.upload_id),
            is_truncated: Some(truncated),
            next_part_number_marker: truncated.then(|| parts.last().and_then(|p| p.part_number)).flatten(),
            max_parts: Some(i32::try_from(max_parts).unwrap_or(1000)),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let upload = self.upload_of(&input.bucket, &input.key, &input.upload_id, req.credentials.as_ref())?;
        self.blocking(move |store| store.end_upload(&upload.upload_id)).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let upload = self.upload_of(&input.bucket, &input.key, &input.upload_id, req.credentials.as_ref())?;
        let wanted: Vec<(i32, Option<ETag>)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|part| {
                part.part_number
                    .map(|n| (n, part.e_tag))
                    .ok_or_else(|| s3_error!(InvalidPart, "a part without a number"))
            })
            .collect::<S3Result<_>>()?;
        if wanted.is_empty() {
            return Err(s3_error!(MalformedXML, "You must specify at least one part"));
        }
        if wanted.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order."));
        }
        let (if_match, if_none_match) = (input.if_match, input.if_none_match);
        let (bucket, key) = (upload.bucket.clone(), upload.key.clone());
        let write = self.blocking(move |store| {
            let uploaded = store.parts(&upload.upload_id)?;
            let mut chosen = Vec::with_capacity(wanted.len());
            for (index, (number, etag)) in wanted.iter().enumerate() {
                let part = uploaded
                    .iter()
                    .find(|p| p.number == *number)
                    .ok_or_else(|| s3_error!(InvalidPart, "part {number} was not uploaded"))?;
                if etag.as_ref().is_some_and(|etag| etag.value() != part.etag) {
                    return Err(s3_error!(InvalidPart, "part {number} has another ETag"));
                }
                if index + 1 < wanted.len() && part.size < MIN_PART_SIZE {
                    return Err(s3_error!(EntityTooSmall, "part {number} is smaller than 5 MiB and not the last"));
                }
                chosen.push(part.clone());
            }
            let (blob, mut file) = store.create_blob()?;
            let mut digests = Md5::new();
            let mut size = 0;
            for part in &chosen {
                copy_range(&store.path(&part.blob), 0, part.size, &mut file).map_err(|e| internal(&part.blob, e))?;
                digests.update(&hex::decode(&part.etag).map_err(|e| internal("part ETag", e))?);
                size += part.size;
            }
            let record = ObjectRecord {
                key: upload.key.clone(),
                blob: blob.name().to_owned(),
                size,
                etag: format!("{}-{}", hex::encode(digests.finalize()), chosen.len()),
                modified: store::now(),
                attributes: upload.attributes.clone(),
            };
            store.commit_object(&upload.bucket, Some(blob), &record, |existing| {
                write_preconditions(existing, if_match.as_ref(), if_none_match.as_ref())
            })?;
            store.end_upload(&upload.upload_id)?;
            let output = CompleteMultipartUploadOutput {
                bucket: Some(upload.bucket),
                key: Some(upload.key),
                e_tag: Some(ETag::Strong(record.etag.clone())),
                ..Default::default()
            };
            Ok((S3Response::new(output), record))
        });
        self.store_and_announce(&bucket, &key, StoreReason::CompleteMultipartUpload, write).await
    }
}

fn check_part_number(number: i32) -> S3Result<()> {
    if (1..=10_000).contains(&number) {
        Ok(())
    } else {
        Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"))
    }
}

/// `bytes=FIRST-LAST` of UploadPartCopy.
fn copy_source_range(text: &str) -> S3Result<(u64, u64)> {
    let invalid = || s3_error!(InvalidArgument, "x-amz-copy-source-range must be bytes=first-last");
    let (first, last) = text.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(invalid)?;
    Ok((first.parse().map_err(|_| invalid())?, last.parse().map_err(|_| invalid())?))
}

/// A file writer that hashes what passes through it.
struct HashingWriter<'a> {
    file: &'a mut std::fs::File,
    md5: Md5,
}

impl std::io::Write for HashingWriter<'_> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buffer)?;
        self.md5.update(&buffer[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
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

    fn store_with(keys: &[&str]) -> (tempfile::TempDir, ObjectStore) {
        let root = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(root.path()).unwrap();
        store.create_bucket("b").unwrap();
        for key in keys {
            let (blob, _) = store.create_blob().unwrap();
            let record = ObjectRecord {
                key: (*key).to_owned(),
                blob: blob.name().to_owned(),
                size: 0,
                etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
                modified: store::now(),
                attributes: ObjectAttributes::default(),
            };
            store.commit_object("b", Some(blob), &record, |_| Ok(())).unwrap();
        }
        (root, store)
    }

    /// Every page of a listing, as (keys, common prefixes) each, following the markers.
    fn pages(
        store: &ObjectStore,
        prefix: &str,
        delimiter: Option<&str>,
        max_keys: usize,
    ) -> Vec<(Vec<String>, Vec<String>)> {
        let mut marker = String::new();
        let mut pages = Vec::new();
        loop {
            let page = list_page(store, "b", prefix, delimiter, &marker, max_keys).unwrap();
            pages.push((page.objects.into_iter().map(|o| o.key).collect(), page.common_prefixes));
            match page.next {
                Some(next) => marker = next,
                None => return pages,
            }
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn listings_roll_keys_up_at_the_delimiter_and_page_through_markers() {
        let (_root, store) = store_with(&["a/1", "a/2", "a/3/x", "b", "c/x/1", "c/y", "d"]);
        assert_eq!(pages(&store, "", Some("/"), 1000), [(strings(&["b", "d"]), strings(&["a/", "c/"]))]);
        assert_eq!(
            pages(&store, "", Some("/"), 2),
            [(strings(&["b"]), strings(&["a/"])), (strings(&["d"]), strings(&["c/"]))],
            "a common prefix counts as one entry and is not repeated on the next page"
        );
        assert_eq!(pages(&store, "a/", Some("/"), 1000), [(strings(&["a/1", "a/2"]), strings(&["a/3/"]))]);
        assert_eq!(
            pages(&store, "", None, 3),
            [
                (strings(&["a/1", "a/2", "a/3/x"]), vec![]),
                (strings(&["b", "c/x/1", "c/y"]), vec![]),
                (strings(&["d"]), vec![])
            ]
        );
        assert_eq!(pages(&store, "c/", None, 1000), [(strings(&["c/x/1", "c/y"]), vec![])]);
        assert_eq!(pages(&store, "zz", Some("/"), 1000), [(vec![], vec![])]);
        assert_eq!(pages(&store, "", None, 0), [(vec![], vec![])], "max-keys 0 lists nothing");
    }

    #[test]
    fn listings_longer_than_one_query_batch_are_complete() {
        let keys: Vec<String> = (0..LIST_BATCH + 5).map(|i| format!("k/{i:05}")).collect();
        let (_root, store) = store_with(&keys.iter().map(String::as_str).collect::<Vec<_>>());
        let page = list_page(&store, "b", "", None, "", LIST_BATCH + 10).unwrap();
        assert_eq!(page.objects.len(), keys.len());
        assert!(page.next.is_none());
        let rolled = list_page(&store, "b", "", Some("/"), "", 10).unwrap();
        assert_eq!((rolled.objects.len(), rolled.common_prefixes), (0, strings(&["k/"])));
    }

    #[test]
    fn write_preconditions_follow_s3() {
        let existing = ObjectRecord {
            key: "k".into(),
            blob: "x".into(),
            size: 1,
            etag: "abc".into(),
            modified: store::now(),
            attributes: ObjectAttributes::default(),
        };
        let etag = |value: &str| ETagCondition::ETag(ETag::Strong(value.into()));
        let failed = |result: S3Result<()>| result.is_err_and(|e| *e.code() == s3s::S3ErrorCode::PreconditionFailed);
        assert!(failed(write_preconditions(Some(&existing), None, Some(&ETagCondition::Any))));
        assert!(write_preconditions(None, None, Some(&ETagCondition::Any)).is_ok());
        assert!(write_preconditions(Some(&existing), Some(&etag("abc")), None).is_ok());
        assert!(failed(write_preconditions(Some(&existing), Some(&etag("other")), None)));
        assert!(failed(write_preconditions(None, Some(&ETagCondition::Any), None)));
    }

    #[test]
    fn read_conditions_answer_412_or_304() {
        let modified = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_500);
        let record = ObjectRecord {
            key: "k".into(),
            blob: "x".into(),
            size: 1,
            etag: "abc".into(),
            modified,
            attributes: ObjectAttributes::default(),
        };
        let at = |seconds: u64| Some(Timestamp::from(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds)));
        let etag = |value: &str| Some(ETagCondition::ETag(ETag::Strong(value.into())));
        let code = |conditions: ReadConditions| conditions.check(&record).err().map(|e| e.code().clone());
        use s3s::S3ErrorCode::{NotModified, PreconditionFailed};
        assert_eq!(code(ReadConditions::default()), None);
        assert_eq!(code(ReadConditions { if_match: etag("abc"), ..Default::default() }), None);
        assert_eq!(code(ReadConditions { if_match: etag("x"), ..Default::default() }), Some(PreconditionFailed));
        assert_eq!(code(ReadConditions { if_none_match: etag("abc"), ..Default::default() }), Some(NotModified));
        let copy = ReadConditions { if_none_match: etag("abc"), not_modified_is_failure: true, ..Default::default() };
        assert_eq!(code(copy), Some(PreconditionFailed));
        // Whole seconds: modified at …000.5 is not modified since …000.
        assert_eq!(
            code(ReadConditions { if_modified_since: at(1_700_000_000), ..Default::default() }),
            Some(NotModified)
        );
        assert_eq!(code(ReadConditions { if_modified_since: at(1_699_999_999), ..Default::default() }), None);
        assert_eq!(
            code(ReadConditions { if_unmodified_since: at(1_699_999_999), ..Default::default() }),
            Some(PreconditionFailed)
        );
        // If-Match wins over If-Unmodified-Since.
        let both = ReadConditions { if_match: etag("abc"), if_unmodified_since: at(1), ..Default::default() };
        assert_eq!(code(both), None);
    }
}
