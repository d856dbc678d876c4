//! The three image steps on bytes in memory, with the same code the Lambda handlers run: used by
//! `imgflow process` and the benchmarks, and the event shape the local twin emits.

use imgflow_imaging::{ExifReport, Rendered, read_exif, render};

use crate::config::StepConfig;
use crate::error::StepError;
use crate::event::{BucketRef, ObjectCreatedDetail, ObjectCreatedEvent, ObjectRef, UploadedObject, encode_event_key};
use crate::resize::{RenditionRecord, record};
use crate::validate::{ValidatedImage, inspect};
use crate::write_metadata::RecordRequest;

/// Facts about a stored object from which S3 would build its "Object Created" event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    pub request_id: Option<String>,
    /// PutObject, POST Object, CopyObject or CompleteMultipartUpload.
    pub reason: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub region: String,
    pub account: String,
}

/// The EventBridge "Object Created" event exactly as Amazon S3 shapes it.
pub fn object_created_event(object: &StoredObject, event_id: &str) -> ObjectCreatedEvent {
    let mut event = ObjectCreatedEvent::default();
    event.version = Some("0".into());
    event.id = Some(event_id.to_owned());
    event.detail_type = "Object Created".into();
    event.source = "aws.s3".into();
    event.account = Some(object.account.clone());
    event.time = Some(object.time);
    event.region = Some(object.region.clone());
    event.resources = Some(vec![format!("arn:aws:s3:::{}", object.bucket)]);
    event.detail = ObjectCreatedDetail {
        version: Some("0".into()),
        bucket: BucketRef { name: object.bucket.clone() },
        object: ObjectRef {
            key: encode_event_key(&object.key),
            size: Some(object.size),
            etag: object.etag.clone(),
            version_id: object.version_id.clone(),
            sequencer: object.sequencer.clone(),
        },
        request_id: object.request_id.clone(),
        requester: Some(object.account.clone()),
        source_ip_address: Some("127.0.0.1".into()),
        reason: Some(object.reason.clone()),
    };
    event
}

/// What the three image steps produced for one upload.
#[derive(Debug, Clone)]
pub struct ProcessedImage {
    pub image: ValidatedImage,
    pub exif: ExifReport,
    pub renditions: Vec<Rendered>,
}

impl ProcessedImage {
    /// The renditions as the resize step reports them.
    pub fn rendition_records(&self) -> Vec<RenditionRecord> {
        self.renditions.iter().map(|r| record(&self.image.image_id, r)).collect()
    }

    /// The write-metadata request the state machine would send for this image.
    pub fn record_request(&self, execution_arn: Option<String>) -> RecordRequest {
        RecordRequest::Succeeded {
            image: Box::new(self.image.clone()),
            exif: Box::new(self.exif.clone()),
            renditions: self.rendition_records(),
            execution_arn,
        }
    }
}

/// validate → read-exif → resize on `bytes`, the object `event` announces.
pub fn process_bytes(
    event: &ObjectCreatedEvent,
    bytes: &[u8],
    config: &StepConfig,
) -> Result<ProcessedImage, StepError> {
    let object = UploadedObject::from_event(event)?;
    let image = inspect(&object, bytes, &config.limits)?;
    let exif = read_exif(bytes, config.keep_gps);
    let renditions = render(bytes, &config.renditions, &config.limits)?;
    Ok(ProcessedImage { image, exif, renditions })
}
