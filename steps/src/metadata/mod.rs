//! The metadata item of an image (table `ImageMetadata`), the store interface and its rules.
//!
//! One trait, two stores: DynamoDB on AWS ([`dynamodb::DynamoMetadataStore`]) and SQLite in the
//! local twin. Both apply the same write rule, [`supersedes`].

pub mod dynamodb;

use async_trait::async_trait;
use imgflow_imaging::ExifSummary;
use serde::{Deserialize, Serialize};

use crate::error::StepError;

/// How an image's processing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageStatus {
    Succeeded,
    /// The upload itself is bad (InvalidImage, UnsupportedFormat, ImageTooLarge, ObjectNotFound):
    /// replaying cannot help.
    Rejected,
    /// The execution failed (transient errors outlasted their retries, a timeout, an abort):
    /// replay it once the cause is fixed.
    Failed,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Succeeded => "SUCCEEDED",
            ImageStatus::Rejected => "REJECTED",
            ImageStatus::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "SUCCEEDED" => Some(ImageStatus::Succeeded),
            "REJECTED" => Some(ImageStatus::Rejected),
            "FAILED" => Some(ImageStatus::Failed),
            _ => None,
        }
    }
}

/// A stored rendition with its public URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionEntry {
    pub name: String,
    pub key: String,
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub content_type: String,
}

/// The metadata item. Its JSON form (camelCase) is what `GET /images/{id}` answers, on AWS and
/// in the twin alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub image_id: String,
    pub status: ImageStatus,
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// When S3 stored the object (RFC 3339, UTC). Orders the records of one image: an older
    /// upload's outcome never replaces a newer one's.
    pub uploaded_at: String,
    pub processed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif: Option<ExifSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<RenditionEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_state: Option<String>,
}

/// The write rule both stores apply, so that replays, redrives and late events converge:
/// - a record of an older upload never replaces one of a newer upload;
/// - a FAILED record never replaces the SUCCEEDED or REJECTED record of the same execution (a
///   redrive can finish before the failure event of its first run is delivered);
/// - otherwise the new record replaces the stored one.
pub fn supersedes(new: &ImageRecord, stored: &ImageRecord) -> bool {
    if new.uploaded_at < stored.uploaded_at {
        return false;
    }
    !(new.status == ImageStatus::Failed
        && stored.status != ImageStatus::Failed
        && new.execution_arn.is_some()
        && new.execution_arn == stored.execution_arn)
}

/// A page of `list`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    pub status: Option<ImageStatus>,
    /// At most this many records (1..=1000; 0 means the default of 50).
    pub limit: u32,
    pub next_token: Option<String>,
}

impl ListQuery {
    pub fn page_size(&self) -> u32 {
        match self.limit {
            0 => 50,
            n => n.min(1000),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePage {
    pub items: Vec<ImageRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Where metadata items live.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Writes `record` unless a stored record of the same image [`supersedes`]-wins over it.
    /// Returns whether it was written.
    async fn put(&self, record: &ImageRecord) -> Result<bool, StepError>;
    async fn get(&self, image_id: &str) -> Result<Option<ImageRecord>, StepError>;
    /// Newest upload first when a status is given; paginated by an opaque token.
    async fn list(&self, query: &ListQuery) -> Result<ImagePage, StepError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(status: ImageStatus, uploaded_at: &str, execution: &str) -> ImageRecord {
        ImageRecord {
            image_id: "img".into(),
            status,
            bucket: "b".into(),
            key: "uploads/img".into(),
            version_id: None,
            original_url: None,
            content_type: None,
            format: None,
            bytes: None,
            width: None,
            height: None,
            sha256: None,
            uploaded_at: uploaded_at.into(),
            processed_at: "2026-01-01T00:00:00.000Z".into(),
            exif: None,
            warnings: vec![],
            renditions: vec![],
            execution_arn: Some(execution.into()),
            error: None,
            cause: None,
            failed_state: None,
        }
    }

    #[test]
    fn newer_uploads_win_and_late_failures_do_not_undo_a_redrive() {
        use ImageStatus::*;
        let t1 = "2026-01-01T00:00:01.000Z";
        let t2 = "2026-01-01T00:00:02.000Z";
        // A redrive succeeded; the failure event of its first run arrives late.
        assert!(!supersedes(&record(Failed, t1, "e1"), &record(Succeeded, t1, "e1")));
        // A replay of the same execution after a failure.
        assert!(supersedes(&record(Succeeded, t1, "e1"), &record(Failed, t1, "e1")));
        // A newer upload (another execution) failing replaces an older success.
        assert!(supersedes(&record(Failed, t2, "e2"), &record(Succeeded, t1, "e1")));
        // An older upload's replay does not replace a newer upload's record.
        assert!(!supersedes(&record(Succeeded, t1, "e1"), &record(Failed, t2, "e2")));
        // Replaying a success converges.
        assert!(supersedes(&record(Succeeded, t1, "e1"), &record(Succeeded, t1, "e1")));
    }
}
