//! The write-metadata step, in its three modes:
//! - SUCCEEDED: the end of a successful execution (validate + read-exif + resize outputs);
//! - REJECTED: the state machine caught a permanent error (input: the caught error);
//! - FAILED: EventBridge delivers a Step Functions "Execution Status Change" event (FAILED,
//!   TIMED_OUT, ABORTED) for an execution that ended without recording anything.

use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use imgflow_imaging::ExifReport;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::StepConfig;
use crate::error::StepError;
use crate::event::{ObjectCreatedEvent, UploadedObject};
use crate::metadata::{ImageRecord, ImageStatus, MetadataStore, RenditionEntry};
use crate::resize::RenditionRecord;
use crate::validate::ValidatedImage;

pub const STATUS_CHANGE_DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// The error object a Catch puts in the state (`ResultPath`), as Step Functions shapes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// Input of the SUCCEEDED and REJECTED modes, built by the state machine's Parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordRequest {
    #[serde(rename_all = "camelCase")]
    Succeeded {
        image: Box<ValidatedImage>,
        exif: Box<ExifReport>,
        renditions: Vec<RenditionRecord>,
        #[serde(default)]
        execution_arn: Option<String>,
    },
    /// `event` is the state at the Catch: the execution input, plus `image` when validate passed.
    #[serde(rename_all = "camelCase")]
    Rejected {
        event: Value,
        error: CaughtError,
        #[serde(default)]
        execution_arn: Option<String>,
    },
}

/// `detail` of a Step Functions "Execution Status Change" event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    #[serde(default)]
    pub state_machine_arn: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    /// The execution input, JSON-encoded.
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// What write-metadata can be invoked with.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteMetadataInput {
    Record(Box<RecordRequest>),
    StatusChange(Box<EventBridgeEvent<ExecutionStatusChange>>),
}

