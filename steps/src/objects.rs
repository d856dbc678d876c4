//! The S3 side of the steps: read an uploaded object (pinned to the version the event named),
//! write renditions.

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::aws::{collect_limited, step_error};
use crate::error::StepError;

/// Which stored object a step works on. The version (or, on unversioned buckets, the ETag) pins
/// the exact bytes the event announced, so a later overwrite cannot mix two uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
}

impl std::fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)?;
        if let Some(version) = &self.version_id {
            write!(f, "?versionId={version}")?;
        }
        Ok(())
    }
}

/// S3 access through the real S3 protocol (AWS, or the twin's embedded endpoint).
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Objects { client }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The whole object, refusing (before reading it) one larger than `max_bytes`.
    pub async fn get(&self, location: &ObjectLocation, max_bytes: u64) -> Result<Bytes, StepError> {
        self.get_bytes(location, None, max_bytes).await
    }

    /// The first `len` bytes of the object (fewer when it is shorter).
    pub async fn get_prefix(&self, location: &ObjectLocation, len: u64) -> Result<Bytes, StepError> {
        self.get_bytes(location, Some(len), len).await
    }

    async fn get_bytes(
        &self,
        location: &ObjectLocation,
        range_len: Option<u64>,
        max_bytes: u64,
    ) -> Result<Bytes, StepError> {
        let what = location.to_string();
        let mut request = self.client.get_object().bucket(&location.bucket).key(&location.key);
        if let Some(version) = &location.version_id {
            request = request.version_id(version);
        } else if let Some(etag) = &location.etag {
            request = request.if_match(quoted_etag(etag));
        }
        if let Some(len) = range_len {
            request = request.range(format!("bytes=0-{}", len.saturating_sub(1)));
        }
        let response = request.send().await.map_err(|error| {
            if error.raw_response().is_some_and(|r| r.status().as_u16() == 412) {
                StepError::ObjectNotFound(format!(
                    "{what}: the object was replaced after the upload event (ETag no longer matches)"
                ))
            } else {
                step_error(&what, &error, true)
            }
        })?;
        let length = response.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(length) = length
            && length > max_bytes
        {
            return Err(StepError::ImageTooLarge(format!(
                "{what}: {length} bytes is over the limit of {max_bytes} bytes"
            )));
        }
        collect_limited(response.body, length, max_bytes, &what).await
    }

    /// Stores `bytes` at `key`, replacing what was there (re-running a step converges).
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StepError> {
        let what = format!("s3://{bucket}/{key}");
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(cache_control)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| step_error(&what, &error, false))?;
        Ok(())
    }
}

/// S3 events carry the ETag bare; If-Match wants it quoted.
fn quoted_etag(etag: &str) -> String {
    if etag.starts_with('"') { etag.to_owned() } else { format!("\"{etag}\"") }
}
