//! The execution input: the EventBridge "Object Created" event exactly as Amazon S3 sends it, and
//! the image identity derived from it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StepError;

/// The prefix under which uploads trigger the pipeline.
pub const UPLOADS_PREFIX: &str = "uploads/";
/// The prefix under which renditions are written (and which never triggers anything).
pub const PROCESSED_PREFIX: &str = "processed/";

/// `detail` of an S3 "Object Created" event delivered through EventBridge. AWS uses kebab-case
/// names here; `aws_lambda_events` has no typed detail for it (and its `S3Entity` would drop
/// `etag` and `version-id`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ObjectCreatedDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub bucket: BucketRef,
    pub object: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    /// PutObject, POST Object, CopyObject or CompleteMultipartUpload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRef {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ObjectRef {
    /// Form-URL-encoded as AWS sends it (`+` is a space, `%2B` a plus).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

/// The execution input of the state machine.
pub type ObjectCreatedEvent = EventBridgeEvent<ObjectCreatedDetail>;

/// The object an execution is about, with its key decoded exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadedObject {
    pub image_id: String,
    pub bucket: String,
    /// The decoded key, as S3 stores it.
    pub key: String,
    /// The key as the event carried it.
    pub raw_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The event time: when S3 stored the object (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
}

impl UploadedObject {
    /// The stored object, pinned to the version (or ETag) the event announced.
    pub fn location(&self) -> crate::objects::ObjectLocation {
        crate::objects::ObjectLocation {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            etag: self.etag.clone(),
        }
    }

    pub fn from_event(event: &ObjectCreatedEvent) -> Result<Self, StepError> {
        let detail = &event.detail;
        if detail.bucket.name.is_empty() {
            return Err(StepError::InvalidInput("the event names no bucket".into()));
        }
        let key = decode_event_key(&detail.object.key);
        if key.is_empty() {
            return Err(StepError::InvalidInput("the event names no object key".into()));
        }
        Ok(UploadedObject {
            image_id: image_id_for_key(&key),
            bucket: detail.bucket.name.clone(),
            raw_key: detail.object.key.clone(),
            key,
            version_id: detail.object.version_id.clone().filter(|v| !v.is_empty() && v != "null"),
            size: detail.object.size,
            etag: detail.object.etag.clone(),
            uploaded_at: event.time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        })
    }
}

/// Decodes a key from an S3 event: form-URL-encoding, where `+` is a space (as Python's
/// `unquote_plus`, which AWS's own samples use).
pub fn decode_event_key(raw: &str) -> String {
    form_urlencoded::parse(format!("k={raw}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Encodes a key as S3 does in event notifications (the inverse of [`decode_event_key`]):
/// form-URL-encoding of each path segment, the `/` between them kept.
pub fn encode_event_key(key: &str) -> String {
    key.split('/')
        .map(|segment| form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// The ImageID of an object. Uploads through the API are stored as `uploads/{imageId}` with a
/// URL-safe id, which is used as it is; any other key gets an id derived from the key, so the
/// same object always maps to the same item.
pub fn image_id_for_key(key: &str) -> String {
    if let Some(id) = key.strip_prefix(UPLOADS_PREFIX)
        && is_url_safe_id(id)
    {
        return id.to_owned();
    }
    let digest = Sha256::digest(key.as_bytes());
    format!("k-{}", &hex::encode(digest)[..32])
}

/// An id that can stand in a URL path segment and a DynamoDB key unchanged.
pub fn is_url_safe_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Amazon S3 user guide ("Using EventBridge"), with a tricky key.
    fn sample_event(raw_key: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2021-11-12T00:00:00Z",
            "region": "ca-central-1",
            "resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"],
            "detail": {
                "version": "0",
                "bucket": {"name": "amzn-s3-demo-bucket1"},
                "object": {
                    "key": raw_key,
                    "size": 5,
                    "etag": "b1946ac92492d2347c6235b4d2611184",
                    "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                    "sequencer": "617f08299329d189"
                },
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "123456789012",
                "source-ip-address": "1.2.3.4",
                "reason": "PutObject"
            }
        })
    }

    #[test]
    fn keys_are_decoded_exactly_once() {
        let key = "uploads/a b+c(1)é%41.jpg";
        let raw = encode_event_key(key);
        assert_eq!(raw, "uploads/a+b%2Bc%281%29%C3%A9%2541.jpg");
        let event: ObjectCreatedEvent = serde_json::from_value(sample_event(&raw)).unwrap();
        let object = UploadedObject::from_event(&event).unwrap();
        assert_eq!(object.key, key);
        assert_eq!(object.raw_key, raw);
        assert_eq!(object.bucket, "amzn-s3-demo-bucket1");
        assert_eq!(object.version_id.as_deref(), Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"));
        assert_eq!(object.etag.as_deref(), Some("b1946ac92492d2347c6235b4d2611184"));
        assert_eq!(object.uploaded_at.as_deref(), Some("2021-11-12T00:00:00.000Z"));
        // The id is derived from the decoded key, deterministically.
        assert!(object.image_id.starts_with("k-"));
        assert_eq!(object.image_id, image_id_for_key(key));
    }

    #[test]
    fn s3_style_keys_decode_like_unquote_plus() {
        // What S3 itself sends for `uploads/a b+c(1)é.jpg`: only space becomes `+`.
        assert_eq!(decode_event_key("uploads/a+b%2Bc%281%29%C3%A9.jpg"), "uploads/a b+c(1)é.jpg");
        assert_eq!(decode_event_key("uploads/plain.jpg"), "uploads/plain.jpg");
    }

    #[test]
    fn the_event_round_trips_with_every_field() {
        let json = sample_event("uploads/x.jpg");
        let event: ObjectCreatedEvent = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), json);
    }

    #[test]
    fn api_uploads_keep_their_id() {
        assert_eq!(
            image_id_for_key("uploads/3f1c2a9e-0b7d-4c1e-9a55-2d1f0e6b7c88"),
            "3f1c2a9e-0b7d-4c1e-9a55-2d1f0e6b7c88"
        );
        assert!(image_id_for_key("uploads/nested/x").starts_with("k-"));
        assert!(image_id_for_key("elsewhere/x").starts_with("k-"));
        assert_ne!(image_id_for_key("uploads/a.jpg"), image_id_for_key("uploads/b.jpg"));
    }

    #[test]
    fn an_event_without_a_key_is_invalid_input() {
        let event: ObjectCreatedEvent = serde_json::from_value(sample_event("")).unwrap();
        assert_eq!(UploadedObject::from_event(&event).unwrap_err().asl_name(), "InvalidInput");
    }
}
