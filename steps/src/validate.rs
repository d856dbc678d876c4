//! The validate step: is this upload an image we accept? Answers from the header, before any
//! pixel is decoded.

use imgflow_imaging::{ImageFormat, Limits, probe};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StepError;
use crate::event::{ObjectCreatedEvent, UploadedObject};
use crate::objects::{ObjectLocation, S3Objects};

/// What validate hands on: the identity of the upload and the facts every later step needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedImage {
    pub image_id: String,
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// From the bytes, not from the upload's Content-Type header.
    pub content_type: String,
    pub format: ImageFormat,
    /// As displayed, after the EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    pub bytes: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
}

impl ValidatedImage {
    pub fn location(&self) -> ObjectLocation {
        ObjectLocation {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            etag: self.etag.clone(),
        }
    }
}

/// The pure part: checks `bytes` and describes them.
pub fn inspect(object: &UploadedObject, bytes: &[u8], limits: &Limits) -> Result<ValidatedImage, StepError> {
    let probe = probe(bytes, limits)?;
    Ok(ValidatedImage {
        image_id: object.image_id.clone(),
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        version_id: object.version_id.clone(),
        etag: object.etag.clone(),
        content_type: probe.format.content_type().to_owned(),
        format: probe.format,
        width: probe.width,
        height: probe.height,
        orientation: probe.orientation,
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        uploaded_at: object.uploaded_at.clone(),
    })
}

/// The Lambda handler: the execution input is the S3 "Object Created" event.
pub async fn handle(s3: &S3Objects, limits: &Limits, event: &ObjectCreatedEvent) -> Result<ValidatedImage, StepError> {
    let object = UploadedObject::from_event(event)?;
    if let Some(size) = object.size
        && size > limits.max_bytes
    {
        return Err(StepError::ImageTooLarge(format!(
            "{} is {size} bytes, over the limit of {} bytes",
            object.key, limits.max_bytes
        )));
    }
    let bytes = s3.get(&object.location(), limits.max_bytes).await?;
    inspect(&object, &bytes, limits)
}