impl WriteMetadataInput {
    pub fn parse(input: Value) -> Result<Self, StepError> {
        let invalid = |e: serde_json::Error| StepError::InvalidInput(format!("write-metadata input: {e}"));
        if input.get("detail-type").and_then(Value::as_str) == Some(STATUS_CHANGE_DETAIL_TYPE) {
            return Ok(WriteMetadataInput::StatusChange(Box::new(serde_json::from_value(input).map_err(invalid)?)));
        }
        if input.get("mode").is_some() {
            return Ok(WriteMetadataInput::Record(Box::new(serde_json::from_value(input).map_err(invalid)?)));
        }
        Err(StepError::InvalidInput(format!(
            "write-metadata takes a record request (with \"mode\") or a \"{STATUS_CHANGE_DETAIL_TYPE}\" event"
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteMetadataOutput {
    pub image_id: String,
    pub status: ImageStatus,
    /// False when a newer record of the image stands (see `metadata::supersedes`).
    pub written: bool,
}

/// Finds which state an execution failed in (the FAILED mode records it).
#[async_trait]
pub trait FailedStateLookup: Send + Sync {
    async fn failed_state(&self, execution_arn: &str) -> Result<Option<String>, StepError>;
}

/// Builds the record of a finished execution. Pure: `now` is the processing time.
pub fn build_record(request: &RecordRequest, config: &StepConfig, now: &str) -> Result<ImageRecord, StepError> {
    match request {
        RecordRequest::Succeeded { image, exif, renditions, execution_arn } => {
            let mut record = base_record(
                &UploadedObject::from(image.as_ref()),
                ImageStatus::Succeeded,
                config,
                now,
                execution_arn.as_deref(),
            );
            record.content_type = Some(image.content_type.clone());
            record.format = Some(image.format.name().to_owned());
            record.bytes = Some(image.bytes);
            record.width = Some(image.width);
            record.height = Some(image.height);
            record.sha256 = Some(image.sha256.clone());
            record.exif = exif.exif.clone();
            record.warnings = exif.warnings.clone();
            record.renditions = renditions
                .iter()
                .map(|r| RenditionEntry {
                    name: r.name.clone(),
                    key: r.key.clone(),
                    url: config.object_url(&image.bucket, &r.key),
                    width: r.width,
                    height: r.height,
                    bytes: r.bytes,
                    content_type: r.content_type.clone(),
                })
                .collect();
            Ok(record)
        }
        RecordRequest::Rejected { event, error, execution_arn } => {
            let object = object_of_execution_input(event)?;
            let mut record = base_record(&object, ImageStatus::Rejected, config, now, execution_arn.as_deref());
            if let Some(image) =
                event.get("image").and_then(|v| serde_json::from_value::<ValidatedImage>(v.clone()).ok())
            {
                record.content_type = Some(image.content_type);
                record.format = Some(image.format.name().to_owned());
                record.width = Some(image.width);
                record.height = Some(image.height);
                record.sha256 = Some(image.sha256);
                record.bytes = Some(image.bytes);
            }
            record.error = Some(error.error.clone());
            record.cause = error.cause.as_deref().map(lambda_error_message);
            Ok(record)
        }
    }
}

/// Builds the FAILED record from a status-change event.
pub fn build_failure_record(
    change: &EventBridgeEvent<ExecutionStatusChange>,
    failed_state: Option<String>,
    config: &StepConfig,
    now: &str,
) -> Result<ImageRecord, StepError> {
    let detail = &change.detail;
    let input = detail.input.as_deref().ok_or_else(|| {
        StepError::InvalidInput(format!("the status change of {} carries no execution input", detail.execution_arn))
    })?;
    let input: Value = serde_json::from_str(input).map_err(|e| {
        StepError::InvalidInput(format!("the execution input of {} is not JSON: {e}", detail.execution_arn))
    })?;
    let object = object_of_execution_input(&input)?;
    let mut record = base_record(&object, ImageStatus::Failed, config, now, Some(&detail.execution_arn));
    record.error =
        Some(detail.error.clone().filter(|e| !e.is_empty()).unwrap_or_else(|| match detail.status.as_str() {
            "TIMED_OUT" => "States.Timeout".to_owned(),
            "ABORTED" => "ExecutionAborted".to_owned(),
            other => other.to_owned(),
        }));
    record.cause = detail.cause.as_deref().map(lambda_error_message);
    record.failed_state = failed_state;
    Ok(record)
}

/// The Lambda handler.
pub async fn handle(
    store: &dyn MetadataStore,
    lookup: &dyn FailedStateLookup,
    config: &StepConfig,
    input: Value,
) -> Result<WriteMetadataOutput, StepError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let record = match WriteMetadataInput::parse(input)? {
        WriteMetadataInput::Record(request) => build_record(&request, config, &now)?,
        WriteMetadataInput::StatusChange(change) => {
            if !matches!(change.detail.status.as_str(), "FAILED" | "TIMED_OUT" | "ABORTED") {
                return Err(StepError::InvalidInput(format!(
                    "execution {} is {}: only FAILED, TIMED_OUT and ABORTED are recorded from status changes",
                    change.detail.execution_arn, change.detail.status
                )));
            }
            let failed_state = lookup.failed_state(&change.detail.execution_arn).await?;
            build_failure_record(&change, failed_state, config, &now)?
        }
    };
    let written = store.put(&record).await?;
    Ok(WriteMetadataOutput { image_id: record.image_id, status: record.status, written })
}

fn base_record(
    object: &UploadedObject,
    status: ImageStatus,
    config: &StepConfig,
    now: &str,
    execution_arn: Option<&str>,
) -> ImageRecord {
    ImageRecord {
        image_id: object.image_id.clone(),
        status,
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        version_id: object.version_id.clone(),
        original_url: Some(config.object_url(&object.bucket, &object.key)),
        content_type: None,
        format: None,
        bytes: object.size,
        width: None,
        height: None,
        sha256: None,
        // Every record needs an order key; an event without a time is ordered by processing.
        uploaded_at: object.uploaded_at.clone().unwrap_or_else(|| now.to_owned()),
        processed_at: now.to_owned(),
        exif: None,
        warnings: Vec::new(),
        renditions: Vec::new(),
        execution_arn: execution_arn.map(str::to_owned),
        error: None,
        cause: None,
        failed_state: None,
    }
}

fn object_of_execution_input(input: &Value) -> Result<UploadedObject, StepError> {
    let event: ObjectCreatedEvent = serde_json::from_value(input.clone())
        .map_err(|e| StepError::InvalidInput(format!("the execution input is not an S3 Object Created event: {e}")))?;
    UploadedObject::from_event(&event)
}

/// A caught Lambda error's Cause is the JSON error payload; keep its message, not the wrapper.
fn lambda_error_message(cause: &str) -> String {
    serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| cause.to_owned())
}

impl From<&ValidatedImage> for UploadedObject {
    fn from(image: &ValidatedImage) -> Self {
        UploadedObject {
            image_id: image.image_id.clone(),
            bucket: image.bucket.clone(),
            key: image.key.clone(),
            raw_key: crate::event::encode_event_key(&image.key),
            version_id: image.version_id.clone(),
            size: Some(image.bytes),
            etag: image.etag.clone(),
            uploaded_at: image.uploaded_at.clone(),
        }
    }
}

/// The AWS implementation: the last state entered before the execution failed.
pub struct SfnFailedStateLookup {
    client: aws_sdk_sfn::Client,
}

impl SfnFailedStateLookup {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        SfnFailedStateLookup { client }
    }
}

#[async_trait]
impl FailedStateLookup for SfnFailedStateLookup {
    async fn failed_state(&self, execution_arn: &str) -> Result<Option<String>, StepError> {
        let response = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .max_results(100)
            .send()
            .await
            .map_err(|error| crate::aws::step_error(&format!("history of {execution_arn}"), &error, false))?;
        // The failing state is the last one entered. Pick it by event id rather than by position,
        // so the answer does not depend on the server honouring reverseOrder.
        Ok(response
            .events
            .iter()
            .filter_map(|event| event.state_entered_event_details().map(|details| (event.id, details.name())))
            .max_by_key(|(id, _)| *id)
            .map(|(_, name)| name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_causes_are_unwrapped() {
        let cause = r#"{"errorType":"InvalidImage","errorMessage":"truncated JPEG","trace":[]}"#;
        assert_eq!(lambda_error_message(cause), "truncated JPEG");
        assert_eq!(lambda_error_message("plain words"), "plain words");
    }

    #[test]
    fn inputs_are_told_apart() {
        let change = serde_json::json!({
            "version": "0", "id": "1", "detail-type": STATUS_CHANGE_DETAIL_TYPE, "source": "aws.states",
            "account": "1", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"executionArn": "arn:e", "stateMachineArn": "arn:sm", "name": "e", "status": "FAILED",
                        "input": "{}", "error": "TransientError", "cause": "x"}
        });
        assert!(matches!(WriteMetadataInput::parse(change).unwrap(), WriteMetadataInput::StatusChange(_)));
        assert_eq!(WriteMetadataInput::parse(serde_json::json!({"x": 1})).unwrap_err().asl_name(), "InvalidInput");
    }
}
